"""faceunlock-pam: the pam_exec fallback of pam_faceunlock.so. Exit status 0 only on a verified match.

It does what the native module does, from pam_exec's environment: it forwards the PAM items, the
PAM application's real uid and SSH markers to the daemon's Authenticate, first to ask whether a
scan would run (step check), then to scan. The daemon holds every rule (services, remote hosts,
the requester, presence, the lockout; faceunlock.service.pam_policy). pam_exec cannot talk to the
user, so a service in confirm mode (``[pam] confirm``) is refused: use pam_faceunlock.so there.

Run it as ``python -I -m faceunlock.service.pam_client`` (or ``faceunlock-pam``, which does), so
that no ``PYTHON*`` variable of the PAM environment can load code into it; GLib's own variables
are dropped before gi loads. The pam_exec child keeps the application's real uid; the
application is its parent.

It never hangs: the call does not start the daemon on demand, a daemon that does not answer a
property read within 0.5 s (stopped, wedged) is not asked to scan, and an alarm (unblocked first,
since PAM applications may block it) and a watchdog thread both end the process. It imports
only the standard library and Gio: no torch, numpy or OpenCV. The bus address comes from
``--bus-address`` (root-owned PAM configuration) or is the standard system bus socket, never
from the environment.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from faceunlock.service.names import BUS_NAME, INTERFACE, OBJECT_PATH, SYSTEM_BUS_ADDRESS

EXIT_MATCH, EXIT_NO_MATCH, EXIT_REFUSED, EXIT_UNAVAILABLE = 0, 1, 2, 3
SLACK_S = 3.0
PROBE_TIMEOUT_MS = 500
SSH_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")
ITEMS = {
    "user": "PAM_USER",
    "service": "PAM_SERVICE",
    "ruser": "PAM_RUSER",
    "rhost": "PAM_RHOST",
    "tty": "PAM_TTY",
}


def real_uid(pid: int) -> int:
    """The real uid of process pid (the PAM application), from /proc; this process's own if unreadable
    (pam_exec's child keeps the application's real uid)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return os.getuid()


def items(env: dict[str, str], app_pid: int, step: str) -> dict[str, str]:
    """What the daemon's Authenticate takes, from pam_exec's environment."""
    out = {key: env.get(name, "") for key, name in ITEMS.items()}
    out["ruid"] = str(real_uid(app_pid) or os.getuid())
    out["ssh"] = "1" if any(env.get(v) for v in SSH_VARIABLES) else ""
    out["step"] = step
    return out


def say(text: str) -> None:
    """A line for the PAM conversation (pam_exec's stdout option shows it to the user)."""
    if text:
        print(text, flush=True)


def complain(text: str) -> None:
    print(f"faceunlock-pam: {text}", file=sys.stderr, flush=True)


def connect(address: str):
    from gi.repository import Gio

    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def probe(conn) -> None:
    """The daemon answers a property read within PROBE_TIMEOUT_MS, or GLib.Error. Properties are
    served by the daemon's main loop, which never waits for the camera, so a live daemon answers in
    milliseconds even mid-scan; a stopped or wedged one would otherwise hold the PAM stack."""
    from gi.repository import GLib

    from faceunlock.service.bus_call import call

    args = GLib.Variant("(ss)", (INTERFACE, "Version"))
    call(conn, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties", "Get", args, "(v)", PROBE_TIMEOUT_MS)


def authenticate(conn, request: dict[str, str], timeout: float) -> tuple[str, str]:
    """The daemon's (result, message); raises GLib.Error when it cannot be asked."""
    from gi.repository import GLib

    from faceunlock.service.bus_call import call

    args = GLib.Variant("(a{ss}u)", (request, int(timeout * 1000)))
    return call(
        conn, BUS_NAME, OBJECT_PATH, INTERFACE, "Authenticate", args, "(ss)", int((timeout + SLACK_S) * 1000)
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="faceunlock-pam", description="Face unlock for PAM: the client that pam_exec.so runs."
    )
    p.add_argument("--bus-address", default=SYSTEM_BUS_ADDRESS, help="D-Bus address of the system bus")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds the scan may take (default 5)")
    p.add_argument("--quiet", action="store_true", help="print nothing for the PAM conversation")
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if not 0.2 <= args.timeout <= 60:
        p.error("--timeout must be between 0.2 and 60 seconds")
    return args


def arm_deadline(seconds: float) -> None:
    """End the process after seconds, however it is stuck: an alarm, and a thread in case it is blocked."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def expire() -> None:
        complain(f"gave up after {seconds:g} s")
        os._exit(EXIT_UNAVAILABLE)

    watchdog = threading.Timer(seconds + 0.5, expire)
    watchdog.daemon = True
    watchdog.start()


def ask(conn, env: dict[str, str], args: argparse.Namespace) -> int:
    """Check, then scan; the exit status."""
    app = os.getppid()
    result, message = authenticate(conn, items(env, app, "check"), args.timeout)
    if result == "confirm":
        complain("this service asks for an empty Enter first ([pam] confirm), which needs pam_faceunlock.so")
        return EXIT_REFUSED
    if result != "ready":
        complain(f"{result}: {message}" if message else result)
        return EXIT_UNAVAILABLE if result == "error" else EXIT_REFUSED
    result, message = authenticate(conn, items(env, app, "scan"), args.timeout)
    if not args.quiet:
        say(message)
    if result == "match":
        return EXIT_MATCH
    complain(f"{result}: {message}")
    return EXIT_UNAVAILABLE if result == "error" else EXIT_NO_MATCH


def main(argv: list[str] | None = None) -> int:
    from faceunlock.service.isolate import scrub_environment

    scrub_environment()
    args = parse(argv)
    arm_deadline(args.timeout + 2 * SLACK_S)
    env = dict(os.environ)
    if env.get("PAM_TYPE", "auth") != "auth":
        complain(f"only the auth phase is supported, not {env.get('PAM_TYPE')!r}")
        return EXIT_REFUSED
    if not env.get("PAM_USER"):
        complain("PAM_USER is not set")
        return EXIT_REFUSED
    from gi.repository import GLib

    try:
        conn = connect(args.bus_address)
        try:
            probe(conn)
            return ask(conn, env, args)
        finally:
            conn.close_sync(None)
    except GLib.Error as exc:
        complain(f"the daemon cannot be asked: {exc.message}")
        return EXIT_UNAVAILABLE
    except Exception as exc:  # noqa: BLE001  (fail closed: anything unexpected falls through)
        complain(f"error: {type(exc).__name__}: {exc}")
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
