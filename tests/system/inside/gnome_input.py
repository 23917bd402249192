"""A person at GNOME's lock screen moves the mouse: input through mutter's RemoteDesktop API, timed.

Usage (as the session's user, with its session bus): gnome_input.py SESSION_ID SECONDS

It starts a RemoteDesktop session (it lives as long as this connection), sends one relative pointer
motion, and watches for SECONDS: logind's IdleHint and LockedHint for the session, and the shell's
own screen shield (org.gnome.ScreenSaver.GetActive). Prints one JSON object with the seconds from
the motion to each going false (null if it did not). Standard library and python3-gi only.
"""

import json
import sys
import time

from gi.repository import Gio, GLib

RD = "org.gnome.Mutter.RemoteDesktop"
LOGIND = "org.freedesktop.login1"


def main() -> None:
    session_id, seconds = sys.argv[1], float(sys.argv[2])
    user_bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    system = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    path = system.call_sync(
        LOGIND,
        "/org/freedesktop/login1",
        f"{LOGIND}.Manager",
        "GetSession",
        GLib.Variant("(s)", (session_id,)),
        GLib.VariantType("(o)"),
        0,
        5000,
        None,
    ).unpack()[0]

    def hint(name: str) -> bool:
        args = GLib.Variant("(ss)", (f"{LOGIND}.Session", name))
        return system.call_sync(
            LOGIND, path, "org.freedesktop.DBus.Properties", "Get", args, None, 0, 5000, None
        ).unpack()[0]

    def shield() -> bool:
        return user_bus.call_sync(
            "org.gnome.Shell.ScreenShield",
            "/org/gnome/ScreenSaver",
            "org.gnome.ScreenSaver",
            "GetActive",
            None,
            None,
            0,
            5000,
            None,
        ).unpack()[0]

    rd = user_bus.call_sync(
        RD,
        "/org/gnome/Mutter/RemoteDesktop",
        RD,
        "CreateSession",
        None,
        GLib.VariantType("(o)"),
        0,
        5000,
        None,
    ).unpack()[0]
    user_bus.call_sync(RD, rd, f"{RD}.Session", "Start", None, None, 0, 5000, None)
    before = {"IdleHint": hint("IdleHint"), "LockedHint": hint("LockedHint"), "shield": shield()}
    started = time.monotonic()
    motion = GLib.Variant("(dd)", (20.0, 10.0))
    user_bus.call_sync(RD, rd, f"{RD}.Session", "NotifyPointerMotionRelative", motion, None, 0, 5000, None)
    seen: dict[str, float | None] = {"IdleHint": None, "LockedHint": None, "shield": None}
    while time.monotonic() - started < seconds and None in seen.values():
        now = {"IdleHint": hint("IdleHint"), "LockedHint": hint("LockedHint"), "shield": shield()}
        for name, value in now.items():
            if not value and seen[name] is None:
                seen[name] = round(time.monotonic() - started, 3)
        time.sleep(0.02)
    user_bus.call_sync(RD, rd, f"{RD}.Session", "Stop", None, None, 0, 5000, None)
    print(json.dumps({"before": before, "false_after_s": seen}), flush=True)


if __name__ == "__main__":
    main()
