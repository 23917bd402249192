"""The faceunlock D-Bus daemon: a warm pipeline behind a small system-bus interface.

The detector and embedder are loaded once at start; the camera is opened only
for a scan, by one worker thread, so one scan uses it at a time. Method calls,
properties and logind signals are served by the GLib main loop meanwhile.
Every failure is a non-match or a named D-Bus error: nothing fails open.

Fairness: each caller has at most one request queued or running (root's PAM
clients count per user checked), and a non-root caller's scan lasts at most
NON_ROOT_TIMEOUT seconds and must come from a local session at a seat, so no
one can hold the camera from afar or learn remotely who sits at the desk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time

import numpy as np
from gi.repository import GLib
from pydbus.generic import signal as dbus_signal

from faceunlock import __version__, runtime
from faceunlock.audit import log_attempt
from faceunlock.config import Config
from faceunlock.decision import Decision
from faceunlock.errors import UserError, describe
from faceunlock.model import ModelCard
from faceunlock.service.auth import caller_pid, caller_uid, name_of, require_root, require_self_or_root
from faceunlock.service.errors import Busy, Failed, InvalidArgument, NotArmed, NotEnrolled, PermissionDenied
from faceunlock.service.interface import INTERFACE_XML, details
from faceunlock.service.local_session import Logind as SessionLogind
from faceunlock.service.local_session import LogindError
from faceunlock.service.local_session import refusal as session_refusal
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


def valid(check, value: str) -> str:
    try:
        return check(value)
    except StoreError as exc:
        raise InvalidArgument(str(exc)) from None


class FaceUnlockService:
    """The object at OBJECT_PATH. Handlers get a Call first and answer through it."""

    PropertiesChanged = dbus_signal()
    VerifyStatus = dbus_signal()
    """Declared for pydbus's wiring but never called: it would broadcast. status() sends it to one caller."""

    def __init__(self, bus, cfg: Config, card: ModelCard, pipeline, store: TemplateStore):
        self.bus = bus
        self.cfg = cfg
        self.card = card
        self.pipeline = pipeline
        self.store = store
        self.threshold = card.threshold(cfg.verify.security_level)
        self.state = "idle"
        self.worker = Worker(cfg.daemon.queue_size, self.set_state)
        self.logind = None
        self.outstanding: set = set()

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

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.PropertiesChanged(INTERFACE, {"State": state}, [])

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
        try:
            why = session_refusal(SessionLogind(self.bus.con), caller_pid(self.bus, call.sender), user, uid)
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
        if deadline - started < MIN_TIMEOUT:
            decision = Decision(user=user, decision="timeout", reason="the deadline passed before the camera")
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

    def scan_job(self, user: str, run, reply, deadline: float, caller: str | None = None) -> Job:
        def done(decision: Decision | None, error: BaseException | None) -> None:
            if decision is None:
                decision = Decision(user=user, decision="error", reason=describe(error))
            self.status(caller, user, decision.decision, True)
            reply(decision)

        started = lambda: self.status(caller, user, "scanning", False)  # noqa: E731
        return Job("verifying", run, done, started=started, deadline=deadline)

    def Verify(self, call: Call, user: str, timeout_ms: int) -> None:
        uid = caller_uid(self.bus, call.sender)
        user = valid(check_user, user)
        require_self_or_root(uid, user, "verify")
        self.require_local(call, uid, user)
        anchors = self.anchors(user)
        timeout = self.cfg.verify.timeout if timeout_ms == 0 else timeout_ms / 1000
        cap = MAX_TIMEOUT if uid == 0 else NON_ROOT_TIMEOUT
        deadline = time.monotonic() + min(max(timeout, MIN_TIMEOUT), cap)

        def reply(decision: Decision) -> None:
            call.reply(decision.decision, decision.reason, details(decision))

        def run() -> Decision:
            return self.scan(user, anchors, deadline, "dbus")

        key = ("root", user) if uid == 0 else uid
        self.submit(self.scan_job(user, run, reply, deadline, call.sender), key)

    def unlock_scan(self, armed, on_decision, caller: str | None = None) -> bool:
        """Queue an automatic-unlock scan of an armed session; False when the camera queue is full."""
        user = armed.user
        deadline = time.monotonic() + self.cfg.daemon.scan_timeout

        def run() -> Decision:
            try:
                anchors = self.anchors(user)
            except (NotEnrolled, Failed) as exc:
                return Decision(user=user, decision="not-enrolled", reason=str(exc))
            return self.scan(user, anchors, deadline, "logind")

        return self.worker.submit(self.scan_job(user, run, on_decision, deadline, caller))

    def Enroll(self, call: Call, user: str, label: str, frames: int) -> None:
        require_root(caller_uid(self.bus, call.sender), "enrolment")
        user = valid(check_user, user)
        label = valid(check_label, label or "default")
        wanted = frames or self.cfg.enroll.frames
        if wanted > MAX_ENROL_FRAMES:
            raise InvalidArgument(f"frames must be at most {MAX_ENROL_FRAMES}, got {wanted}")
        try:
            self.store.existing(user)
        except StoreError as exc:
            raise Failed(str(exc)) from None
        cfg = self.cfg
        deadline = time.monotonic() + cfg.camera.open_timeout + cfg.enroll.timeout

        def run() -> int:
            embeddings = runtime.enrol_capture(self.pipeline, cfg, wanted)
            self.store.add(user, label, embeddings)
            return len(embeddings)

        def done(count: int | None, error: BaseException | None) -> None:
            if error is not None:
                log.warning("enrolment of %s (%s) failed: %s", user, label, describe(error))
                call.fail(Failed(describe(error)))
                return
            log.info("enrolled %s (%s): %d embeddings", user, label, count)
            call.reply(count)

        self.submit(Job("enrolling", run, done, deadline=deadline), key=("enrol", user))

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
        require_root(caller_uid(self.bus, call.sender), "deleting enrolments")
        user = valid(check_user, user)
        if not label:
            if not self.store.clear(user):
                raise NotEnrolled(f"user {user!r} is not enrolled")
        else:
            label = valid(check_label, label)
            try:
                self.store.remove(user, label)
            except StoreNotEnrolled:
                raise NotEnrolled(f"user {user!r} is not enrolled") from None
            except StoreError as exc:
                raise InvalidArgument(str(exc)) from None
        log.info("deleted %s of %s", f"enrolment {label!r}" if label else "all enrolments", user)
        call.reply()

    def UnlockNow(self, call: Call, session_id: str) -> None:
        uid = caller_uid(self.bus, call.sender)
        if self.logind is None:
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


