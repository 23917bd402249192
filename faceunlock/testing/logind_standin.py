"""A stand-in for systemd-logind (org.freedesktop.login1) on a private test bus.

logind cannot run here (no systemd as PID 1), so this small service plays the
part of logind that faceunlock's watcher uses, with logind's names and types:

- Manager (/org/freedesktop/login1): ListSessions, GetSession, GetSessionByPID,
  GetUserByPID, LockSession, UnlockSession; signals PrepareForSleep,
  SessionNew, SessionRemoved.
- Session (/org/freedesktop/login1/session/<id>): properties Id, Name, User,
  Remote, RemoteHost, Seat, Class, Active, LockedHint, IdleHint
  (PropertiesChanged on change); methods Lock, Unlock, SetIdleHint,
  SetLockedHint; signals Lock, Unlock. A local session is on seat0; a remote
  one has no seat, as logind gives an SSH login.
- User (/org/freedesktop/login1/user/_<uid>): property UID.

As on real logind, the Lock()/Unlock() methods make logind emit the Lock/Unlock
signals to the session's locker. The stand-in also plays the locker: on those
signals it sets LockedHint. Every Unlock() call is recorded with its
CLOCK_MONOTONIC time, readable through the test-only interface
org.faceunlock.test.LogindStandIn on the manager object (UnlockCalls,
EmitPrepareForSleep, SetActive (a session comes to the front of its seat, or
leaves it), and MapPid / MapPidUser, which say which session or user a process
belongs to: logind reads that from the process's cgroup, which a test cannot
set up without systemd). The same process also plays systemd's manager
(faceunlock.testing.systemd_standin): which unit a process runs in.

Usage: python -m faceunlock.testing.logind_standin --session ID:UID:NAME[:remote] ...
(bus: DBUS_SYSTEM_BUS_ADDRESS)
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import pydbus
from gi.repository import Gio, GLib

from faceunlock.testing.systemd_standin import NAME as SYSTEMD_NAME
from faceunlock.testing.systemd_standin import SystemdStandIn

NAME = "org.freedesktop.login1"
PATH = "/org/freedesktop/login1"
MANAGER = "org.freedesktop.login1.Manager"
SESSION = "org.freedesktop.login1.Session"
USER = "org.freedesktop.login1.User"
CONTROL = "org.faceunlock.test.LogindStandIn"

XML = f"""
<node>
  <interface name="{MANAGER}">
    <method name="ListSessions"><arg direction="out" type="a(susso)"/></method>
    <method name="GetSession"><arg direction="in" type="s"/><arg direction="out" type="o"/></method>
    <method name="GetSessionByPID"><arg direction="in" type="u"/><arg direction="out" type="o"/></method>
    <method name="GetUserByPID"><arg direction="in" type="u"/><arg direction="out" type="o"/></method>
    <method name="LockSession"><arg direction="in" type="s"/></method>
    <method name="UnlockSession"><arg direction="in" type="s"/></method>
    <signal name="PrepareForSleep"><arg type="b"/></signal>
    <signal name="SessionNew"><arg type="s"/><arg type="o"/></signal>
    <signal name="SessionRemoved"><arg type="s"/><arg type="o"/></signal>
  </interface>
  <interface name="{CONTROL}">
    <method name="EmitPrepareForSleep"><arg direction="in" type="b"/></method>
    <method name="UnlockCalls"><arg direction="in" type="s"/><arg direction="out" type="ad"/></method>
    <method name="MapPid"><arg direction="in" type="u"/><arg direction="in" type="s"/></method>
    <method name="MapPidUser"><arg direction="in" type="u"/><arg direction="in" type="u"/></method>
    <method name="SetActive"><arg direction="in" type="s"/><arg direction="in" type="b"/></method>
  </interface>
  <interface name="{USER}">
    <property name="UID" type="u" access="read"/>
  </interface>
  <interface name="{SESSION}">
    <property name="Id" type="s" access="read"/>
    <property name="Name" type="s" access="read"/>
    <property name="User" type="(uo)" access="read"/>
    <property name="Remote" type="b" access="read"/>
    <property name="RemoteHost" type="s" access="read"/>
    <property name="Seat" type="(so)" access="read"/>
    <property name="Class" type="s" access="read"/>
    <property name="Active" type="b" access="read"/>
    <property name="LockedHint" type="b" access="read"/>
    <property name="IdleHint" type="b" access="read"/>
    <method name="Lock"/>
    <method name="Unlock"/>
    <method name="SetIdleHint"><arg direction="in" type="b"/></method>
    <method name="SetLockedHint"><arg direction="in" type="b"/></method>
    <signal name="Lock"/>
    <signal name="Unlock"/>
  </interface>
