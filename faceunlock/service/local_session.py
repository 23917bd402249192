"""Proof that a request comes from someone sitting at this machine, asked of logind.

Face unlock answers for whoever is in front of the camera, so it may only
authenticate a request made at the machine, by the person being checked. A
request is local when, walking up from the requesting process to init:

1. the first process that belongs to a logind session is in a session that is
   local (``Remote=no``), on a seat, active on that seat, and belongs to the
   user being authenticated; or
2. no process is in a session, but the first one that belongs to a logind user
   (a user's systemd services, where desktops run terminals) is that user's,
   and that user has a local, active session on a seat; or
3. no process belongs to any user (a display manager or ``login`` run by a
   system service): the terminal is a virtual console, or a seat's active
   session is local and is a greeter or the user's own.

``su bob`` typed by alice in her own session fails rule 1 (the session is
alice's), and from an SSH login it fails as a remote session. Only the
calls of logind's D-Bus API are used (no libsystemd), each with a short
timeout; anything logind cannot answer is a refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gi.repository import Gio, GLib

from faceunlock.service.names import LOGIND, LOGIND_MANAGER, LOGIND_PATH, LOGIND_SESSION, PROPERTIES

CALL_TIMEOUT_MS = 1000
MAX_ANCESTORS = 64
VT_RE = re.compile(r"^(/dev/)?tty[0-9]+$")
NOT_FOUND = (
    "org.freedesktop.login1.NoSessionForPID",
    "org.freedesktop.login1.NoUserForPID",
    "org.freedesktop.login1.NoSuchSession",
    "org.freedesktop.login1.NoSuchUser",
)


@dataclass(frozen=True)
class Session:
    """The properties of a logind session that decide whether it is at the machine."""

    id: str
    user: str
    uid: int
    remote: bool
    remote_host: str
    seat: str
    active: bool
    kind: str

    def where(self) -> str:
        return f"session {self.id} of {self.user}"


class LogindError(Exception):
    """logind could not be asked, or gave an answer that cannot be used."""


def ancestors(pid: int) -> list[int]:
    """pid, its parent, and so on up to (not including) init, as far as /proc lets us see."""
    chain = []
    while pid > 1 and len(chain) < MAX_ANCESTORS:
        chain.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return chain


class Logind:
    """The few logind calls the proof needs, on one connection, each with a timeout."""

    def __init__(self, con: Gio.DBusConnection):
        self.con = con

    def call(self, path: str, iface: str, method: str, args: GLib.Variant | None, reply: str):
        try:
            result = self.con.call_sync(
                LOGIND,
                path,
                iface,
                method,
                args,
                GLib.VariantType(reply),
                Gio.DBusCallFlags.NO_AUTO_START,
                CALL_TIMEOUT_MS,
                None,
            )
        except GLib.Error as exc:
            if Gio.DBusError.get_remote_error(exc) in NOT_FOUND:
                return None
            raise LogindError(f"logind did not answer {method}: {exc.message}") from None
        return result.unpack()[0]

    def session_of(self, pid: int) -> str | None:
        return self.call(LOGIND_PATH, LOGIND_MANAGER, "GetSessionByPID", GLib.Variant("(u)", (pid,)), "(o)")

    def user_of(self, pid: int) -> str | None:
        return self.call(LOGIND_PATH, LOGIND_MANAGER, "GetUserByPID", GLib.Variant("(u)", (pid,)), "(o)")

    def properties(self, path: str, iface: str) -> dict:
        props = self.call(path, PROPERTIES, "GetAll", GLib.Variant("(s)", (iface,)), "(a{sv})")
        if props is None:
            raise LogindError(f"logind has no object {path}")
        return props

    def session(self, path: str) -> Session:
        p = self.properties(path, LOGIND_SESSION)
        try:
            uid = int(p["User"][0])
            seat = str(p["Seat"][0])
            return Session(
                id=str(p["Id"]),
                user=str(p["Name"]),
                uid=uid,
                remote=bool(p["Remote"]),
                remote_host=str(p.get("RemoteHost", "")),
                seat=seat,
                active=bool(p["Active"]),
                kind=str(p.get("Class", "")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise LogindError(f"logind's session {path} lacks {exc}") from None

    def sessions(self) -> list[Session]:
        rows = self.call(LOGIND_PATH, LOGIND_MANAGER, "ListSessions", None, "(a(susso))") or []
        return [self.session(path) for *_rest, path in rows]

    def user_uid(self, path: str) -> int:
        try:
            return int(self.properties(path, "org.freedesktop.login1.User")["UID"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LogindError(f"logind's user {path} lacks {exc}") from None


def at_the_machine(s: Session) -> str | None:
    """Why this session is not one at the machine, or None."""
    if s.remote:
        return f"{s.where()} is a remote session" + (f" from {s.remote_host}" if s.remote_host else "")
    if not s.seat:
        return f"{s.where()} has no seat (it is not at the machine)"
    if not s.active:
        return f"{s.where()} is not the active session of {s.seat}"
    return None


def refusal(
    logind: Logind, pid: int, user: str, uid: int | None, tty: str = "", any_user: bool = False
) -> str | None:
    """Why a request from process pid to authenticate user (uid) is not proven local, or None.

    any_user (``[pam] other_user``) accepts a local session of another user than the one checked.
    """
    chain = ancestors(pid) or [pid]
    for p in chain:
        path = logind.session_of(p)
        if path is not None:
            s = logind.session(path)
            why = at_the_machine(s)
            if why is None and s.user != user and not any_user:
                why = f"the request comes from {s.where()}, not from a session of {user}"
            return why
    for p in chain:
        path = logind.user_of(p)
        if path is not None:
            owner = logind.user_uid(path)
            if (uid is None or owner != uid) and not any_user:
                return f"the request comes from a process of uid {owner}, not of {user}"
            local = [s for s in logind.sessions() if s.uid == owner and at_the_machine(s) is None]
            if not local:
                return f"uid {owner} has no active local session at a seat"
            return None
    if VT_RE.fullmatch(tty):
        return None
    for s in logind.sessions():
        if at_the_machine(s) is None and (s.kind == "greeter" or s.user == user):
            return None
    return "no local session: the request is not from a session at a seat, a virtual console or a greeter"
