"""A lock screen stand-in for one logind session, run as the session's user inside the session.

Like GNOME Shell, it honours logind's Lock and Unlock signals for its session by
setting the session's LockedHint, and prints one line per event. It uses only
the standard library and Gio (Debian's python3-gi).
"""

import os

from gi.repository import Gio, GLib

LOGIND = "org.freedesktop.login1"
SESSION = "org.freedesktop.login1.Session"


def main() -> None:
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    sid = os.environ["XDG_SESSION_ID"]
    path = bus.call_sync(
        LOGIND,
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager",
        "GetSession",
        GLib.Variant("(s)", (sid,)),
        GLib.VariantType("(o)"),
        Gio.DBusCallFlags.NONE,
        5000,
        None,
    ).unpack()[0]

    def on_signal(conn, sender, obj, iface, name, params, data) -> None:
        locked = name == "Lock"
        bus.call_sync(
            LOGIND, path, SESSION, "SetLockedHint", GLib.Variant("(b)", (locked,)), None, 0, 5000, None
        )
        print(f"locker: {name} signal from {sender}: LockedHint set to {locked}", flush=True)

    for name in ("Lock", "Unlock"):
        bus.signal_subscribe(LOGIND, SESSION, name, path, None, Gio.DBusSignalFlags.NONE, on_signal, None)
    print(f"locker: ready for session {sid} at {path}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