</node>
"""
TYPES = {"Id": "s", "Name": "s", "User": "(uo)", "Remote": "b", "Class": "s", "Active": "b"}
TYPES.update(RemoteHost="s", Seat="(so)")
TYPES.update(LockedHint="b", IdleHint="b")


class StandIn:
    def __init__(self, bus, sessions: list[tuple[str, int, str, bool]]):
        self.bus = bus
        self.con = bus.con
        self.unlock_calls: dict[str, list[float]] = {}
        self.pid_sessions: dict[int, str] = {}
        self.pid_users: dict[int, int] = {}
        self.sessions = {}
        for sid, uid, name, remote in sessions:
            self.sessions[sid] = {
                "Id": sid,
                "Name": name,
                "User": (uid, f"{PATH}/user/_{uid}"),
                "Remote": remote,
                "RemoteHost": "192.0.2.7" if remote else "",
                "Seat": ("", "/") if remote else ("seat0", f"{PATH}/seat/seat0"),
                "Class": "user",
                "Active": True,
                "LockedHint": False,
                "IdleHint": False,
            }
        node = Gio.DBusNodeInfo.new_for_xml(XML)
        iface = {i.name: i for i in node.interfaces}
        for name in (MANAGER, CONTROL):
            self.con.register_object(PATH, iface[name], self.manager_call, None, None)
        for sid in self.sessions:
            self.con.register_object(
                self.path(sid), iface[SESSION], self.session_call, self.get_property, None
            )
        for uid in sorted({s["User"][0] for s in self.sessions.values()}):
            self.con.register_object(
                f"{PATH}/user/_{uid}", iface[USER], None, lambda *a, uid=uid: GLib.Variant("u", uid), None
            )

    @staticmethod
    def path(sid: str) -> str:
        return f"{PATH}/session/{sid}"

    def sid(self, path: str) -> str:
        return path.rsplit("/", 1)[1]

    def emit(self, path: str, iface: str, signal_name: str, args: GLib.Variant | None = None) -> None:
        self.con.emit_signal(None, path, iface, signal_name, args)

    def set(self, sid: str, prop: str, value) -> None:
        """Set a session property; PropertiesChanged only on a real change, as logind does."""
        if self.sessions[sid][prop] == value:
            return
        self.sessions[sid][prop] = value
        changed = {prop: GLib.Variant(TYPES[prop], value)}
        args = GLib.Variant("(sa{sv}as)", (SESSION, changed, []))
        self.emit(self.path(sid), "org.freedesktop.DBus.Properties", "PropertiesChanged", args)

    def lock(self, sid: str) -> None:
        self.emit(self.path(sid), SESSION, "Lock")
        self.set(sid, "LockedHint", True)

    def unlock(self, sid: str) -> None:
        self.unlock_calls.setdefault(sid, []).append(time.monotonic())
        self.emit(self.path(sid), SESSION, "Unlock")
        self.set(sid, "LockedHint", False)

    def get_property(self, con, sender, path, iface, prop):
        return GLib.Variant(TYPES[prop], self.sessions[self.sid(path)][prop])

    def session_call(self, con, sender, path, iface, method, params, invocation):
        sid = self.sid(path)
        args = params.unpack()
        if method == "Lock":
            self.lock(sid)
        elif method == "Unlock":
            self.unlock(sid)
        elif method == "SetIdleHint":
            self.set(sid, "IdleHint", args[0])
        elif method == "SetLockedHint":
            self.set(sid, "LockedHint", args[0])
        invocation.return_value(None)

    def manager_call(self, con, sender, path, iface, method, params, invocation):
        args = params.unpack()
        if method in ("GetSession", "LockSession", "UnlockSession") and args[0] not in self.sessions:
            invocation.return_dbus_error("org.freedesktop.login1.NoSuchSession", f"no session {args[0]}")
            return
        reply = None
        if method == "ListSessions":
            rows = [
                (s["Id"], s["User"][0], s["Name"], s["Seat"][0], self.path(sid))
                for sid, s in self.sessions.items()
            ]
            reply = GLib.Variant("(a(susso))", (rows,))
        elif method == "GetSession":
            reply = GLib.Variant("(o)", (self.path(args[0]),))
        elif method == "LockSession":
            self.lock(args[0])
        elif method == "UnlockSession":
            self.unlock(args[0])
        elif method == "EmitPrepareForSleep":
            self.emit(PATH, MANAGER, "PrepareForSleep", GLib.Variant("(b)", (args[0],)))
        elif method == "UnlockCalls":
            reply = GLib.Variant("(ad)", (self.unlock_calls.get(args[0], []),))
        elif method == "GetSessionByPID":
            if args[0] not in self.pid_sessions:
                invocation.return_dbus_error("org.freedesktop.login1.NoSessionForPID", f"PID {args[0]}")
                return
            reply = GLib.Variant("(o)", (self.path(self.pid_sessions[args[0]]),))
        elif method == "GetUserByPID":
            uid = self.pid_users.get(args[0])
            if uid is None and args[0] in self.pid_sessions:
                uid = self.sessions[self.pid_sessions[args[0]]]["User"][0]
            if uid is None:
                invocation.return_dbus_error("org.freedesktop.login1.NoUserForPID", f"PID {args[0]}")
                return
            reply = GLib.Variant("(o)", (f"{PATH}/user/_{uid}",))
        elif method == "MapPid":
            self.pid_sessions[args[0]] = args[1]
            if not args[1]:
                del self.pid_sessions[args[0]]
        elif method == "SetActive":
            self.set(args[0], "Active", args[1])
        elif method == "MapPidUser":
            self.pid_users[args[0]] = args[1]
            if not args[1]:
                del self.pid_users[args[0]]
        invocation.return_value(reply)


def parse_session(text: str) -> tuple[str, int, str, bool]:
    parts = text.split(":")
    return parts[0], int(parts[1]), parts[2], len(parts) > 3 and parts[3] == "remote"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--session", action="append", type=parse_session, default=[])
    args = p.parse_args()
    bus = pydbus.SystemBus()
    StandIn(bus, args.session)
    SystemdStandIn(bus.con)
    bus.request_name(NAME, allow_replacement=False)
    bus.request_name(SYSTEMD_NAME, allow_replacement=False)
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
