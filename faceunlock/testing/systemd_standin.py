"""A stand-in for systemd's manager (org.freedesktop.systemd1) on a private test bus.

The presence rules (faceunlock.service.local_session) ask systemd which unit
a process runs in and which unit ``display-manager.service`` names. Without
systemd as PID 1 a test cannot put a process in a unit, so this plays the two
calls with systemd's names, types and errors:

- Manager (/org/freedesktop/systemd1): GetUnitByPID(u) -> o, the unit of the
  process or, as a cgroup is inherited, of its nearest placed ancestor (error
  NoUnitForPID when none was placed), GetUnit(s) -> o (NoSuchUnit);
- Unit (/org/freedesktop/systemd1/unit/<escaped id>): property Id.

Test-only interface org.faceunlock.test.SystemdStandIn on the manager object:
MapPidUnit(pid, unit) places a process in a unit ("" removes it), and
SetDisplayManager(unit) makes display-manager.service an alias of unit ("": none).
Started by faceunlock.testing.logind_standin, in the same process.
"""

from __future__ import annotations

from gi.repository import Gio, GLib

from faceunlock.service.local_session import ancestors

NAME = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
CONTROL = "org.faceunlock.test.SystemdStandIn"
DISPLAY_MANAGER = "display-manager.service"

XML = f"""
<node>
  <interface name="{MANAGER}">
    <method name="GetUnitByPID"><arg direction="in" type="u"/><arg direction="out" type="o"/></method>
    <method name="GetUnit"><arg direction="in" type="s"/><arg direction="out" type="o"/></method>
  </interface>
  <interface name="{CONTROL}">
    <method name="MapPidUnit"><arg direction="in" type="u"/><arg direction="in" type="s"/></method>
    <method name="SetDisplayManager"><arg direction="in" type="s"/></method>
  </interface>
  <interface name="{UNIT}">
    <property name="Id" type="s" access="read"/>
  </interface>
</node>
"""


def unit_path(unit: str) -> str:
    """systemd's object path of a unit: every byte that is not [A-Za-z0-9] as _xx."""
    escaped = "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in unit)
    return f"{PATH}/unit/{escaped}"


class SystemdStandIn:
    def __init__(self, con: Gio.DBusConnection):
        self.con = con
        self.pid_units: dict[int, str] = {}
        self.display_manager = ""
        self.registered: set[str] = set()
        self.iface = {i.name: i for i in Gio.DBusNodeInfo.new_for_xml(XML).interfaces}
        for name in (MANAGER, CONTROL):
            con.register_object(PATH, self.iface[name], self.manager_call, None, None)

    def object_for(self, unit: str) -> str:
        path = unit_path(unit)
        if path not in self.registered:
            self.con.register_object(path, self.iface[UNIT], None, lambda *a: GLib.Variant("s", unit), None)
            self.registered.add(path)
        return path

    def manager_call(self, con, sender, path, iface, method, params, invocation):
        args = params.unpack()
        if method == "GetUnitByPID":
            unit = next((self.pid_units[p] for p in ancestors(args[0]) if p in self.pid_units), None)
            if unit is None:
                invocation.return_dbus_error(f"{NAME}.NoUnitForPID", f"PID {args[0]} is in no unit")
                return
            invocation.return_value(GLib.Variant("(o)", (self.object_for(unit),)))
        elif method == "GetUnit":
            unit = self.display_manager if args[0] == DISPLAY_MANAGER else args[0]
            if not unit or (args[0] != DISPLAY_MANAGER and unit not in self.pid_units.values()):
                invocation.return_dbus_error(f"{NAME}.NoSuchUnit", f"Unit {args[0]} not loaded.")
                return
            invocation.return_value(GLib.Variant("(o)", (self.object_for(unit),)))
        elif method == "MapPidUnit":
            if args[1]:
                self.pid_units[args[0]] = args[1]
            else:
                self.pid_units.pop(args[0], None)
            invocation.return_value(None)
        elif method == "SetDisplayManager":
            self.display_manager = args[0]
            invocation.return_value(None)
