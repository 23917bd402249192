"""The live preview's state: the decision policy run as back-to-back scans, for showing only.

Every frame goes through a faceunlock.verify.Scan exactly as a real attempt
would, so what the preview shows is what the policy decides. A scan ends on a
match or when ``[verify] timeout`` has passed; its decision is shown and the
next scan starts. Nothing is recorded: no lockout count, no audit line, no
unlock. Without anchors (no user, or not enrolled) only the detection and the
frame's quality are shown.

What is drawn is read from the Scan and the pipeline's FrameResult into a
``Frame`` record (faceunlock.overlay draws it), so a new field in the policy
is one new field here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from faceunlock.config import Config
from faceunlock.pipeline import FrameResult
from faceunlock.verify import Scan, usable_face
from faceunlock.vision.detect import Face

SHOW_DECISION_S = 2.5
"""How long a finished scan's decision stays on screen while the next scan runs."""
REFUSED_AS_IMAGE = "looks like a photo or a screen"
"""What the preview says while the face matches but liveness holds it back."""


@dataclass
class Frame:
    """What the preview shows for one frame."""

    faces: list[Face]
    face: Face | None
    distance: float | None = None
    threshold: float | None = None
    level: str = ""
    judged: str | None = None
    """None when the face was judged, else why not (no-face, small, blurry, multiple)."""
    liveness: str = "not-checked"
    liveness_score: float | None = None
    cues: list[str] = field(default_factory=list)
    fps: float = 0.0
    decision: str = "scanning"
    reason: str = ""
    streak: int = 0
    needed: int = 0
    hint: str = ""
    """A line of guidance (enrolment), shown under the figures."""

    def as_dict(self) -> dict:
        """The figures, for JSON and D-Bus (no pictures)."""
        out = {
            "faces": len(self.faces),
            "threshold": self.threshold,
            "level": self.level,
            "judged": self.judged or "yes",
            "liveness": self.liveness,
            "cues": list(self.cues),
            "fps": round(self.fps, 1),
            "decision": self.decision,
            "reason": self.reason,
            "streak": self.streak,
            "needed": self.needed,
            "hint": self.hint,
        }
        if self.distance is not None:
            out["distance"] = round(self.distance, 4)
        if self.liveness_score is not None:
            out["liveness_score"] = round(self.liveness_score, 4)
        if self.face is not None:
            out["box"] = [round(v, 1) for v in self.face.box]
        return out


class FrameRate:
    """Frames per second, smoothed over the last few frames."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.last: float | None = None
        self.value = 0.0

    def tick(self) -> float:
        now = self.clock()
        if self.last is not None and now > self.last:
            rate = 1.0 / (now - self.last)
            self.value = rate if self.value == 0 else 0.8 * self.value + 0.2 * rate
        self.last = now
        return self.value


class Preview:
    """Back-to-back scans over a frame stream; step() returns what to draw for each frame."""

    def __init__(
        self,
        cfg: Config,
        user: str,
        anchors: np.ndarray | None,
        threshold: float,
        clock: Callable[[], float] = time.monotonic,
        fusion: dict | None = None,
        live_card=None,
    ):
        self.cfg = cfg
        self.user = user
        self.anchors = anchors if anchors is not None and len(anchors) else None
        self.threshold = threshold
        self.fusion = fusion or {}
        self.live_card = live_card
        self.previous: FrameResult | None = None
        self.clock = clock
        self.rate = FrameRate(clock)
        self.scan: Scan | None = None
        self.started = 0.0
        self.shown: tuple[str, str, float] | None = None
        self.decisions: list[str] = []

    def new_scan(self) -> Scan:
        self.started = self.clock()
        return Scan(
            self.user,
            self.anchors,
            self.threshold,
            self.cfg.verify,
            self.cfg.liveness,
            self.live_card,
            **self.fusion,
        )

    def analyse(self, pipeline, rgb: np.ndarray) -> FrameResult:
        """The frame through the pipeline as the current scan needs it: motion against the frame
        before, and the liveness network whose turn it is."""
        if self.scan is not None:
            networks = self.scan.networks()
        else:
            networks = (0,) if self.live_card is not None and self.cfg.liveness.enabled else ()
        self.previous = pipeline.analyse(rgb, previous=self.previous, networks=networks)
        return self.previous

    def step(self, result: FrameResult, rgb: np.ndarray | None = None) -> Frame:
        """Feed one analysed frame to the current scan; end the scan on a match or at its timeout."""
        frame = Frame(
            faces=list(result.detection.faces),
            face=result.face,
            cues=list(result.cues),
            fps=self.rate.tick(),
            judged=usable_face(result, self.cfg.verify),
            level=self.cfg.verify.security_level,
            needed=self.cfg.verify.consecutive,
        )
        if self.anchors is None:
            frame.decision, frame.reason = "not-enrolled", f"no anchors for {self.user or 'anyone'}"
            return frame
        if self.scan is None:
            self.scan = self.new_scan()
        scan = self.scan
        matched = scan.feed(result, rgb)
        frame.distance, frame.threshold = scan.distance, self.threshold
        frame.liveness, frame.streak = scan.liveness_summary(), scan.streak
        if scan.verdict is not None:
            frame.liveness_score = scan.verdict.score
        timed_out = self.clock() - self.started >= self.cfg.verify.timeout
        if matched or timed_out:
            decision = scan.decision(matched, timed_out, self.started)
            self.shown = (decision.decision, decision.reason, self.clock())
            self.decisions.append(decision.decision)
            self.scan = None
        if self.shown and self.clock() - self.shown[2] <= SHOW_DECISION_S:
            frame.decision, frame.reason = self.shown[0], self.shown[1]
        elif self.held_back(scan, frame):
            frame.decision, frame.reason = "refused", REFUSED_AS_IMAGE
        else:
            frame.decision, frame.reason = "scanning", self.progress(scan)
        return frame

    def held_back(self, scan: Scan, frame: Frame) -> bool:
        """Whether the face matches but liveness refuses it: an attack cue, or a face that has been
        watched for the whole liveness window, matches often enough, and is still not judged live."""
        if frame.liveness == "fail":
            return True
        watched = scan.track >= self.cfg.liveness.window
        return frame.liveness == "doubt" and watched and scan.streak >= self.cfg.verify.consecutive

    def progress(self, scan: Scan) -> str:
        window = self.cfg.liveness.window
        return (
            f"matching {min(scan.streak, self.cfg.verify.consecutive)} of {self.cfg.verify.consecutive} "
            f"in a row; liveness watched {min(scan.track, window)} of {window} frames"
        )
