"""GDM's org.gnome.DisplayManager on the system bus, as much as GNOME Shell asks of it (run as root).

The shell creates its screen shield only when the display manager's Manager.Version answers
(3.5.91 or later); nothing else of GDM is needed for the shell to lock, and for logind's Unlock
to end the lock. Standard library and Debian's python3-gi only.
"""

from gi.repository import Gio, GLib

XML = """<node><interface name="org.gnome.DisplayManager.Manager">
<property name="Version" type="s" access="read"/>
<method name="RegisterSession"><arg name="details" direction="in" type="a{sv}"/></method>
</interface></node>"""


def main() -> None:
    interface = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]

    def on_call(con, sender, path, iface, method, params, invocation):
        invocation.return_value(None)

    def on_bus(con, name):
        con.register_object(
            "/org/gnome/DisplayManager/Manager",
            interface,
            on_call,
            lambda *a: GLib.Variant("s", "43.0"),
            None,
        )

    Gio.bus_own_name(Gio.BusType.SYSTEM, "org.gnome.DisplayManager", 0, on_bus, None, None)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
