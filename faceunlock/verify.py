"""The decision policy: nearest-anchor distance, threshold, consecutive frames of one tracked face.

A scan reads frames until the same tracked face has matched in ``consecutive``
frames in a row, until the source ends, or until the deadline. Every error is a
non-match: the caller maps anything but ``match`` to "fall through".
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from faceunlock.config import LivenessConfig, VerifyConfig
from faceunlock.decision import Decision
from faceunlock.pipeline import FrameResult, Pipeline
from faceunlock.vision.detect import Face

TRACK_MIN_IOU = 0.3


def nearest_distance(anchors: np.ndarray, embedding: np.ndarray) -> float:
    """Euclidean distance from an embedding to the closest enrolled anchor."""
    if anchors.ndim != 2 or len(anchors) == 0:
        raise ValueError("no enrolled anchors")
    d = np.linalg.norm(anchors - embedding[None, :], axis=1)
    value = float(d.min())
    if not np.isfinite(value):
        raise ValueError("distance is not finite")
    return value


def iou(a: Face, b: Face) -> float:
    ax1, ay1, ax2, ay2 = a.box
    bx1, by1, bx2, by2 = b.box
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def usable_face(result: FrameResult, policy: VerifyConfig) -> str | None:
    """Why this frame's face cannot be judged, or None if it can."""
    if result.face is None:
        return "no-face"
    if result.detection.multiple and policy.multiple_faces == "reject":
        return "multiple"
    if result.face.size < policy.min_face_size:
        return "small"
    if result.sharpness < policy.min_sharpness:
        return "blurry"
    return None


class Scan:
    """Accumulates the frames of one scan and decides.

    A match needs `consecutive` frames in a row of one tracked face under the
    threshold, that face watched for at least `liveness.window` frames, and no
    presentation-attack cue anywhere in the scan (cues are sticky: once a
    display frame or an IR-dark face is seen, the scan cannot match).
    """

    def __init__(
        self,
        user: str,
        anchors: np.ndarray,
        threshold: float,
        policy: VerifyConfig,
        liveness: LivenessConfig | None = None,
    ):
        self.user = user
        self.anchors = anchors
        self.threshold = threshold
        self.policy = policy
        self.liveness = liveness or LivenessConfig()
        self.frames = 0
        self.judged = 0
        self.best: float | None = None
        self.streak = 0
        self.track = 0
        self.last_face: Face | None = None
        self.skipped: dict[str, int] = {}
        self.cues: dict[str, int] = {}
        self.best_frame: np.ndarray | None = None

    def feed(self, result: FrameResult, rgb: np.ndarray | None = None) -> bool:
        """Take one analysed frame; return True once the match rule is met."""
        self.frames += 1
        if self.best_frame is None:
            self.best_frame = rgb
        why = usable_face(result, self.policy)
        if why is not None:
            self.skipped[why] = self.skipped.get(why, 0) + 1
            self.streak, self.track, self.last_face = 0, 0, None
            return False
        self.judged += 1
        for cue in result.cues:
            self.cues[cue] = self.cues.get(cue, 0) + 1
        distance = nearest_distance(self.anchors, result.embedding)
        if self.best is None or distance < self.best:
            self.best, self.best_frame = distance, rgb
        same_track = self.last_face is not None and iou(self.last_face, result.face) >= TRACK_MIN_IOU
        self.track = self.track + 1 if same_track else 1
        if distance < self.threshold:
            self.streak = self.streak + 1 if same_track else 1
        else:
            self.streak = 0
        self.last_face = result.face
        return self.streak >= self.policy.consecutive and self.live()

    def live(self) -> bool:
        """The liveness gate for the current track."""
        if not self.liveness.enabled:
            return True
        return not self.cues and self.track >= self.liveness.window

    def liveness_summary(self) -> str:
        if not self.liveness.enabled:
            return "off"
        if self.cues:
            return "fail: " + ", ".join(f"{k} in {v} frames" for k, v in sorted(self.cues.items()))
        if self.track >= self.liveness.window:
            return "pass"
        return f"pending: face watched {self.track} of {self.liveness.window} frames"

    def decision(self, matched: bool, timed_out: bool, started: float) -> Decision:
        if matched:
            kind = "match"
            reason = (
                f"{self.policy.consecutive} consecutive frames of one face under the threshold, "
                f"liveness passed over {self.track} frames"
            )
        elif self.judged:
            kind = "no-match"
            reason = self.no_match_reason()
        elif self.frames:
            kind = "no-face"
            reason = "no usable face in view" + self.skip_summary()
        elif timed_out:
            kind = "timeout"
            reason = "no usable frame arrived before the deadline"
        else:
            kind = "no-face"
            reason = "the source gave no usable frame"
        return Decision(
            user=self.user,
            decision=kind,
            distance=self.best,
            threshold=self.threshold,
            frames=self.frames,
            elapsed_ms=(time.monotonic() - started) * 1e3,
            reason=reason,
            judged=self.judged,
            skipped=dict(self.skipped),
            liveness=self.liveness_summary() if self.judged else "not-checked",
        )

    def no_match_reason(self) -> str:
        if self.cues:
            return "presentation attack suspected: " + self.liveness_summary()[6:]
        if self.best is not None and self.best < self.threshold:
            return (
                f"face under the threshold but not {self.policy.consecutive} consecutive frames "
                f"of one face watched for {self.liveness.window} frames" + self.skip_summary()
            )
        return f"best distance {self.best:.3f} is not under the threshold {self.threshold:.3f}"

    def skip_summary(self) -> str:
        if not self.skipped:
            return ""
        return " (skipped frames: " + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) + ")"


def scan(
    pipeline: Pipeline,
    frames: Iterable[np.ndarray],
    user: str,
    anchors: np.ndarray,
    threshold: float,
    policy: VerifyConfig,
    timeout: float | None = None,
    liveness: LivenessConfig | None = None,
    deadline: float | None = None,
) -> Decision:
    """Run the decision policy over frames until a match, the end of the source, or the deadline.

    deadline (time.monotonic()) wins over timeout; pass the one the frame source was given, so both
    agree on when the scan ran out of time.
    """
    started = time.monotonic()
    if deadline is None:
        deadline = started + (policy.timeout if timeout is None else timeout)
    state = Scan(user, anchors, threshold, policy, liveness)
    matched = timed_out = False
    for rgb in frames:
        if state.feed(pipeline.analyse(rgb), rgb):
            matched = True
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break
    timed_out = timed_out or (not matched and time.monotonic() >= deadline)
    decision = state.decision(matched, timed_out, started)
    decision.frame = state.best_frame
    return decision
