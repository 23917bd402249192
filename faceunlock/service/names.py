"""The D-Bus names of the service and of logind: plain constants, importable by the tiny PAM client."""

BUS_NAME = "org.faceunlock.FaceUnlock1"
OBJECT_PATH = "/org/faceunlock/FaceUnlock1"
INTERFACE = "org.faceunlock.FaceUnlock1"
ERROR_PREFIX = f"{INTERFACE}.Error."
LEARNED_PREFIX = "learned-"
"""ListEnrolled's labels that start with this are learned looks (faceunlock.store.LEARNED_PREFIX)."""

SYSTEM_BUS_ADDRESS = "unix:path=/run/dbus/system_bus_socket"

LOGIND = "org.freedesktop.login1"
LOGIND_PATH = "/org/freedesktop/login1"
LOGIND_MANAGER = "org.freedesktop.login1.Manager"
LOGIND_SESSION = "org.freedesktop.login1.Session"
PROPERTIES = "org.freedesktop.DBus.Properties"

SYSTEMD = "org.freedesktop.systemd1"
SYSTEMD_PATH = "/org/freedesktop/systemd1"
SYSTEMD_MANAGER = "org.freedesktop.systemd1.Manager"
SYSTEMD_UNIT = "org.freedesktop.systemd1.Unit"
