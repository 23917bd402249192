"""A stand-in for polkitd (org.freedesktop.PolicyKit1) on a private test bus.

It answers the one call faceunlock's daemon makes, Authority.CheckAuthorization
(subject, action_id, details, flags, cancellation_id) -> (is_authorized,
is_challenge, details), with polkit's names and types, from a table the test
sets: per action, ``yes``, ``no`` or ``challenge`` (default ``no``: fail
closed), or ``hold``: no answer until the test calls Release(action, answer),
as while a person types into the polkit agent. For every check it records the
action, the subject's kind and bus name, the uid the bus reports for that name
(as polkitd looks it up), and the flags. Test-only interface
org.faceunlock.test.PolkitStandIn on the same object: SetAnswer(action, answer),
Release(action, answer), Checks() -> a(sssuu).

Usage: python -m faceunlock.testing.polkit_standin   (bus: DBUS_SYSTEM_BUS_ADDRESS)
"""

from __future__ import annotations

import signal
import sys

import pydbus
from gi.repository import Gio, GLib

NAME = "org.freedesktop.PolicyKit1"
PATH = "/org/freedesktop/PolicyKit1/Authority"
AUTHORITY = "org.freedesktop.PolicyKit1.Authority"
CONTROL = "org.faceunlock.test.PolkitStandIn"

XML = f"""
<node>
  <interface name="{AUTHORITY}">
    <method name="CheckAuthorization">
      <arg direction="in" type="(sa{{sv}})" name="subject"/>
      <arg direction="in" type="s" name="action_id"/>
      <arg direction="in" type="a{{ss}}" name="details"/>
      <arg direction="in" type="u" name="flags"/>
      <arg direction="in" type="s" name="cancellation_id"/>
      <arg direction="out" type="(bba{{ss}})" name="result"/>
    </method>
  </interface>
  <interface name="{CONTROL}">
    <method name="SetAnswer"><arg direction="in" type="s"/><arg direction="in" type="s"/></method>
    <method name="Release"><arg direction="in" type="s"/><arg direction="in" type="s"/></method>
    <method name="Checks"><arg direction="out" type="a(sssuu)"/></method>
  </interface>
</node>
"""
ANSWERS = {"yes": (True, False), "no": (False, False), "challenge": (False, True)}


def result(authorised: bool, challenge: bool) -> GLib.Variant:
    return GLib.Variant("((bba{ss}))", ((authorised, challenge, {}),))


class StandIn:
    def __init__(self, bus):
        self.con = bus.con
        self.answers: dict[str, str] = {}
        self.checks: list[tuple[str, str, str, int, int]] = []
        self.held: dict[str, list] = {}
        for info in Gio.DBusNodeInfo.new_for_xml(XML).interfaces:
            self.con.register_object(PATH, info, self.call, None, None)

    def uid_of(self, name: str) -> int:
        try:
            reply = self.con.call_sync(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetConnectionUnixUser",
                GLib.Variant("(s)", (name,)),
                GLib.VariantType("(u)"),
                Gio.DBusCallFlags.NONE,
                2000,
                None,
            )
        except GLib.Error:
            return 2**32 - 1
        return reply.unpack()[0]

    def call(self, con, sender, path, iface, method, params, invocation):
        args = params.unpack()
        if method == "Release":
            if args[1] not in ANSWERS:
                invocation.return_dbus_error("org.freedesktop.DBus.Error.InvalidArgs", f"answer {args[1]!r}")
                return
            for held in self.held.pop(args[0], []):
                held.return_value(result(*ANSWERS[args[1]]))
            invocation.return_value(None)
        elif method == "SetAnswer":
            if args[1] not in (*ANSWERS, "hold"):
                invocation.return_dbus_error("org.freedesktop.DBus.Error.InvalidArgs", f"answer {args[1]!r}")
                return
            self.answers[args[0]] = args[1]
            invocation.return_value(None)
        elif method == "Checks":
            invocation.return_value(GLib.Variant("(a(sssuu))", (self.checks,)))
        else:
            (kind, subject), action, _details, flags, _cancel = args
            name = str(subject.get("name", ""))
            self.checks.append((action, kind, name, self.uid_of(name) if name else 2**32 - 1, flags))
            answer = self.answers.get(action, "no")
            if answer == "hold":
                self.held.setdefault(action, []).append(invocation)
            else:
                invocation.return_value(result(*ANSWERS[answer]))


def main() -> int:
    bus = pydbus.SystemBus()
    StandIn(bus)
    bus.request_name(NAME, allow_replacement=False)
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
