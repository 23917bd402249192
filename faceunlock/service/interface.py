"""The D-Bus interface of the daemon (introspection XML) and how a decision travels in it."""

from gi.repository import GLib

from faceunlock.decision import Decision
from faceunlock.service.names import INTERFACE

INTERFACE_XML = f"""
<node>
  <interface name="{INTERFACE}">
    <method name="Verify">
      <arg direction="in" name="user" type="s"/>
      <arg direction="in" name="timeout_ms" type="u"/>
      <arg direction="out" name="decision" type="s"/>
      <arg direction="out" name="reason" type="s"/>
      <arg direction="out" name="details" type="a{{sv}}"/>
    </method>
    <method name="Enroll">
      <arg direction="in" name="user" type="s"/>
      <arg direction="in" name="label" type="s"/>
      <arg direction="in" name="frames" type="u"/>
      <arg direction="out" name="embeddings" type="u"/>
    </method>
    <method name="ListEnrolled">
      <arg direction="in" name="user" type="s"/>
      <arg direction="out" name="labels" type="as"/>
    </method>
    <method name="Delete">
      <arg direction="in" name="user" type="s"/>
      <arg direction="in" name="label" type="s"/>
    </method>
    <method name="UnlockNow">
      <arg direction="in" name="session_id" type="s"/>
      <arg direction="out" name="result" type="s"/>
      <arg direction="out" name="reason" type="s"/>
    </method>
    <property name="Version" type="s" access="read"/>
    <property name="Model" type="s" access="read"/>
    <property name="Camera" type="s" access="read"/>
    <property name="State" type="s" access="read"/>
    <signal name="VerifyStatus">
      <arg name="user" type="s"/>
      <arg name="result" type="s"/>
      <arg name="done" type="b"/>
    </signal>
  </interface>
</node>
"""


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
