"""`faceunlock unlock-now`: ask the daemon to scan now and unlock your locked session on a match."""

from __future__ import annotations

import argparse
import os


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("unlock-now", help="scan now and unlock your locked session on a match")
    p.add_argument("--session", help="logind session id (default: $XDG_SESSION_ID, else your armed session)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import pydbus
    from gi.repository import GLib

    from faceunlock.service.names import BUS_NAME, OBJECT_PATH

    session = args.session if args.session is not None else os.environ.get("XDG_SESSION_ID", "")
    try:
        proxy = pydbus.SystemBus().get(BUS_NAME, OBJECT_PATH)
        result, reason = proxy.UnlockNow(session, timeout=120)
    except GLib.Error as exc:
        print(f"faceunlock: not unlocked: {exc.message}")
        return 1
    print(f"{result}: {reason}")
    return 0 if result == "unlocked" else 1
