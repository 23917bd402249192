"""`faceunlock unlock-now`: ask the daemon to scan now and unlock your locked session on a match."""

from __future__ import annotations

import argparse
import os
import sys

from faceunlock.errors import EXIT_ERROR, EXIT_NO_MATCH, EXIT_OK


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("unlock-now", help="scan now and unlock your locked session on a match")
    p.add_argument("--session", help="logind session id (default: $XDG_SESSION_ID, else your armed session)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import pydbus
    from gi.repository import Gio, GLib

    from faceunlock.service.names import BUS_NAME, ERROR_PREFIX, OBJECT_PATH

    session = args.session if args.session is not None else os.environ.get("XDG_SESSION_ID", "")
    try:
        proxy = pydbus.SystemBus().get(BUS_NAME, OBJECT_PATH)
        result, reason = proxy.UnlockNow(session, timeout=120)
    except GLib.Error as exc:
        if Gio.DBusError.get_remote_error(exc) in (f"{ERROR_PREFIX}NotArmed", f"{ERROR_PREFIX}Busy"):
            Gio.DBusError.strip_remote_error(exc)
            print(f"faceunlock: not unlocked: {exc.message}")
            return EXIT_NO_MATCH
        print(f"faceunlock: error: the daemon cannot be asked: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{result}: {reason}")
    return EXIT_OK if result == "unlocked" else EXIT_NO_MATCH
