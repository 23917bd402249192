"""A stand-in for the faceunlock daemon that answers every Verify with "match" (run as root).

Usage: always_match.py INTERFACE_XML LOG

It owns org.faceunlock.FaceUnlock1 on the container's system bus with the real
interface (read from the checkout's dbus/ XML) and answers Verify(user, ...) with
("match", ...), as the real daemon would with that user's face in view. Each call
is appended to LOG with the caller's unique name. The presence rules must then
keep every request that no person at the machine made from ever asking it.
Standard library and Debian's python3-gi only.
"""

import sys

from gi.repository import Gio, GLib

NAME = "org.faceunlock.FaceUnlock1"
PATH = "/org/faceunlock/FaceUnlock1"


def main() -> int:
    xml, log = open(sys.argv[1]).read(), sys.argv[2]
    iface = next(i for i in Gio.DBusNodeInfo.new_for_xml(xml).interfaces if i.name == NAME)
    properties = {"Version": GLib.Variant("s", "always-match"), "Settings": GLib.Variant("a{sv}", {})}

    def on_call(con, sender, path, interface, method, params, invocation):
        if method != "Verify":
            invocation.return_dbus_error(f"{NAME}.Error.Failed", f"{method} is not in the stand-in")
            return
        user = params.unpack()[0]
        with open(log, "a") as fh:
            fh.write(f"Verify {user} from {sender}\n")
        invocation.return_value(GLib.Variant("(ssa{sv})", ("match", f"stand-in: {user} is in view", {})))

    def get_property(con, sender, path, interface, name):
        return properties.get(name)

    con = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    con.register_object(PATH, iface, on_call, get_property, None)
    loop = GLib.MainLoop()
    Gio.bus_own_name_on_connection(
        con, NAME, Gio.BusNameOwnerFlags.NONE, lambda *a: print("owned", flush=True), lambda *a: loop.quit()
    )
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
