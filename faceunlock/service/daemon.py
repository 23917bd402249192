"""The faceunlock D-Bus daemon: a warm pipeline behind a small system-bus interface.

The detector and embedder are loaded once at start; the camera is opened only
for a scan, by one worker thread, so one scan uses it at a time. Method calls,
properties and logind signals are served by the GLib main loop meanwhile.
Every failure is a non-match or a named D-Bus error: nothing fails open.

Fairness: each caller has at most one request queued or running (root's PAM
clients count per user checked), and a non-root caller's scan lasts at most
NON_ROOT_TIMEOUT seconds and must come from a local session at a seat, so no
one can hold the camera from afar or learn remotely who sits at the desk.

Non-root callers act on their own user only. Enrolling and deleting
(org.faceunlock.enroll) and changing settings (org.faceunlock.configure) need
polkit's authorisation, asked without blocking the loop, as fprintd does.
Those answers take a password, never a face: while the daemon waits for
polkit on one of its own actions, it refuses every root Verify (a PAM client,
which may be the polkit agent's helper answering that very question).
The ``State`` property (idle, verifying, enrolling, previewing) tells when
someone is at the desk: it is readable by root and the daemon's user alone,
and its changes are not broadcast.
Settings changed that way live in the overlay beside the templates
(faceunlock.settings); an unusable overlay stops every scan until it is fixed.
The preview and enrolment stream annotated frames to their caller alone
(faceunlock.service.streams); a preview records nothing and yields the camera
to any request that waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections import deque

import numpy as np
from gi.repository import GLib
from pydbus.generic import signal as dbus_signal

from faceunlock import __version__, runtime, settings
from faceunlock import config as config_mod
from faceunlock.audit import log_attempt
from faceunlock.config import LOCK_SCREENS, Config, PamConfig
from faceunlock.decision import Decision
from faceunlock.errors import ConfigError, UserError, describe
from faceunlock.learnable import renews
from faceunlock.lockout import Lockout
from faceunlock.model import ModelCard
from faceunlock.service import pam_policy, polkit, streams
from faceunlock.service.auth import (
    caller_pid,
    caller_uid,
    name_of,
    require_root,
    require_self_or_root,
    uid_of,
)
from faceunlock.service.errors import (
    Busy,
    Failed,
    InvalidArgument,
    NotArmed,
    NotEnrolled,
    PermissionDenied,
    ServiceError,
)
from faceunlock.service.interface import INTERFACE_XML, details, variant
from faceunlock.service.learning import Learner
from faceunlock.service.local_session import Logind as SessionLogind
from faceunlock.service.local_session import LogindError, Request, Systemd
from faceunlock.service.local_session import refusal as session_refusal
from faceunlock.service.memory import release_free_memory
from faceunlock.service.names import BUS_NAME, INTERFACE, OBJECT_PATH
from faceunlock.service.notify import notify, watchdog_interval
from faceunlock.service.publish import Call
from faceunlock.service.worker import Job, Worker
from faceunlock.store import NotEnrolled as StoreNotEnrolled
from faceunlock.store import StoreError, TemplateStore, check_label, check_user

log = logging.getLogger("faceunlock.daemon")

MIN_TIMEOUT = 0.2
MAX_TIMEOUT = 120.0
NON_ROOT_TIMEOUT = 10.0
MAX_ENROL_FRAMES = 200
STUCK_GRACE_S = 15.0
MAX_PREVIEW_S = 300.0
NON_ROOT_PREVIEW_S = 60.0
RECENT_ATTEMPTS = 50
OWN_QUESTION = (
    "faceunlock is asking polkit about a change to its own enrolments or settings, which needs a "
    "password, never a face"
)


def valid(check, value: str) -> str:
    try:
        return check(value)
    except StoreError as exc:
        raise InvalidArgument(str(exc)) from None


class FaceUnlockService:
    """The object at OBJECT_PATH. Handlers get a Call first and answer through it."""

    PropertiesChanged = dbus_signal()
    VerifyStatus = dbus_signal()
    EnrollStatus = dbus_signal()
    PreviewFrame = dbus_signal()
    """Declared for pydbus's wiring but never called: they would broadcast. status() and
    faceunlock.service.streams send them to one caller."""

    def __init__(
        self,
        bus,
        cfg: Config,
        card: ModelCard,
        pipeline,
        store: TemplateStore,
        config_path: str | None = None,
    ):
        self.bus = bus
        self.config_path = config_path
        self.root_cfg = cfg
        self.cfg = cfg
        self.card = card
        self.pipeline = pipeline
        self.store = store
        self.threshold = card.scan_threshold(cfg.verify.security_level)
        self.state = "idle"
        self.worker = Worker(cfg.daemon.queue_size, self.set_state)
        self.logind = None
        self.outstanding: set = set()
        self.overlay: dict = {}
        self.overlay_error: str | None = None
        self.attempts: deque = deque(maxlen=RECENT_ATTEMPTS)
        self.previews: dict[str, threading.Event] = {}
        self.enrolments: dict[str, threading.Event] = {}
        self.own_questions = 0
        """polkit checks of the daemon's own actions in flight: no face may answer them."""
        self.learner = Learner()

    @property
    def Version(self) -> str:
        return __version__

    @property
    def Model(self) -> str:
        return f"{self.card.name} sha256:{self.card.sha256[:16]}"

    @property
    def Camera(self) -> str:
        return self.cfg.camera.source

    @property
    def State(self) -> str:
        return self.state

    PRIVATE_PROPERTIES = frozenset({"State"})

    def may_read_private(self, sender: str) -> bool:
        """Whether sender may read PRIVATE_PROPERTIES: root and the daemon's own user."""
        try:
            return caller_uid(self.bus, sender) in (0, os.getuid())
        except PermissionDenied:
            return False

    @property
    def Settings(self) -> dict:
        values = settings.current(self.root_cfg, self.overlay)
        if self.overlay_error:
            values["error"] = self.overlay_error
        return {key: variant(value) for key, value in values.items()}

    def load_settings(self) -> None:
        """Read the settings app's overlay and apply it; an unusable one stops every scan (fail closed)."""
        try:
            self.overlay, self.overlay_error = settings.read(settings.path_for(self.root_cfg)), None
        except ConfigError as exc:
            self.overlay, self.overlay_error = {}, str(exc)
            log.error("face unlock is off until the settings overlay is fixed: %s", exc)
        self.apply_settings()

    def apply_settings(self) -> None:
        self.cfg = settings.apply(self.root_cfg, self.overlay)
        self.threshold = self.card.scan_threshold(self.cfg.verify.security_level)
        self.watch_logind(self.cfg.daemon.auto_unlock and self.cfg.pam.enabled and self.overlay_error is None)

    def watch_logind(self, unlock: bool, watch: bool = True) -> None:
        """Watch logind's locks (only where serve() set up a real bus), and with unlock also unlock
        on a match. The locks are watched even with the automatic unlock off: the lock screens' grace
        period (just_locked) is measured from them. watch=False stops it all (at exit)."""
        if not hasattr(self.bus, "subscribe"):
            return
        if watch and self.logind is None:
            from faceunlock.service.logind import Logind

            self.logind = Logind(self.bus, self.cfg.daemon, self.enrolled, self.unlock_scan)
            self.logind.start()
        elif not watch and self.logind is not None:
            self.logind.stop()
            self.logind = None
        if self.logind is not None:
            self.logind.unlock = unlock

    def authorise(self, call: Call, uid: int, action: str, then) -> None:
        """Run then() at once for root; for others when polkit authorises the caller for action."""
        if uid == 0:
            then()
            return

        def answered(why: str | None) -> None:
            self.own_questions -= 1
            if why is not None:
                call.fail(PermissionDenied(why))
                return
            try:
                then()
            except ServiceError as exc:
                call.fail(exc)
            except Exception:  # noqa: BLE001  (answer every call; the traceback goes to the log)
                log.exception("%s failed after polkit", call.method)
                call.fail(Failed(f"{call.method} failed inside the daemon; see its log"))

        self.own_questions += 1
        polkit.check(self.bus.con, call.sender, action, answered)

    def set_state(self, state: str) -> None:
        self.state = state

    def submit(self, job: Job, key=None) -> None:
        """Queue a job for the camera; Busy if the caller (key) already has one, or the queue is full."""
        if key is not None and key in self.outstanding:
            raise Busy("you already have a request waiting for or using the camera; try again when it ends")
        if not self.worker.submit(job):
            waiting = self.cfg.daemon.queue_size
            raise Busy(f"the camera is in use and {waiting} request(s) already wait for it; try again")
        if key is not None:
            self.outstanding.add(key)
            done = job.done

            def release(result, error) -> None:
                self.outstanding.discard(key)
                done(result, error)

            job.done = release

    def status(self, destination: str | None, user: str, result: str, done: bool) -> None:
        """VerifyStatus, sent only to the caller it concerns (nothing for automatic scans)."""
        if destination:
            args = GLib.Variant("(ssb)", (user, result, done))
            self.bus.con.emit_signal(destination, OBJECT_PATH, INTERFACE, "VerifyStatus", args)

    def require_local(self, call: Call, uid: int, user: str) -> None:
        """A non-root caller must be in a local session at a seat (asked of logind)."""
        if uid == 0:
            return
        req = Request(
            pid=caller_pid(self.bus, call.sender),
            user=user,
            uid=uid,
            requester=uid,
            user_services=self.cfg.pam.user_services,
        )
        try:
            why = session_refusal(SessionLogind(self.bus.con), req)
        except LogindError as exc:
            why = f"cannot prove a local session: {exc}"
        if why:
            raise PermissionDenied(f"face verification is only for local sessions: {why}")

    def anchors(self, user: str) -> np.ndarray:
        try:
            return self.store.load(user).anchors()
        except StoreNotEnrolled:
            raise NotEnrolled(f"user {user!r} is not enrolled") from None
        except StoreError as exc:
            raise Failed(str(exc)) from None

    def enrolled(self, user: str) -> bool:
        try:
            return self.store.exists(user)
        except StoreError:
            return False

    def scan(self, user: str, anchors: np.ndarray, deadline: float, service: str) -> Decision:
        """One scan on the worker thread: open the camera, run the full policy, close the camera."""
        started = time.monotonic()
        if self.overlay_error:
            decision = Decision(
                user=user, decision="error", reason=f"face unlock is off: {self.overlay_error}"
            )
        elif deadline - started < MIN_TIMEOUT:
            decision = Decision(user=user, decision="timeout", reason="the deadline passed before the camera")
        elif not self.cfg.insecure and not config_mod.is_char_device(self.cfg.camera.source):
            decision = Decision(user=user, decision="error", reason=self.no_camera())
        else:
            try:
                return runtime.verify_scan(
                    self.pipeline, self.cfg, user, anchors, self.threshold, deadline, service
                )
            except Exception as exc:  # noqa: BLE001  (fail closed: any error is a non-match)
                decision = Decision(user=user, decision="error", reason=describe(exc))
        decision.threshold = self.threshold
        decision.elapsed_ms = (time.monotonic() - started) * 1e3
        log_attempt(decision, service, self.cfg.insecure)
        return decision

    def no_camera(self) -> str:
        """Why the camera cannot be used now (it is checked again for every scan: a camera comes and
        goes, and what appears at its path must be a device, not frames someone put there)."""
        path = config_mod.device_path(self.cfg.camera.source)
        if config_mod.not_a_device(self.cfg.camera.source):
            return f"no camera: {path} is not a camera device"
        return f"no camera: {path} is not there (plug the camera in; the daemon uses it when it appears)"

    def scan_job(
        self, user: str, run, reply, deadline: float, caller: str | None = None, service: str = "dbus"
    ) -> Job:
        def done(decision: Decision | None, error: BaseException | None) -> None:
            if decision is None:
                decision = Decision(user=user, decision="error", reason=describe(error))
            self.remember(decision, service)
            if service == "logind" or service.startswith("pam:"):
                self.renew_look(user, decision)
            self.status(caller, user, decision.decision, True)
            reply(decision)

        started = lambda: self.status(caller, user, "scanning", False)  # noqa: E731
        return Job("verifying", run, done, started=started, deadline=deadline)

    def renew_look(self, user: str, decision: Decision) -> None:
        """A confident match of an unlock or a PAM scan through a learned look renews that look
        (faceunlock.learnable.renews): a look the owner keeps using does not expire."""
        live_card = self.pipeline.live_card
        if not self.cfg.enroll.learn or live_card is None:
            return
        label = renews(decision, self.card.scan_threshold("strict"), live_card.threshold("strict"))
        if label is None:
            return
        try:
            self.store.renew(user, label)
        except StoreError as exc:
            log.warning("could not renew the learned look %s of %s: %s", label, user, exc)
        else:
            log.info(
                "renewed learned look user=%s label=%s: a confident match came through it "
                "(fused score %.4f, liveness %.3f)", user, label, decision.distance, decision.liveness_score,
            )  # fmt: skip

    def deadline(self, uid: int, timeout_ms: int) -> float:
        """When a scan asked for with timeout_ms (0: the config's) must end: at least MIN_TIMEOUT, at
        most MAX_TIMEOUT for root and NON_ROOT_TIMEOUT for anyone else."""
        timeout = self.cfg.verify.timeout if timeout_ms == 0 else timeout_ms / 1000
        cap = MAX_TIMEOUT if uid == 0 else NON_ROOT_TIMEOUT
        return time.monotonic() + min(max(timeout, MIN_TIMEOUT), cap)

    def Verify(self, call: Call, user: str, timeout_ms: int) -> None:
        uid = caller_uid(self.bus, call.sender)
        user = valid(check_user, user)
        require_self_or_root(uid, user, "verify")
        self.require_local(call, uid, user)
        if uid == 0 and self.own_questions:
            raise PermissionDenied(OWN_QUESTION)
        anchors = self.anchors(user)
        deadline = self.deadline(uid, timeout_ms)

        def reply(decision: Decision) -> None:
            call.reply(decision.decision, decision.reason, details(decision))

        def run() -> Decision:
            try:
                self.pam_settings()
            except ConfigError as exc:
                return Decision(user=user, decision="error", reason=f"face unlock is off: {exc}")
            return self.scan(user, anchors, deadline, "dbus")

        key = ("root", user) if uid == 0 else uid
        self.submit(self.scan_job(user, run, reply, deadline, call.sender), key)

    def unlock_scan(self, armed, on_decision, caller: str | None = None) -> bool:
        """Queue an automatic-unlock scan of an armed session; False when the camera queue is full."""
        user = armed.user
        deadline = time.monotonic() + self.cfg.daemon.scan_timeout

        def run() -> Decision:
            try:
                switched_on = self.pam_settings().enabled
            except ConfigError as exc:
                return Decision(user=user, decision="error", reason=f"face unlock is off: {exc}")
            if not switched_on:
                return Decision(user=user, decision="error", reason="face unlock is switched off")
            try:
                anchors = self.anchors(user)
            except (NotEnrolled, Failed) as exc:
                return Decision(user=user, decision="not-enrolled", reason=str(exc))
            return self.scan(user, anchors, deadline, "logind")

        return self.worker.submit(self.scan_job(user, run, on_decision, deadline, caller, "logind"))

    def remember(self, decision: Decision, service: str) -> None:
        """Keep the attempt for RecentAttempts (the same facts as its audit line)."""
        entry = {
            "time": time.time(),
            "user": decision.user,
            "service": service,
            "decision": decision.decision,
            "reason": decision.reason,
            "liveness": decision.liveness,
        }
        if decision.distance is not None:
            entry["distance"] = float(decision.distance)
        self.attempts.append(entry)

    def Authenticate(self, call: Call, raw: dict, timeout_ms: int) -> None:
        """A PAM request from pam_faceunlock.so (or the pam_exec client): every rule here, then a scan."""
        uid = caller_uid(self.bus, call.sender)
        pid = caller_pid(self.bus, call.sender)
        try:
            items = pam_policy.parse(raw, uid)
        except ValueError as exc:
            raise InvalidArgument(f"Authenticate: {exc}") from None
        service = f"pam:{items.service or '-'}"
        try:
            pam = self.pam_settings()
        except ConfigError as exc:
            pam, why = None, f"face unlock is off: {exc}"
        else:
            why = self.pam_refusal(uid, pid, items, pam)
        if why is not None:
            log.info("refused user=%s service=%s step=%s reason=%r", items.user, service, items.step, why)
            call.reply("refused", f"Face unlock is not used here: {why}." if why else "")
            return
        if pam_policy.needs_confirmation(items, pam):
            call.reply("confirm", "")
            return
        if items.step == "check":
            call.reply("ready", "")
            return
        try:
            anchors = self.anchors(items.user)
        except NotEnrolled:
            call.reply("not-enrolled", "")
            return
        deadline = self.deadline(uid, timeout_ms)

        def reply(decision: Decision) -> None:
            if self.cfg.enroll.learn:
                level = self.cfg.verify.security_level
                self.learner.after_scan(items.user, pid, decision, self.card.threshold(level))
            call.reply(*pam_policy.answer(decision))

        def run() -> Decision:
            return self.scan(items.user, anchors, deadline, service)

        key = ("root", items.user) if uid == 0 else uid
        self.submit(self.scan_job(items.user, run, reply, deadline, call.sender, service), key)

    def pam_settings(self) -> PamConfig:
        """[pam] as the files say at this moment (the root config, then the settings overlay), as the
        PAM client once read them itself: `faceunlock disable`, `config set` and the settings app
        apply to the next request. ConfigError when either cannot be used (then nothing is answered)."""
        return settings.effective(config_mod.load(self.config_path, trusted=True)).pam

    def pam_refusal(self, uid: int, pid: int, items: pam_policy.Items, pam: PamConfig) -> str | None:
        """Why face unlock must not answer this PAM request, or None: its items, the overlay, the
        daemon's own polkit questions, presence, a lock moments ago, the lockout."""
        why = pam_policy.refusal(items, pam)
        if why is not None:
            return why
        if self.overlay_error:
            return f"face unlock is off: {self.overlay_error}"
        if uid == 0 and self.own_questions:
            return OWN_QUESTION
        asker = pam_policy.requester(items)
        req = Request(
            pid=pid,
            user=items.user,
            uid=uid_of(items.user),
            requester=asker[1] if asker else None,
            tty=items.tty,
            any_user=pam.other_user,
            user_services=pam.user_services,
        )
        try:
            why = session_refusal(
                SessionLogind(self.bus.con), req, Systemd(self.bus.con) if uid == 0 else None
            )
        except LogindError as exc:
            why = f"cannot prove a person at the machine: {exc}"
        if why:
            return why
        if items.service in LOCK_SCREENS and self.just_locked(items.user):
            return f"the session was locked less than {self.cfg.daemon.grace_period:g} s ago"
        try:
            return Lockout(self.cfg.store.path, self.cfg.verify).blocked(items.user)
        except StoreError as exc:
            return str(exc)

    def just_locked(self, user: str) -> bool:
        """A session of user was locked within the grace period: whoever locks and walks away is
        not let in again by the face still in view."""
        if self.logind is None:
            return False
        now = self.logind.clock()
        return any(
            a.user == user and now - a.locked_at < self.cfg.daemon.grace_period
            for a in self.logind.armed.values()
        )

    def PasswordUsed(self, call: Call, user: str) -> None:
        """The account stage of pam_faceunlock.so after a password login: clears the user's lockout
        and notes the password for the recency rules. Root only (a user could clear their own
        lockout); the daemon writes its own state."""
        require_root(caller_uid(self.bus, call.sender), "PasswordUsed")
        user = valid(check_user, user)
        try:
            Lockout(self.cfg.store.path, self.cfg.verify).password_used(user)
        except StoreError as exc:
            raise Failed(str(exc)) from None
        log.info("password login of %s recorded: face unlock lockout cleared", user)
        candidate = self.learner.after_password(user, caller_pid(self.bus, call.sender))
        if candidate is not None and self.cfg.enroll.learn:
            try:
                label = self.store.learn(user, candidate.embeddings)
            except StoreError as exc:
                log.warning("could not keep a learned look of %s: %s", user, exc)
            else:
                log.info(
                    "learned look user=%s label=%s frames=%d distance=%.4f: a live near miss followed by "
                    "the password (faceunlock remove --user %s --label %s undoes it)",
                    user, label, len(candidate.embeddings), candidate.distance, user, label,
                )  # fmt: skip
        call.reply()

    def own_user(self, call: Call, user: str, action: str) -> int:
        """The caller's uid; a non-root caller may act only on its own user."""
        uid = caller_uid(self.bus, call.sender)
        require_self_or_root(uid, user, action)
        return uid

    def Enroll(self, call: Call, user: str, label: str, frames: int) -> None:
        user = valid(check_user, user)
        label = valid(check_label, label or "default")
        uid = self.own_user(call, user, "enrol")
        if frames > MAX_ENROL_FRAMES:
            raise InvalidArgument(f"frames must be at most {MAX_ENROL_FRAMES}, got {frames}")
        if uid != 0:
            self.require_local(call, uid, user)
        self.authorise(call, uid, polkit.ENROLL, lambda: self.start_enrol(call, user, label, frames))

    def start_enrol(self, call: Call, user: str, label: str, frames: int) -> None:
        try:
            self.store.existing(user)
        except StoreError as exc:
            raise Failed(str(exc)) from None
        cfg, sender = self.cfg, call.sender
        deadline = time.monotonic() + cfg.camera.open_timeout + cfg.enroll.timeout
        stream = streams.Stream(self.bus.con, sender)
        stop = threading.Event()

        def run() -> tuple:
            anchors, report = streams.enrol(self.pipeline, cfg, user, frames, stream, stop)
            self.refuse_another_person(user, label, anchors, cfg)
            self.store.add(user, label, anchors)
            return len(anchors), report

        def done(result: tuple | None, error: BaseException | None) -> None:
            if self.enrolments.get(sender) is stop:
                del self.enrolments[sender]
            watch.unwatch()
            if isinstance(error, streams.Cancelled):
                log.info("enrolment of %s (%s) cancelled by its caller", user, label)
                stream.status(user, "cancelled", "enrolment cancelled", 0, 0, True)
                call.fail(Failed("enrolment cancelled: nothing was stored"))
                return
            if error is not None:
                log.warning("enrolment of %s (%s) failed: %s", user, label, describe(error))
                stream.status(user, "failed", describe(error), 0, 0, True)
                call.fail(Failed(describe(error)))
                return
            count, report = result
            poses = ", ".join(report["captured"])
            log.info("enrolled %s (%s): %d embeddings%s", user, label, count, f" ({poses})" if poses else "")
            stream.status(
                user, "completed", f"{count} anchors" + (f" from {poses}" if poses else ""), 0, 0, True
            )
            call.reply(count)

        self.submit(Job("enrolling", run, done, deadline=deadline), key=("enrol", user))
        self.enrolments[sender] = stop
        watch = NameWatch(self.bus.con, sender, stop.set)

    def refuse_another_person(self, user: str, label: str, anchors: np.ndarray, cfg: Config) -> None:
        """A new look must resemble the user's other looks (as `faceunlock enroll` checks, but nobody
        can be asked here): another person's face added to an account would unlock it."""
        template = self.store.existing(user)
        nearest = template.distance_to(anchors, replacing=label) if template else None
        limit = self.card.threshold(cfg.verify.security_level)
        if nearest is not None and nearest >= limit:
            raise Failed(
                f"not enrolled: this face does not resemble the enrolment of {user} (distance "
                f"{nearest:.3f}; the same person stays under {limit:.3f}). Is it someone else? To start "
                "over with a new face, delete the enrolment first"
            )

    def CancelEnroll(self, call: Call) -> None:
        stop = self.enrolments.get(call.sender)
        if stop is not None:
            stop.set()
        call.reply()

    def ListEnrolled(self, call: Call, user: str) -> None:
        uid = caller_uid(self.bus, call.sender)
        user = valid(check_user, user)
        require_self_or_root(uid, user, "list the enrolments of")
        try:
            labels = self.store.load(user).labels()
        except StoreNotEnrolled:
            raise NotEnrolled(f"user {user!r} is not enrolled") from None
        except StoreError as exc:
            raise Failed(str(exc)) from None
        call.reply(labels)

    def Delete(self, call: Call, user: str, label: str) -> None:
        user = valid(check_user, user)
        label = valid(check_label, label) if label else ""
        uid = self.own_user(call, user, "delete the enrolments of")
        self.authorise(call, uid, polkit.ENROLL, lambda: self.delete(call, user, label))

    def delete(self, call: Call, user: str, label: str) -> None:
        if not label:
            try:
                existed = self.store.clear(user)
            except StoreError as exc:
                raise Failed(str(exc)) from None
            if not existed:
                raise NotEnrolled(f"user {user!r} is not enrolled")
        else:
            try:
                self.store.remove(user, label)
            except StoreNotEnrolled:
                raise NotEnrolled(f"user {user!r} is not enrolled") from None
            except StoreError as exc:
                raise InvalidArgument(str(exc)) from None
        log.info("deleted %s of %s", f"enrolment {label!r}" if label else "all enrolments", user)
        call.reply()

    def Preview(self, call: Call, user: str, seconds: int) -> None:
        user = valid(check_user, user)
        uid = self.own_user(call, user, "preview the camera for")
        if uid != 0:
            self.require_local(call, uid, user)
        cap = MAX_PREVIEW_S if uid == 0 else NON_ROOT_PREVIEW_S
        length = min(max(float(seconds or 30), 1.0), cap)
        try:
            anchors = self.store.load(user).anchors()
        except StoreError:
            anchors = None
        stop = threading.Event()
        cfg, threshold, sender = self.cfg, self.threshold, call.sender
        stream = streams.Stream(self.bus.con, sender)
        deadline = time.monotonic() + length

        def run() -> str:
            if self.overlay_error:
                raise Failed(f"face unlock is off: {self.overlay_error}")
            wanted = lambda: self.worker.pending > 1  # noqa: E731  (another request waits for the camera)
            return streams.preview(
                self.pipeline, cfg, user, anchors, threshold, deadline, stream, stop, wanted
            )

        def done(ended: str | None, error: BaseException | None) -> None:
            self.previews.pop(sender, None)
            watch.unwatch()
            if error is not None:
                call.fail(Failed(describe(error)))
            else:
                call.reply(ended)

        key = ("root", user) if uid == 0 else uid
        self.submit(Job("previewing", run, done, deadline=deadline + self.cfg.camera.open_timeout), key)
        self.previews[sender] = stop
        watch = NameWatch(self.bus.con, sender, stop.set)

    def StopPreview(self, call: Call) -> None:
        stop = self.previews.get(call.sender)
        if stop is not None:
            stop.set()
        call.reply()

    def SetSetting(self, call: Call, key: str, value) -> None:
        try:
            value = settings.check_change(self.root_cfg, key, value)
        except ConfigError as exc:
            raise InvalidArgument(str(exc)) from None
        uid = caller_uid(self.bus, call.sender)
        self.authorise(call, uid, polkit.CONFIGURE, lambda: self.set_setting(call, uid, key, value))

    def set_setting(self, call: Call, uid: int, key: str, value) -> None:
        try:
            current = settings.read(settings.path_for(self.root_cfg))
        except ConfigError as exc:
            raise Failed(f"the settings overlay is unusable, so it is not changed: {exc}") from None
        values = {**current, key: value}
        try:
            settings.write(settings.path_for(self.root_cfg), values)
        except OSError as exc:
            raise Failed(f"cannot write the settings overlay: {exc}") from None
        self.overlay, self.overlay_error = values, None
        self.apply_settings()
        log.info("setting %s = %r (by uid %d, in %s)", key, value, uid, settings.path_for(self.root_cfg))
        self.PropertiesChanged(INTERFACE, {"Settings": self.Settings}, [])
        call.reply()

    def RecentAttempts(self, call: Call, user: str) -> None:
        uid = caller_uid(self.bus, call.sender)
        if uid != 0:
            user = valid(check_user, user or name_of(uid))
            require_self_or_root(uid, user, "read the attempts of")
        elif user:
            user = valid(check_user, user)
        rows = [a for a in reversed(self.attempts) if not user or a["user"] == user]
        call.reply([{k: variant(v) for k, v in row.items()} for row in rows])

    def UnlockNow(self, call: Call, session_id: str) -> None:
        uid = caller_uid(self.bus, call.sender)
        if self.logind is None or not self.logind.unlock:
            raise NotArmed("automatic unlock is off ([daemon] auto_unlock = false)")
        if uid != 0:
            self.require_local(call, uid, name_of(uid))
        self.logind.request(session_id, uid, lambda result, reason: call.reply(result, reason), call.sender)

    def feed_watchdog(self) -> bool:
        """A GLib timeout: tell systemd the daemon is alive unless a camera job is stuck past its deadline."""
        if self.worker.stuck(STUCK_GRACE_S):
            log.error("a %s job is stuck past its deadline; no watchdog ping", self.worker.current.kind)
        else:
            notify("WATCHDOG=1")
        return True


