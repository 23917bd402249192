"""Automatic unlock: watch logind, scan on a trigger, call the session's Unlock() on a verified match.

Arming: a local session of an enrolled user that is the active session of a
seat is armed when logind sends its ``Lock`` signal, its ``LockedHint`` turns
true, or it becomes active while locked, and logind confirms that
``LockedHint`` is true (a ``Lock`` of a locked session starts a new arming: a
fresh grace period and scan count). It is disarmed by ``Unlock``,
``LockedHint`` false, becoming inactive (another user's session switched to
the front), its removal, or our own unlock. So the person in front of the
camera is only ever checked against the session on the screen: a background
session under fast user switching is never unlocked behind another user's.

Only logind's signals count: the unique name that owns org.freedesktop.login1
is tracked with a name watch, and a signal from any other connection is
dropped, whatever the bus or GLib's match rules let through (any local user
may send signals on the system bus).

Triggers: the session's ``IdleHint`` turning false, ``PrepareForSleep(false)``
(resume), or an explicit request (``UnlockNow``). A trigger starts one bounded
scan unless the grace period since the lock has not passed, a scan is already
running, or the scans per lock are used up. Before scanning and again before
unlocking, ``LockedHint`` and ``Active`` are read back from logind itself, so
a spoofed signal can at most start a scan of a session that really is locked
and in front.

The grace period is measured on CLOCK_BOOTTIME, which keeps counting during
suspend. Every logind call has a short timeout; any failure means no unlock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gi.repository import GLib

from faceunlock.config import DaemonConfig
from faceunlock.decision import Decision
from faceunlock.service.bus_call import call
from faceunlock.service.errors import Busy, NotArmed
from faceunlock.service.names import LOGIND, LOGIND_MANAGER, LOGIND_PATH, LOGIND_SESSION, PROPERTIES

log = logging.getLogger("faceunlock.logind")

CALL_TIMEOUT_MS = 2000
Outcome = Callable[[str, str], None]


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass
class Armed:
    """A locked session that a scan may unlock."""

    path: str
    session_id: str
    user: str
    uid: int
    locked_at: float
    scans: int = 0
    scanning: bool = False


class Logind:
    """The logind watcher. Runs on the main loop's thread; ``scan`` queues a scan on the camera worker."""

    def __init__(
        self,
        bus,
        cfg: DaemonConfig,
        enrolled: Callable[[str], bool],
        scan: Callable[..., bool],
        clock: Callable[[], float] = boottime,
    ):
        self.bus = bus
        self.cfg = cfg
        self.enrolled = enrolled
        self.scan = scan
        self.clock = clock
        self.armed: dict[str, Armed] = {}
        self.unlock = True
        """False: locks are watched (for the lock screens' grace period) but nothing is scanned."""
        self.handles: list = []
        self.owner: str | None = None

    def start(self) -> None:
        def sub(iface: str, name: str, handler):
            return self.bus.subscribe(
                sender=LOGIND, iface=iface, signal=name, signal_fired=self.only_logind(handler)
            )

        self.handles = [
            sub(PROPERTIES, "PropertiesChanged", self.on_properties),
            sub(LOGIND_SESSION, "Lock", self.on_lock),
            sub(LOGIND_SESSION, "Unlock", self.on_unlock),
            sub(LOGIND_MANAGER, "PrepareForSleep", self.on_sleep),
            sub(LOGIND_MANAGER, "SessionRemoved", self.on_removed),
            self.bus.watch_name(LOGIND, name_appeared=self.on_appeared, name_vanished=self.on_vanished),
        ]

    def only_logind(self, handler):
        """Wrap a signal handler so that it runs only for signals sent by logind's own connection."""

        def checked(sender, path, iface, signal, params) -> None:
            if self.owner is None or sender != self.owner:
                log.warning("dropped %s.%s from %s: not logind (%s)", iface, signal, sender, self.owner)
                return
            handler(sender, path, iface, signal, params)

        return checked

    def stop(self) -> None:
        for handle in self.handles:
            handle.__exit__(None, None, None)
        self.handles = []

    def call(self, path: str, iface: str, method: str, args=None, reply: str | None = None):
        """A synchronous logind call with a short timeout; returns the unpacked reply."""
        return call(self.bus.con, LOGIND, path, iface, method, args, reply, CALL_TIMEOUT_MS)

    def session(self, path: str) -> dict:
        return self.call(path, PROPERTIES, "GetAll", GLib.Variant("(s)", (LOGIND_SESSION,)), "(a{sv})")[0]

    def still_locked(self, armed: Armed) -> bool:
        """LockedHint and Active, read back from logind: the session is locked and in front."""
        try:
            props = self.session(armed.path)
        except GLib.Error as exc:
            log.warning("cannot read session %s: %s", armed.session_id, exc.message)
            return False
        return props.get("LockedHint") is True and props.get("Active") is True

    def on_appeared(self, owner: str) -> None:
        self.owner = owner
        log.info("logind is on the bus (%s); looking for locked sessions", owner)
        try:
            sessions = self.call(LOGIND_PATH, LOGIND_MANAGER, "ListSessions", None, "(a(susso))")[0]
        except GLib.Error as exc:
            log.warning("cannot list logind sessions: %s", exc.message)
            return
        for _sid, _uid, _user, _seat, path in sessions:
            self.arm(path, "already locked", new_lock=False, only_if_locked=True)

    def on_vanished(self) -> None:
        self.owner = None
        if self.armed:
            log.info("logind left the bus; disarming %d session(s)", len(self.armed))
        self.armed.clear()

    def on_lock(self, sender, path, iface, signal, params) -> None:
        self.arm(path, "Lock signal", new_lock=True, only_if_locked=True)

    def on_unlock(self, sender, path, iface, signal, params) -> None:
        self.disarm(path, "Unlock signal")

    def on_removed(self, sender, path, iface, signal, params) -> None:
        self.disarm(params[1], "session removed")

    def on_properties(self, sender, path, iface, signal, params) -> None:
        interface, changed, invalidated = params
        if interface != LOGIND_SESSION:
            return
        if changed.get("LockedHint") is True or "LockedHint" in invalidated:
            self.arm(path, "LockedHint", new_lock=False, only_if_locked=True)
        elif changed.get("LockedHint") is False:
            self.disarm(path, "LockedHint false")
        if changed.get("Active") is False:
            self.disarm(path, "no longer the active session of its seat")
        elif changed.get("Active") is True or "Active" in invalidated:
            self.arm(path, "became active", new_lock=True, only_if_locked=True)
        if changed.get("IdleHint") is False:
            self.trigger(path, "IdleHint false")

    def on_sleep(self, sender, path, iface, signal, params) -> None:
        if params[0] is False:
            for armed_path in list(self.armed):
                self.trigger(armed_path, "resume from sleep")

    def arm(self, path: str, why: str, new_lock: bool, only_if_locked: bool = False) -> None:
        if path in self.armed and not new_lock:
            return
        try:
            props = self.session(path)
        except GLib.Error as exc:
            log.warning("cannot read logind session %s: %s", path, exc.message)
            return
        user, sid = props.get("Name", ""), props.get("Id", "")
        if only_if_locked and props.get("LockedHint") is not True:
            self.disarm(path, "not locked")
            return
        if props.get("Remote", True):
            log.info("session %s of %s is remote (or says nothing): not armed", sid, user)
            return
        seat = props.get("Seat", ("", ""))[0]
        if not seat or props.get("Active") is not True:
            self.disarm(path, "not the active session of a seat")
            log.info("session %s of %s is not the active session of a seat: not armed", sid, user)
            return
        if not self.enrolled(user):
            return
        uid = props.get("User", (-1, ""))[0]
        self.armed[path] = Armed(path, sid, user, uid, self.clock())
        log.info("armed session %s of %s (%s)", sid, user, why)

    def disarm(self, path: str, why: str) -> None:
        armed = self.armed.pop(path, None)
        if armed is not None:
            log.info("disarmed session %s of %s (%s)", armed.session_id, armed.user, why)

    def refusal(self, armed: Armed) -> str | None:
        """Why this armed session may not be scanned now, or None."""
        since = self.clock() - armed.locked_at
        if since < self.cfg.grace_period:
            return f"within the grace period ({since:.1f} of {self.cfg.grace_period:g} s since the lock)"
        if armed.scanning:
            return "a scan of this session is already running"
        if armed.scans >= self.cfg.max_scans_per_lock:
            return f"the {self.cfg.max_scans_per_lock} scans allowed per lock are used up"
        return None

    def trigger(
        self, path: str, why: str, outcome: Outcome | None = None, caller: str | None = None
    ) -> str | None:
        """Start an unlock scan of an armed session; returns why not, or None once it is queued.

        caller: the bus name of an UnlockNow caller, who alone is told of the scan's progress.
        """
        armed = self.armed.get(path)
        if armed is None:
            return "the session is not armed"
        if not self.unlock:
            return "automatic unlock is off"
        refusal = self.refusal(armed)
        if refusal is None and not self.still_locked(armed):
            self.disarm(path, "logind says it is not locked, or not in front")
            refusal = "the session is not locked, or not the active session of its seat"
        if refusal is None and not self.scan(armed, lambda d: self.scanned(armed, d, outcome), caller):
            refusal = "the camera is busy"
        if refusal is not None:
            log.info("%s on session %s of %s: no scan, %s", why, armed.session_id, armed.user, refusal)
            return refusal
        armed.scans += 1
        armed.scanning = True
        log.info("%s on session %s of %s: scan %d", why, armed.session_id, armed.user, armed.scans)
        return None

    def scanned(self, armed: Armed, decision: Decision, outcome: Outcome | None) -> None:
        armed.scanning = False
        result, reason = self.finish(armed, decision)
        log.info("session %s of %s: %s (%s)", armed.session_id, armed.user, result, reason)
        if outcome is not None:
            outcome(result, reason)

    def finish(self, armed: Armed, decision: Decision) -> tuple[str, str]:
        """Unlock after a match if the session is still the same locked, armed one."""
        if not decision.matched:
            return decision.decision, decision.reason
        if self.armed.get(armed.path) is not armed:
            return "not-unlocked", "the session was unlocked or locked again during the scan"
        if self.clock() - armed.locked_at < self.cfg.grace_period:
            return "not-unlocked", "still within the grace period"
        if not self.still_locked(armed):
            self.disarm(armed.path, "logind says it is not locked, or not in front")
            return "not-unlocked", "the session is no longer locked, or no longer in front"
        try:
            self.call(armed.path, LOGIND_SESSION, "Unlock")
        except GLib.Error as exc:
            return "error", f"logind refused Unlock(): {exc.message}"
        self.disarm(armed.path, "unlocked")
        return "unlocked", decision.reason

    def request(self, session_id: str, uid: int, outcome: Outcome, caller: str | None = None) -> None:
        """An explicit unlock request (UnlockNow): scan the caller's armed session, or say why not.

        Another user's session is answered like one that is not armed, so callers learn nothing of it.
        """
        chosen = [
            a
            for a in self.armed.values()
            if (not session_id or a.session_id == session_id) and uid in (0, a.uid)
        ]
        if not chosen:
            which = f"session {session_id} is not" if session_id else "none of your sessions is"
            raise NotArmed(f"{which} locked and armed for face unlock")
        armed = max(chosen, key=lambda a: a.locked_at)
        refusal = self.trigger(armed.path, "unlock request", outcome, caller)
        if refusal == "the camera is busy":
            raise Busy(refusal)
        if refusal is not None:
            raise NotArmed(refusal)
