"""Publishing the service object with pydbus, with replies that can come later.

pydbus answers a method call with the handler's return value, which would keep
the main loop blocked for a whole scan. Here each handler receives a ``Call``
first and answers through it, at once or when the camera worker is done, so
the loop stays free for other callers, property reads and logind signals.
Properties and signals are pydbus's own, except that a property the object
names in ``PRIVATE_PROPERTIES`` is read only by senders its
``may_read_private(sender)`` accepts: others get AccessDenied from Get, and
GetAll leaves it out.
"""

from __future__ import annotations

import logging

from gi.repository import Gio, GLib
from pydbus.registration import ObjectRegistration, ObjectWrapper

from faceunlock.service.errors import Internal, ServiceError

log = logging.getLogger("faceunlock.service")
PROPERTIES = "org.freedesktop.DBus.Properties"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"


class Call:
    """One method call: who sent it, and its answer. Use on the main loop's thread only."""

    def __init__(self, invocation: Gio.DBusMethodInvocation, out_signature: str):
        self.invocation = invocation
        self.sender = invocation.get_sender()
        self.method = invocation.get_method_name()
        self.signature = out_signature
        self.answered = False

    def reply(self, *values) -> None:
        if self.answered:
            return
        try:
            value = None if self.signature == "()" else GLib.Variant(self.signature, values)
        except (TypeError, ValueError, OverflowError):
            log.exception("cannot encode the reply of %s", self.method)
            self.fail(Internal(f"{self.method} produced a reply that cannot be sent; see the daemon's log"))
            return
        self.answered = True
        self.invocation.return_value(value)

    def fail(self, error: ServiceError) -> None:
        if self.answered:
            return
        self.answered = True
        self.invocation.return_dbus_error(error.dbus_name, str(error))


class DeferredWrapper(ObjectWrapper):
    """pydbus's wrapper, but the interface's methods are called as handler(call, *args)."""

    def __init__(self, obj, interfaces, interface: str):
        super().__init__(obj, interfaces)
        self.interface = interface

    def call_method(
        self, connection, sender, object_path, interface_name, method_name, parameters, invocation
    ):
        if interface_name == PROPERTIES and self.hides(method_name, parameters.unpack(), sender):
            if method_name == "Get":
                invocation.return_dbus_error(ACCESS_DENIED, f"{parameters.unpack()[1]} is not yours to read")
            else:
                everything = self.GetAll(parameters.unpack()[0])
                shown = {k: v for k, v in everything.items() if k not in self.object.PRIVATE_PROPERTIES}
                invocation.return_value(GLib.Variant("(a{sv})", (shown,)))
            return None
        if interface_name != self.interface:
            return super().call_method(
                connection, sender, object_path, interface_name, method_name, parameters, invocation
            )
        outargs = self.outargs[f"{interface_name}.{method_name}"]
        call = Call(invocation, "(" + "".join(outargs) + ")")
        try:
            getattr(self.object, method_name)(call, *parameters.unpack())
        except ServiceError as exc:
            call.fail(exc)
        except Exception:  # noqa: BLE001  (answer every call; the traceback goes to the log)
            log.exception("%s failed", method_name)
            call.fail(Internal(f"{method_name} failed inside the daemon; see its log"))

    def hides(self, method: str, parameters, sender: str) -> bool:
        """Whether this property read must hide a private property from sender."""
        private = getattr(self.object, "PRIVATE_PROPERTIES", frozenset())
        if not private or method not in ("Get", "GetAll"):
            return False
        if method == "Get" and parameters[1] not in private:
            return False
        return not self.object.may_read_private(sender)


def publish(bus, path: str, obj, xml: str, interface: str) -> ObjectRegistration:
    """Register obj at path; returns the registration (call .unregister() to withdraw it)."""
    interfaces = Gio.DBusNodeInfo.new_for_xml(xml).interfaces
    wrapper = DeferredWrapper(obj, interfaces, interface)
    return ObjectRegistration(bus, path, interfaces, wrapper, own_wrapper=True)
