"""One module per `faceunlock` subcommand."""
