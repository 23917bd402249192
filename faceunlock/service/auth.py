"""Who is calling: the caller's uid comes from the bus, never from the message.

Root may do everything. Any other caller may verify (and list) only their own
user and unlock only their own sessions; enrol and delete are root only. The
bus policy in dbus/ enforces the root-only methods a second time.
"""

from __future__ import annotations

import pwd

from faceunlock.service.errors import PermissionDenied

DBUS = "org.freedesktop.DBus"


def caller_uid(bus, sender: str) -> int:
    """The unix uid behind a unique bus name (org.freedesktop.DBus.GetConnectionUnixUser)."""
    if not sender:
        raise PermissionDenied("the caller has no bus name")
    try:
        return int(bus.dbus.GetConnectionUnixUser(sender))
    except Exception as exc:  # noqa: BLE001  (fail closed: an unknown caller is refused)
        raise PermissionDenied(f"cannot tell who the caller is: {exc}") from None


def caller_pid(bus, sender: str) -> int:
    """The process id behind a unique bus name (org.freedesktop.DBus.GetConnectionUnixProcessID)."""
    try:
        return int(bus.dbus.GetConnectionUnixProcessID(sender))
    except Exception as exc:  # noqa: BLE001  (fail closed: an unknown caller is refused)
        raise PermissionDenied(f"cannot tell which process is calling: {exc}") from None


def name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def uid_of(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def require_root(uid: int, action: str) -> None:
    if uid != 0:
        raise PermissionDenied(f"{action} is for root only (caller uid {uid})")


def require_self_or_root(uid: int, user: str, action: str) -> None:
    """Non-root callers may act only on the user account they are."""
    if uid == 0:
        return
    if uid_of(user) != uid:
        raise PermissionDenied(f"uid {uid} may not {action} user {user!r}; only its own user")
