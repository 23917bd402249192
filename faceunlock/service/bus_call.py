"""One synchronous D-Bus call that never starts a service and always has a deadline."""

from __future__ import annotations

from gi.repository import Gio, GLib


def call(con, name: str, path: str, iface: str, method: str, args, reply: str | None, timeout_ms: int):
    """The unpacked reply (() when it has none); GLib.Error when the call fails or times out.

    NO_AUTO_START: a name nobody owns is an error at once, never a service started on demand.
    """
    result = con.call_sync(
        name,
        path,
        iface,
        method,
        args,
        GLib.VariantType(reply) if reply else None,
        Gio.DBusCallFlags.NO_AUTO_START,
        timeout_ms,
        None,
    )
    return result.unpack() if result is not None else ()
