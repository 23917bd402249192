"""Camera jobs that show their progress to one caller: the live preview and enrolment.

Both run on the camera worker. Each annotated frame goes to the caller alone
as a ``PreviewFrame`` signal (a small JPEG and the figures drawn on it), at
most MAX_FPS a second; enrolment also sends ``EnrollStatus`` whenever what
the person is asked to do changes. GDBus sends signals safely from any
thread. A preview never records an attempt, never counts toward a lockout
and never unlocks; it ends when its time is up, when the caller stops it or
leaves the bus, or as soon as another request waits for the camera.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
from gi.repository import GLib

from faceunlock import runtime
from faceunlock.config import Config
from faceunlock.service.interface import variant
from faceunlock.service.names import INTERFACE, OBJECT_PATH

MAX_FPS = 10.0
MAX_SIDE = 480
JPEG_QUALITY = 75


def jpeg(rgb: np.ndarray) -> bytes:
    """A small JPEG of an RGB frame (long side at most MAX_SIDE)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ValueError("cannot encode a preview frame")
    return data.tobytes()


class Stream:
    """Signals to one caller: PreviewFrame (throttled) and EnrollStatus."""

    def __init__(self, con, destination: str, clock: Callable[[], float] = time.monotonic):
        self.con = con
        self.destination = destination
        self.clock = clock
        self.last = -1.0
        self.sent = 0

    def emit(self, name: str, args: GLib.Variant) -> None:
        self.con.emit_signal(self.destination, OBJECT_PATH, INTERFACE, name, args)

    def frame(self, rgb: np.ndarray, shown, extra: dict | None = None, force: bool = False) -> None:
        """Draw what the preview shows on rgb and send it, unless one was sent less than 1/MAX_FPS ago
        (force: send it anyway, for a frame that changes what the caller must see)."""
        from faceunlock.overlay import draw

        now = self.clock()
        if now - self.last < 1.0 / MAX_FPS and not force:
            return
        self.last = now
        figures = {k: variant(v) for k, v in {**shown.as_dict(), **(extra or {})}.items() if v is not None}
        self.emit("PreviewFrame", GLib.Variant("(aya{sv})", (jpeg(draw(rgb, shown)), figures)))
        self.sent += 1

    def status(self, user: str, stage: str, message: str, captured: int, needed: int, done: bool) -> None:
        self.emit("EnrollStatus", GLib.Variant("(sssuub)", (user, stage, message, captured, needed, done)))


def preview(
    pipeline,
    cfg: Config,
    user: str,
    anchors: np.ndarray | None,
    threshold: float,
    deadline: float,
    stream: Stream,
    stop: threading.Event,
    camera_wanted: Callable[[], bool],
) -> str:
    """Stream the annotated preview until the deadline, stop, or another request for the camera;
    returns why it ended."""
    from faceunlock.preview import Preview
    from faceunlock.verify import fusion_of

    shows = Preview(
        cfg, user, anchors, threshold, fusion=fusion_of(pipeline.card), live_card=pipeline.live_card
    )
    with runtime.open_camera(cfg, open_timeout=max(0.1, deadline - time.monotonic())) as source:
        for rgb in source.frames(deadline):
            result = shows.analyse(pipeline, rgb)
            source.meter(rgb, result.face)
            stream.frame(rgb, shows.step(result, rgb))
            if stop.is_set():
                return "stopped"
            if camera_wanted():
                return "camera-needed"
        return "time" if time.monotonic() >= deadline else "source-ended"


class Cancelled(Exception):
    """The caller cancelled its enrolment, or left the bus."""


def enrol(
    pipeline, cfg: Config, user: str, frames: int, stream: Stream, stop: threading.Event
) -> tuple[np.ndarray, dict]:
    """Guided enrolment (frames 0) or a plain capture of frames good frames, shown to the caller;
    Cancelled at the next frame once stop is set."""
    from faceunlock.preview import Frame, FrameRate

    said: list = [None]
    rate = FrameRate()

    def tell(stage: str, message: str, captured: int, needed: int) -> None:
        if stop.is_set():
            raise Cancelled("enrolment cancelled")
        if (stage, message, captured) != said[0]:
            said[0] = (stage, message, captured)
            stream.status(user, stage, message, captured, needed, False)

    if frames:

        def plain_progress(kept: int, total: int, hint: str | None) -> None:
            tell("capture", hint or "look at the camera", kept, total)

        anchors = runtime.enrol_capture(pipeline, cfg, frames, plain_progress)
        return anchors, {"mode": "plain", "captured": [], "anchors": len(anchors)}

    completed = [0]
    """Poses complete in the last frame: a frame that completes one is never dropped by the throttle."""

    def guided_progress(step, rgb, result) -> None:
        tell(step.pose, step.hint, step.done, step.total)
        shown = Frame(
            faces=list(result.detection.faces), face=result.face, cues=list(result.cues), fps=rate.tick()
        )
        shown.decision, shown.reason, shown.hint = (
            "enrolling",
            f"{step.done} of {step.total} poses",
            step.hint,
        )
        shown.liveness = step.quality.liveness
        extra = {"pose": step.pose, "captured": step.done, "needed": step.total, "complete": step.complete}
        newly_complete = len(step.complete) != completed[0]
        completed[0] = len(step.complete)
        stream.frame(rgb, shown, extra, force=newly_complete)

    anchors, report = runtime.guided_capture(pipeline, cfg, guided_progress)
    return anchors, {"mode": "guided", **report}
