"""Proof that a request comes from a person at this machine, asked of logind and systemd.

Face unlock answers for whoever is in front of the camera, so it may only
authenticate a request that a person at the machine made, for themselves.
Presence is proven, never assumed from the absence of a session. For the
process that asks (the PAM application, or a D-Bus caller) and its ancestors:

1. The first of them that is in a logind session decides: that session must be
   local (``Remote=no``), on a seat, active there, and the requester's (the
   user being authenticated, unless ``[pam] other_user`` lets a requester in
   their own session authenticate as someone else).
2. None is in a session: the process itself must be
   a. the display manager's own unit (the unit ``display-manager.service``
      names) while a seat's active local session is a greeter or the user's
      own: a login screen, or the lock screen GDM unlocks; or
   b. ``login`` on the console in front: its unit is ``getty@ttyN.service`` or
      ``autovt@ttyN.service``, ttyN is the foreground virtual console
      (``/sys/class/tty/tty0/active``) and PAM_TTY names it.
3. Anything else is refused: a job of cron or at, a system service, and a
   user's own systemd services (an SSH login starts those with
   ``systemd-run --user``). ``[pam] user_services = true`` opts in to
   accepting the requester's own systemd services while the requester has an
   active local session at a seat (GNOME runs its shell, polkit agent and
   terminals there); SECURITY.md says what that gives up.

The requester is who asks: the real uid of the PAM application when it is not
root (polkit-agent-helper-1 run by alice's agent is alice, whatever PAM_RUSER
says), PAM_RUSER only when the real uid is root, else unknown. Only logind's
and systemd's D-Bus APIs are used (no libsystemd), each call with a short
timeout and without auto-start; anything they cannot answer is a refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gi.repository import Gio, GLib

from faceunlock.service.bus_call import call
from faceunlock.service.names import (
    LOGIND,
    LOGIND_MANAGER,
    LOGIND_PATH,
    LOGIND_SESSION,
    PROPERTIES,
    SYSTEMD,
    SYSTEMD_MANAGER,
    SYSTEMD_PATH,
    SYSTEMD_UNIT,
)

CALL_TIMEOUT_MS = 1000
MAX_ANCESTORS = 64
CONSOLE_LOGIN_RE = re.compile(r"^(?:getty|autovt)@(tty[0-9]+)\.service$")
FOREGROUND_CONSOLE = Path("/sys/class/tty/tty0/active")
DISPLAY_MANAGER = "display-manager.service"
SEAT_CLASSES = ("greeter", "lock-screen")
"""logind session classes of the seat's own login and lock screens."""
NOT_FOUND = (
    "org.freedesktop.login1.NoSessionForPID",
    "org.freedesktop.login1.NoUserForPID",
    "org.freedesktop.login1.NoSuchSession",
    "org.freedesktop.login1.NoSuchUser",
    "org.freedesktop.systemd1.NoUnitForPID",
    "org.freedesktop.systemd1.NoSuchUnit",
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


@dataclass(frozen=True)
class Request:
    """Who asks to authenticate whom, from which process.

    pid: the process that asks (the PAM application, or the D-Bus caller); user, uid: the account to
    authenticate; requester: the uid of who asks (None: unknown, a root process without PAM_RUSER);
    tty: PAM_TTY; any_user: ``[pam] other_user``; user_services: ``[pam] user_services``.
    """

    pid: int
    user: str
    uid: int | None
    requester: int | None = None
    tty: str = ""
    any_user: bool = False
    user_services: bool = False

    def owns(self, uid: int, name: str = "") -> bool:
        """Whether a session or process of uid (named name) is the requester's: the requester's uid
        when known, else the user's (by name where the account has no uid here)."""
        if self.requester is not None:
            return uid == self.requester
        return uid == self.uid if self.uid is not None else bool(name) and name == self.user


class LogindError(Exception):
    """logind or systemd could not be asked, or gave an answer that cannot be used."""


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


def foreground_console() -> str | None:
    """The virtual console in front (``tty2``), as the kernel reports it; None without consoles."""
    try:
        name = FOREGROUND_CONSOLE.read_text().strip()
    except OSError:
        return None
    return name or None


def bus_call(con: Gio.DBusConnection, name: str, path: str, iface: str, method: str, args, reply: str):
    """One call with a short timeout and no auto-start: the unpacked first value, None for the
    not-found errors of NOT_FOUND, LogindError for anything else."""
    try:
        return call(con, name, path, iface, method, args, reply, CALL_TIMEOUT_MS)[0]
    except GLib.Error as exc:
        if Gio.DBusError.get_remote_error(exc) in NOT_FOUND:
            return None
        raise LogindError(f"{name} did not answer {method}: {exc.message}") from None


class Logind:
    """The few logind calls the proof needs, on one connection."""

    def __init__(self, con: Gio.DBusConnection):
        self.con = con

    def call(self, path: str, iface: str, method: str, args: GLib.Variant | None, reply: str):
        return bus_call(self.con, LOGIND, path, iface, method, args, reply)

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
            return Session(
                id=str(p["Id"]),
                user=str(p["Name"]),
                uid=int(p["User"][0]),
                remote=bool(p["Remote"]),
                remote_host=str(p.get("RemoteHost", "")),
                seat=str(p["Seat"][0]),
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


class Systemd:
    """The unit a process runs in, and the display manager's unit, asked of systemd (PID 1)."""

    def __init__(self, con: Gio.DBusConnection):
        self.con = con

    def unit_id(self, path: str | None) -> str | None:
        if path is None:
            return None
        args = GLib.Variant("(ss)", (SYSTEMD_UNIT, "Id"))
        value = bus_call(self.con, SYSTEMD, path, PROPERTIES, "Get", args, "(v)")
        if not isinstance(value, str):
            raise LogindError(f"systemd's unit {path} has no Id")
        return value

    def manager(self, method: str, args: GLib.Variant) -> str | None:
        return self.unit_id(bus_call(self.con, SYSTEMD, SYSTEMD_PATH, SYSTEMD_MANAGER, method, args, "(o)"))

    def unit_of(self, pid: int) -> str | None:
        return self.manager("GetUnitByPID", GLib.Variant("(u)", (pid,)))

    def display_manager(self) -> str | None:
        """The unit display-manager.service is an alias of (gdm.service, lightdm.service...), if any."""
        return self.manager("GetUnit", GLib.Variant("(s)", (DISPLAY_MANAGER,)))


def at_the_machine(s: Session) -> str | None:
    """Why this session is not one at the machine, or None."""
    if s.remote:
        return f"{s.where()} is a remote session" + (f" from {s.remote_host}" if s.remote_host else "")
    if not s.seat:
        return f"{s.where()} has no seat (it is not at the machine)"
    if not s.active:
        return f"{s.where()} is not the active session of {s.seat}"
    return None


def session_rule(s: Session, req: Request) -> str | None:
    """Rule 1: the first session in the chain must be at the machine and the requester's (or the
    seat's own greeter or lock screen, whose processes are the system's, not a user's)."""
    why = at_the_machine(s)
    if why is not None:
        return why
    if s.kind in SEAT_CLASSES or (req.any_user and req.requester is None):
        return None
    if not req.owns(s.uid, s.user):
        who = req.user if req.requester in (None, req.uid) else f"uid {req.requester}"
        return f"the request comes from {s.where()}, not from a session of {who}"
    return None


def system_rule(logind: Logind, systemd: Systemd, req: Request, console) -> str | None:
    """Rule 2: the display manager, or login on the console in front; a refusal otherwise."""
    unit = systemd.unit_of(req.pid)
    if unit is not None and unit == systemd.display_manager():
        for s in logind.sessions():
            mine = s.uid == req.uid or s.user == req.user
            if at_the_machine(s) is None and (s.kind in SEAT_CLASSES or mine):
                return None
        return f"the display manager ({unit}) asks, but no greeter or session of {req.user} is in front"
    login = CONSOLE_LOGIN_RE.fullmatch(unit or "")
    if login:
        vt, front = login.group(1), console()
        if vt != front:
            return f"login on {vt}, which is not the console in front ({front or 'none'})"
        if req.tty.removeprefix("/dev/") != vt:
            return f"login on {vt} gives PAM_TTY {req.tty!r}"
        return None
    return (
        f"the request comes from outside any login session ({unit or 'no unit'}): a job of cron or at "
        "or a service is not a person at the machine"
    )


def user_services_rule(logind: Logind, path: str, req: Request) -> str | None:
    """Rule 3, opted in: the requester's own systemd services while the requester is at a seat."""
    owner = logind.user_uid(path)
    if not req.owns(owner) and not (req.any_user and req.requester is None):
        return f"the request comes from a process of uid {owner}, not of {req.user}"
    if not [s for s in logind.sessions() if s.uid == owner and at_the_machine(s) is None]:
        return f"uid {owner} has no active local session at a seat"
    return None


def refusal(
    logind: Logind, req: Request, systemd: Systemd | None = None, console=foreground_console
) -> str | None:
    """Why req is not proven to come from a person at the machine, or None.

    systemd None (the daemon's non-root callers) skips rule 2: only a session, or the opt-in rule 3.
    """
    if req.requester is not None and req.requester != req.uid and not req.any_user:
        return f"uid {req.requester} may not authenticate as {req.user} ([pam] other_user)"
    chain = ancestors(req.pid) or [req.pid]
    for p in chain:
        path = logind.session_of(p)
        if path is not None:
            return session_rule(logind.session(path), req)
    users = [path for path in map(logind.user_of, chain) if path is not None]
    if users:
        if req.user_services:
            return user_services_rule(logind, users[0], req)
        return (
            f"the request comes from uid {logind.user_uid(users[0])}'s own systemd services, outside any "
            "login session: systemd-run --user from an SSH login is not a person at the machine "
            "([pam] user_services)"
        )
    if systemd is None:
        return "the request comes from outside any login session"
    return system_rule(logind, systemd, req, console)
