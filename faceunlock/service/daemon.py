"""The faceunlock D-Bus daemon: a warm pipeline behind a small system-bus interface.

The detector and embedder are loaded once at start; the camera is opened only
for a scan, by one worker thread, so one scan uses it at a time. Method calls,
properties and logind signals are served by the GLib main loop meanwhile.
Every failure is a non-match or a named D-Bus error: nothing fails open.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time

import numpy as np
from gi.repository import GLib
from pydbus.generic import signal as dbus_signal

from faceunlock import __version__
from faceunlock.attempt import attempt
from faceunlock.audit import log_attempt
from faceunlock.camera import SourceOptions, open_source
from faceunlock.config import Config
from faceunlock.decision import Decision
from faceunlock.errors import UserError, describe
from faceunlock.model import ModelCard
from faceunlock.service.auth import caller_uid, require_root, require_self_or_root
from faceunlock.service.errors import Busy, Failed, InvalidArgument, NotArmed, NotEnrolled
from faceunlock.service.interface import INTERFACE_XML, details
from faceunlock.service.names import BUS_NAME, INTERFACE, OBJECT_PATH
from faceunlock.service.publish import Call
from faceunlock.service.worker import Job, Worker
from faceunlock.store import NotEnrolled as StoreNotEnrolled
from faceunlock.store import StoreError, TemplateStore, check_label, check_user

log = logging.getLogger("faceunlock.daemon")

MIN_TIMEOUT = 0.2
MAX_TIMEOUT = 120.0
MAX_ENROL_FRAMES = 200


def valid(check, value: str) -> str:
    try:
        return check(value)
    except StoreError as exc:
        raise InvalidArgument(str(exc)) from None


class FaceUnlockService:
    """The object at OBJECT_PATH. Handlers get a Call first and answer through it."""

    PropertiesChanged = dbus_signal()
    VerifyStatus = dbus_signal()

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

    def submit(self, job: Job) -> None:
        if not self.worker.submit(job):
            waiting = self.cfg.daemon.queue_size
            raise Busy(f"the camera is in use and {waiting} request(s) already wait for it; try again")

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
        left = deadline - started
        if left < MIN_TIMEOUT:
            decision = Decision(user=user, decision="timeout", reason="the deadline passed before the camera")
        else:
            cam = self.cfg.camera
            options = SourceOptions(cam.dark_threshold, min(cam.open_timeout, left), cam.read_timeout)
            try:
                with open_source(cam.source, options) as source:
                    left = max(MIN_TIMEOUT, deadline - time.monotonic())
                    return attempt(
                        self.pipeline, source.frames(), user, anchors, self.threshold, self.cfg, service, left
                    )
            except Exception as exc:  # noqa: BLE001  (fail closed: any error is a non-match)
                decision = Decision(user=user, decision="error", reason=describe(exc))
        decision.threshold = self.threshold
        decision.elapsed_ms = (time.monotonic() - started) * 1e3
        log_attempt(decision, service)
        return decision

    def scan_job(self, user: str, run, reply) -> Job:
        def done(decision: Decision | None, error: BaseException | None) -> None:
            if decision is None:
                decision = Decision(user=user, decision="error", reason=describe(error))
            self.VerifyStatus(user, decision.decision, True)
            reply(decision)

        return Job("verifying", run, done, started=lambda: self.VerifyStatus(user, "scanning", False))

    def Verify(self, call: Call, user: str, timeout_ms: int) -> None:
        uid = caller_uid(self.bus, call.sender)
        user = valid(check_user, user)
        require_self_or_root(uid, user, "verify")
        anchors = self.anchors(user)
        timeout = self.cfg.verify.timeout if timeout_ms == 0 else timeout_ms / 1000
        deadline = time.monotonic() + min(max(timeout, MIN_TIMEOUT), MAX_TIMEOUT)

        def reply(decision: Decision) -> None:
            call.reply(decision.decision, decision.reason, details(decision))

        self.submit(self.scan_job(user, lambda: self.scan(user, anchors, deadline, "dbus"), reply))

    def unlock_scan(self, armed, on_decision) -> bool:
        """Queue an automatic-unlock scan of an armed session; False when the camera queue is full."""
        user = armed.user
        deadline = time.monotonic() + self.cfg.daemon.scan_timeout

        def run() -> Decision:
            try:
                anchors = self.anchors(user)
            except (NotEnrolled, Failed) as exc:
                return Decision(user=user, decision="not-enrolled", reason=str(exc))
            return self.scan(user, anchors, deadline, "logind")

        return self.worker.submit(self.scan_job(user, run, on_decision))

    def Enroll(self, call: Call, user: str, label: str, frames: int) -> None:
        from faceunlock.enroll import capture

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

        def run() -> int:
            options = SourceOptions(
                cfg.camera.dark_threshold, cfg.camera.open_timeout, cfg.camera.read_timeout
            )
            with open_source(cfg.camera.source, options) as source:
                embeddings = capture(self.pipeline, source.frames(), wanted, cfg.verify, cfg.enroll.timeout)
            self.store.add(user, label, embeddings)
            return len(embeddings)

        def done(count: int | None, error: BaseException | None) -> None:
            if error is not None:
                log.warning("enrolment of %s (%s) failed: %s", user, label, describe(error))
                call.fail(Failed(describe(error)))
                return
            log.info("enrolled %s (%s): %d embeddings", user, label, count)
            call.reply(count)

        self.submit(Job("enrolling", run, done))

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
        self.logind.request(session_id, uid, lambda result, reason: call.reply(result, reason))


def warm_up(pipeline) -> None:
    """Run the detector and the embedder once, so the first real scan is as fast as the rest."""
    rng = np.random.default_rng(0)
    pipeline.analyse(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    pipeline.embedder.embed(np.full((150, 150, 3), 128, np.uint8))


def serve(cfg: Config) -> int:
    """Load the model, take the bus name, watch logind, and serve until SIGTERM or SIGINT."""
    import pydbus

    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline
    from faceunlock.service.logind import Logind
    from faceunlock.service.publish import publish

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="faceunlock: %(message)s")
    started = time.monotonic()
    card = load_card()
    store = TemplateStore(cfg.store.path, model_sha256=card.sha256, embedding=card.embedding_id)
    pipeline = Pipeline(cfg, card, threads=cfg.daemon.threads)
    warm_up(pipeline)
    bus = pydbus.SystemBus()
    service = FaceUnlockService(bus, cfg, card, pipeline, store)
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
        loop = GLib.MainLoop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
        log.info(
            "ready as %s in %.1f s (model %s, camera %s, auto unlock %s)",
            BUS_NAME,
            time.monotonic() - started,
            card.name,
            cfg.camera.source,
            "on" if cfg.daemon.auto_unlock else "off",
        )
        loop.run()
    return 0