class NameWatch:
    """Call vanished() once the bus name (a caller's unique name) leaves the bus."""

    def __init__(self, con, name: str, vanished):
        from gi.repository import Gio

        self.handle = Gio.bus_watch_name_on_connection(
            con, name, Gio.BusNameWatcherFlags.NONE, None, lambda *_args: vanished()
        )

    def unwatch(self) -> None:
        from gi.repository import Gio

        if self.handle:
            Gio.bus_unwatch_name(self.handle)
            self.handle = 0


def warm_up(pipeline) -> None:
    """Run the detector and the embedder once, so the first real scan is as fast as the rest; then
    hand the memory freed while loading back to the system."""
    rng = np.random.default_rng(0)
    pipeline.analyse(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    pipeline.embedder.embed(np.full((150, 150, 3), 128, np.uint8))
    release_free_memory()


def without_nnpack_if_blind() -> None:
    """Under the unit's ProcSubset=pid, /proc/cpuinfo is hidden: NNPACK cannot start and torch logs a
    warning for every convolution (thousands of journal lines per scan). With the torch backend
    (the default ONNX Runtime backend never loads torch), NNPACK is then switched off."""
    torch = sys.modules.get("torch")
    if torch is not None and not os.access("/proc/cpuinfo", os.R_OK):
        torch.backends.nnpack.set_flags(False)


def serve(cfg: Config, config_path: str | None = None) -> int:
    """Load the model, take the bus name, watch logind, and serve until SIGTERM or SIGINT."""
    import pydbus

    from faceunlock.model import load_card
    from faceunlock.service.publish import publish

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="faceunlock: %(message)s")
    started = time.monotonic()
    card = load_card()
    store = runtime.open_store(cfg, card)
    pipeline = runtime.load_pipeline(cfg, card, cfg.daemon.threads)
    without_nnpack_if_blind()
    warm_up(pipeline)
    bus = pydbus.SystemBus()
    service = FaceUnlockService(bus, cfg, card, pipeline, store, config_path)
    # Handlers first, and for good: once the name is taken systemd may send SIGTERM at any moment, and
    # it sends another when the name is released during the cleanup (Type=dbus). A handler that
    # returned False would be removed after the first signal, and the second would then kill the
    # process halfway through its cleanup.
    loop = GLib.MainLoop()

    def quit_loop() -> bool:
        loop.quit()
        return GLib.SOURCE_CONTINUE

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, quit_loop)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(log.info, "stopped")
        cleanup.enter_context(publish(bus, OBJECT_PATH, service, INTERFACE_XML, INTERFACE))
        try:
            cleanup.enter_context(bus.request_name(BUS_NAME, allow_replacement=False))
        except (RuntimeError, GLib.Error) as exc:
            raise UserError(
                f"cannot own {BUS_NAME} ({exc}): is another daemon running, is the bus policy installed?"
            ) from None
        service.load_settings()
        cleanup.callback(service.watch_logind, False, False)
        interval = watchdog_interval()
        if interval:
            GLib.timeout_add(int(interval * 1000), service.feed_watchdog)
        log.info(
            "ready as %s in %.1f s (model %s, camera %s, auto unlock %s%s)",
            BUS_NAME,
            time.monotonic() - started,
            card.name,
            cfg.camera.source,
            "on" if service.logind is not None and service.logind.unlock else "off",
            "; INSECURE settings allowed by the config" if cfg.insecure else "",
        )
        loop.run()
    return 0
