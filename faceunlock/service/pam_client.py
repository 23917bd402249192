"""faceunlock-pam: the PAM client that pam_exec.so runs. Exit status 0 only on a verified match.

It refuses remote logins (a non-local PAM_RHOST, SSH), then asks the warm
daemon to Verify PAM_USER over the system bus. It never hangs: the call does
not start the daemon on demand, so a stopped daemon is an immediate error,
and a hard alarm kills the process if anything else stalls. It imports only
the standard library and Gio: no torch, numpy or OpenCV.

The bus address comes from ``--bus-address`` (root-owned PAM configuration)
or is the standard system bus socket, never from the environment, which
PAM modules may let users influence.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from faceunlock.service.names import BUS_NAME, INTERFACE, OBJECT_PATH, SYSTEM_BUS_ADDRESS

EXIT_MATCH, EXIT_NO_MATCH, EXIT_REFUSED, EXIT_UNAVAILABLE = 0, 1, 2, 3
SLACK_S = 3.0
LOCAL_HOSTS = {"", "localhost", "localhost.localdomain", "::1", "::ffff:127.0.0.1"}
SSH_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")


def is_local(rhost: str) -> bool:
    """PAM_RHOST names this machine: empty, localhost, a loopback address, or an X display (":0")."""
    rhost = rhost.strip().lower()
    return rhost in LOCAL_HOSTS or rhost.startswith("127.") or rhost.startswith(":")


def refusal(env: dict[str, str]) -> str | None:
    """Why this PAM conversation must not use face unlock, or None."""
    if env.get("PAM_TYPE", "auth") != "auth":
        return f"only the auth phase is supported, not {env.get('PAM_TYPE')!r}"
    if not env.get("PAM_USER"):
        return "PAM_USER is not set"
    rhost = env.get("PAM_RHOST", "")
    if not is_local(rhost):
        return f"remote login from {rhost!r}"
    if env.get("PAM_SERVICE", "") in ("sshd", "ssh"):
        return "SSH login"
    if env.get("PAM_TTY", "") == "ssh" or any(env.get(v) for v in SSH_VARIABLES):
        return "SSH session"
    return None


def say(text: str) -> None:
    """A line for the PAM conversation (pam_exec's stdout option shows it to the user)."""
    print(text, flush=True)


def complain(text: str) -> None:
    print(f"faceunlock-pam: {text}", file=sys.stderr, flush=True)


def verify(address: str, user: str, timeout: float) -> tuple[str, str]:
    """Ask the daemon; returns (decision, reason). Raises GLib.Error when it cannot be asked."""
    from gi.repository import Gio, GLib

    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    conn = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
    try:
        reply = conn.call_sync(
            BUS_NAME,
            OBJECT_PATH,
            INTERFACE,
            "Verify",
            GLib.Variant("(su)", (user, int(timeout * 1000))),
            GLib.VariantType("(ssa{sv})"),
            Gio.DBusCallFlags.NO_AUTO_START,
            int((timeout + SLACK_S) * 1000),
            None,
        )
    finally:
        conn.close_sync(None)
    decision, reason, _details = reply.unpack()
    return decision, reason


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="faceunlock-pam", description="PAM client for pam_exec.so")
    p.add_argument("--bus-address", default=SYSTEM_BUS_ADDRESS, help="D-Bus address of the system bus")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds the scan may take (default 5)")
    p.add_argument("--quiet", action="store_true", help="print nothing for the PAM conversation")
    args = p.parse_args(argv)
    if not 0.2 <= args.timeout <= 60:
        p.error("--timeout must be between 0.2 and 60 seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, args.timeout + 2 * SLACK_S)
    env = dict(os.environ)
    why = refusal(env)
    if why:
        complain(f"face unlock refused: {why}")
        return EXIT_REFUSED
    from gi.repository import GLib

    user = env["PAM_USER"]
    try:
        decision, reason = verify(args.bus_address, user, args.timeout)
    except GLib.Error as exc:
        complain(f"the daemon cannot be asked: {exc.message}")
        return EXIT_UNAVAILABLE
    except Exception as exc:  # noqa: BLE001  (fail closed: anything unexpected falls through)
        complain(f"error: {type(exc).__name__}: {exc}")
        return EXIT_UNAVAILABLE
    if decision == "match":
        if not args.quiet:
            say("Face recognised.")
        return EXIT_MATCH
    complain(f"{decision}: {reason}")
    if not args.quiet and decision in ("no-match", "no-face", "timeout"):
        say("Face not recognised.")
    return EXIT_NO_MATCH


if __name__ == "__main__":
    sys.exit(main())
