"""Real parts for exercising the service outside a desktop: a private system bus, a logind stand-in
and the daemon. Used by the tests and the benchmarks; nothing at run time imports it."""
