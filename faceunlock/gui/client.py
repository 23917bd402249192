"""The settings app's side of the daemon's D-Bus interface: calls that never block the window.

Every method call is asynchronous and answers through a callback with either
the reply or a one-line error. Signals the daemon sends to this connection
alone (PreviewFrame, EnrollStatus) and PropertiesChanged are accepted only
from the connection that owns the daemon's name.
"""

from __future__ import annotations

from collections.abc import Callable

from gi.repository import Gio, GLib

from faceunlock.service.names import BUS_NAME, INTERFACE, OBJECT_PATH, PROPERTIES

Done = Callable[[object, str | None], None]
"""done(reply, error): reply is the unpacked reply (None on error); error a message, or None."""
LONG_MS = 10 * 60 * 1000
"""Enrolment may wait for a polkit password prompt and then for the person to turn their head."""


NOT_INSTALLED = "org.freedesktop.DBus.Error.ServiceUnknown"
NOT_STARTED = (
    "org.freedesktop.DBus.Error.Spawn.",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.TimedOut",
)


def unreachable(exc: GLib.Error) -> str | None:
    """What a person should do when the daemon cannot be reached (None: it answered, with an error)."""
    name = Gio.DBusError.get_remote_error(exc) or ""
    if name == NOT_INSTALLED:
        return (
            "The face unlock service is not installed. Install the faceunlock package "
            "(or run: sudo faceunlock install), then press Retry."
        )
    if name.startswith(NOT_STARTED):
        return (
            "The face unlock service did not start or does not answer. "
            "See: systemctl status faceunlock.service; then press Retry."
        )
    return None


def describe(exc: GLib.Error) -> str:
    """A D-Bus error as the one line the daemon wrote, without GDBus's prefix."""
    name = Gio.DBusError.get_remote_error(exc) or ""
    message = exc.message
    prefix = f"GDBus.Error:{name}: "
    if name and message.startswith(prefix):
        message = message[len(prefix) :]
    if name == NOT_INSTALLED:
        return "the face unlock service is not installed"
    if name.startswith(NOT_STARTED):
        return "the face unlock service does not answer (systemctl status faceunlock.service)"
    return message


class Daemon:
    """The daemon, as seen from the app."""

    def __init__(self, con: Gio.DBusConnection | None = None):
        self.con = con or Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
        self.owner: str | None = None
        self.on_frame: Callable[[bytes, dict], None] | None = None
        self.on_enroll_status: Callable[[tuple], None] | None = None
        self.on_properties: Callable[[dict], None] | None = None
        self.on_reachable: Callable[[str | None], None] | None = None
        """Told after each answer: what to do when the daemon cannot be reached, or None."""
        self.watch = Gio.bus_watch_name_on_connection(
            self.con, BUS_NAME, Gio.BusNameWatcherFlags.NONE, self.appeared, self.vanished
        )
        self.subscriptions = [
            self.con.signal_subscribe(None, INTERFACE, name, OBJECT_PATH, None, 0, self.signal, None)
            for name in ("PreviewFrame", "EnrollStatus")
        ]
        self.subscriptions.append(
            self.con.signal_subscribe(
                None, PROPERTIES, "PropertiesChanged", OBJECT_PATH, None, 0, self.signal, None
            )
        )

    def appeared(self, _con, _name, owner) -> None:
        self.owner = owner

    def vanished(self, _con, _name) -> None:
        self.owner = None

    def signal(self, _con, sender, _path, _iface, name, params, _data) -> None:
        if sender != self.owner:
            return
        args = params.unpack()
        if name == "PreviewFrame" and self.on_frame:
            self.on_frame(bytes(args[0]), args[1])
        elif name == "EnrollStatus" and self.on_enroll_status:
            self.on_enroll_status(args)
        elif name == "PropertiesChanged" and args[0] == INTERFACE and self.on_properties:
            self.on_properties(args[1])

    def call(
        self, method: str, args: GLib.Variant | None, reply: str | None, done: Done, timeout_ms: int = 30000
    ) -> None:
        def answered(con, result) -> None:
            try:
                value = con.call_finish(result)
            except GLib.Error as exc:
                self.reached(exc)
                done(None, describe(exc))
                return
            self.reached(None)
            unpacked = value.unpack() if value is not None else ()
            done(unpacked[0] if len(unpacked) == 1 else unpacked, None)

        self.con.call(
            BUS_NAME,
            OBJECT_PATH,
            INTERFACE,
            method,
            args,
            GLib.VariantType(reply) if reply else None,
            Gio.DBusCallFlags.NONE,
            timeout_ms,
            None,
            answered,
        )

    def get(self, prop: str, done: Done) -> None:
        def answered(con, result) -> None:
            try:
                value = con.call_finish(result).unpack()[0]
            except GLib.Error as exc:
                self.reached(exc)
                done(None, describe(exc))
                return
            self.reached(None)
            done(value, None)

        args = GLib.Variant("(ss)", (INTERFACE, prop))
        self.con.call(
            BUS_NAME, OBJECT_PATH, PROPERTIES, "Get", args, GLib.VariantType("(v)"), 0, 5000, None, answered
        )

    def reached(self, exc: GLib.Error | None) -> None:
        if self.on_reachable:
            self.on_reachable(None if exc is None else unreachable(exc))

    def list_enrolled(self, user: str, done: Done) -> None:
        self.call("ListEnrolled", GLib.Variant("(s)", (user,)), "(as)", done)

    def enroll(self, user: str, label: str, done: Done) -> None:
        self.call("Enroll", GLib.Variant("(ssu)", (user, label, 0)), "(u)", done, LONG_MS)

    def cancel_enroll(self, done: Done) -> None:
        self.call("CancelEnroll", None, None, done)

    def delete(self, user: str, label: str, done: Done) -> None:
        self.call("Delete", GLib.Variant("(ss)", (user, label)), None, done, LONG_MS)

    def preview(self, user: str, seconds: int, done: Done) -> None:
        self.call("Preview", GLib.Variant("(su)", (user, seconds)), "(s)", done, (seconds + 30) * 1000)

    def stop_preview(self, done: Done) -> None:
        self.call("StopPreview", None, None, done)

    def set_setting(self, key: str, value: GLib.Variant, done: Done) -> None:
        self.call("SetSetting", GLib.Variant("(sv)", (key, value)), None, done, LONG_MS)

    def recent_attempts(self, user: str, done: Done) -> None:
        self.call("RecentAttempts", GLib.Variant("(s)", (user,)), "(aa{sv})", done)