def warm_up(pipeline) -> None:
    """Run the detector and the embedder once, so the first real scan is as fast as the rest."""
    rng = np.random.default_rng(0)
    pipeline.analyse(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    pipeline.embedder.embed(np.full((150, 150, 3), 128, np.uint8))


def without_nnpack_if_blind() -> None:
    """Under the unit's ProcSubset=pid, /proc/cpuinfo is hidden: NNPACK cannot start and torch logs a
    warning for every convolution (thousands of journal lines per scan). NNPACK is then switched off;
    torch's other CPU kernels do the work."""
    if not os.access("/proc/cpuinfo", os.R_OK):
        import torch

        torch.backends.nnpack.set_flags(False)


def serve(cfg: Config) -> int:
    """Load the model, take the bus name, watch logind, and serve until SIGTERM or SIGINT."""
    import pydbus

    from faceunlock.model import load_card
    from faceunlock.service.logind import Logind
    from faceunlock.service.publish import publish

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="faceunlock: %(message)s")
    started = time.monotonic()
    without_nnpack_if_blind()
    card = load_card()
    store = runtime.open_store(cfg, card)
    pipeline = runtime.load_pipeline(cfg, card, cfg.daemon.threads)
    warm_up(pipeline)
    bus = pydbus.SystemBus()
    service = FaceUnlockService(bus, cfg, card, pipeline, store)
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
        if cfg.daemon.auto_unlock:
            service.logind = Logind(bus, cfg.daemon, service.enrolled, service.unlock_scan)
            service.logind.start()
            cleanup.callback(service.logind.stop)
        interval = watchdog_interval()
        if interval:
            GLib.timeout_add(int(interval * 1000), service.feed_watchdog)
        log.info(
            "ready as %s in %.1f s (model %s, camera %s, auto unlock %s%s)",
            BUS_NAME,
            time.monotonic() - started,
            card.name,
            cfg.camera.source,
            "on" if cfg.daemon.auto_unlock else "off",
            "; INSECURE settings allowed by the config" if cfg.insecure else "",
        )
        loop.run()
    return 0
