"""`faceunlock enroll|list|remove|clear` for an ordinary user: through the daemon, as fprintd-enroll.

The templates belong to the daemon's user, so a non-root user cannot touch them; the daemon can,
for the caller's own account, from a local session, once polkit agrees (the desktop's agent asks
for the user's own password: org.faceunlock.enroll). Enrolment shows the daemon's EnrollStatus
lines, and Ctrl-C cancels it (CancelEnroll): nothing is stored.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys

from faceunlock.errors import EXIT_NO_MATCH, UserError

LONG_MS = 10 * 60 * 1000
"""Room for a polkit password prompt, then the person turning their head."""


def wanted(args: argparse.Namespace) -> bool:
    """Whether this command should go through the daemon: not root, and nothing but the real store
    and camera (--store, --source and --config are root's and the tests' tools)."""
    local = any(getattr(args, name, None) for name in ("store", "source", "config"))
    return os.geteuid() != 0 and not local


def own(user: str) -> str:
    me = pwd.getpwuid(os.getuid()).pw_name
    if user != me:
        raise UserError(f"you ({me}) may enrol and delete only your own face; {user}'s needs root (sudo)")
    return user


class Daemon:
    """A connection to the daemon on the system bus, and its errors in words."""

    def __init__(self):
        from gi.repository import Gio

        self.con = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)

    def call(self, method: str, args, reply: str | None, timeout_ms: int = 30000):
        from gi.repository import Gio, GLib

        from faceunlock.service.names import BUS_NAME, INTERFACE, OBJECT_PATH

        loop, box = GLib.MainLoop(), {}

        def done(con, result) -> None:
            try:
                value = con.call_finish(result)
                box["reply"] = value.unpack() if value is not None else ()
            except GLib.Error as exc:
                box["error"] = exc
            loop.quit()

        kind = GLib.VariantType(reply) if reply else None
        self.con.call(BUS_NAME, OBJECT_PATH, INTERFACE, method, args, kind, 0, timeout_ms, None, done)
        try:
            loop.run()
        except KeyboardInterrupt:
            if method == "Enroll":
                self.con.call_sync(
                    BUS_NAME, OBJECT_PATH, INTERFACE, "CancelEnroll", None, None, 0, 5000, None
                )
                print("\nfaceunlock: cancelled: nothing was stored", file=sys.stderr)
            raise
        if "error" in box:
            exc = box["error"]
            name = Gio.DBusError.get_remote_error(exc) or ""
            Gio.DBusError.strip_remote_error(exc)
            if name == "org.freedesktop.DBus.Error.ServiceUnknown":
                raise UserError("the face unlock service is not installed (sudo faceunlock install)")
            raise UserError(exc.message)
        return box["reply"]


def enroll(args: argparse.Namespace) -> int:
    from gi.repository import GLib

    from faceunlock.service.names import INTERFACE, OBJECT_PATH

    user = own(args.user)
    daemon = Daemon()
    said = [None]

    def status(_con, _sender, _path, _iface, _name, params, _data) -> None:
        _user, stage, message, captured, needed, done = params.unpack()
        line = f"[{captured}/{needed} poses] {stage}: {message}" if needed else f"{stage}: {message}"
        if not done and line != said[0]:
            print(f"  {line}", file=sys.stderr, flush=True)
        said[0] = line

    daemon.con.signal_subscribe(None, INTERFACE, "EnrollStatus", OBJECT_PATH, None, 0, status, None)
    print(f"Enrolling {user} through the face unlock service: follow the instructions", file=sys.stderr)
    frames = args.frames or 0
    (count,) = daemon.call("Enroll", GLib.Variant("(ssu)", (user, args.label, frames)), "(u)", LONG_MS)
    print(f"enrolled {user} ({args.label}): {count} embeddings")
    return 0


def manage(args: argparse.Namespace) -> int:
    from gi.repository import GLib

    from faceunlock.commands.common import confirmed

    user = own(args.user)
    daemon = Daemon()
    if args.command == "list":
        (labels,) = daemon.call("ListEnrolled", GLib.Variant("(s)", (user,)), "(as)")
        print(f"user {user}: {len(labels)} enrolment(s)")
        for label in labels:
            print(f"  {label}")
        return 0
    label = args.label if args.command == "remove" else ""
    question = f"Delete the enrolment {label!r} of {user}?" if label else f"Delete every enrolment of {user}?"
    if not confirmed(args, question):
        return EXIT_NO_MATCH
    daemon.call("Delete", GLib.Variant("(ss)", (user, label)), None, LONG_MS)
    print(f"removed enrolment {label!r} of {user}" if label else f"removed all enrolments of {user}")
    return 0
