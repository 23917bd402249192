"""The D-Bus interface of the daemon (its introspection XML file) and how a decision travels in it."""

from gi.repository import GLib

from faceunlock.decision import Decision
from faceunlock.paths import package_data
from faceunlock.service.names import INTERFACE

INTERFACE_XML = package_data("dbus", f"{INTERFACE}.xml").read_text()
"""The introspection XML, with its documentation: dbus/org.faceunlock.FaceUnlock1.xml."""


def variant(value) -> GLib.Variant:
    """A decision field as a D-Bus variant."""
    if isinstance(value, bool):
        return GLib.Variant("b", value)
    if isinstance(value, int):
        return GLib.Variant("x", value)
    if isinstance(value, float):
        return GLib.Variant("d", value)
    if isinstance(value, dict):
        return GLib.Variant("a{sv}", {str(k): variant(v) for k, v in value.items() if v is not None})
    if isinstance(value, (list, tuple)):
        return GLib.Variant("av", [variant(v) for v in value])
    return GLib.Variant("s", str(value))


def details(decision: Decision) -> dict:
    return {k: variant(v) for k, v in decision.as_dict().items() if v is not None}
