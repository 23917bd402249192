"""Named D-Bus errors: raising one in a method handler replies with its name and message."""

from faceunlock.service.names import ERROR_PREFIX


class ServiceError(Exception):
    """A failure answered to the caller as the D-Bus error ``<interface>.Error.<class name>``."""

    @property
    def dbus_name(self) -> str:
        return ERROR_PREFIX + type(self).__name__


class PermissionDenied(ServiceError):
    """The caller may not do this (verify another user, enrol, delete)."""


class NotEnrolled(ServiceError):
    """The user has no enrolment."""


class Busy(ServiceError):
    """The camera is in use and the waiting queue is full."""


class InvalidArgument(ServiceError):
    """A malformed user name, label or session id."""


class NotArmed(ServiceError):
    """unlock-now: no locked session of the caller can be unlocked now (and why)."""


class Failed(ServiceError):
    """The operation could not be done: camera unusable, too few good frames, unusable template."""


class Internal(ServiceError):
    """An unexpected error in the daemon; it is logged."""
