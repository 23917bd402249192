"""The decision policy: fused windows of one tracked face's quality frames against the enrolled anchors.

A scan reads frames until ``consecutive`` fused windows in a row of the same tracked face are under
the model card's attempt-level threshold (``faceunlock.fused_track``) while that face is judged live,
until a clear presentation attack, until the source ends, or until the deadline. Every error is a
non-match: the caller maps anything but ``match`` to "fall through".

Frames are analysed as a stream (the face is followed from frame to frame), and a frame is
embedded only when it can change the decision (``Scan.wants_embedding``): the first frames of a
track, before the liveness check could pass, are watched but not embedded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from faceunlock.config import LivenessConfig, VerifyConfig
from faceunlock.decision import Decision
from faceunlock.fused_track import FusedTrack
from faceunlock.liveness.card import LivenessCard
from faceunlock.liveness.score import Evidence, Verdict, judge
from faceunlock.pipeline import FrameResult, Pipeline
from faceunlock.quality import frame_quality
from faceunlock.vision.detect import Face

TRACK_MIN_IOU = 0.3
LEGACY_RULE = "nearest-max"
"""Without attempt-level thresholds in the model card (rule None): windows of one frame, any quality,
under the per-pair threshold, that is, `consecutive` frames in a row each under it, as before."""


def nearest_distance(anchors: np.ndarray, embedding: np.ndarray) -> float:
    """Euclidean distance from an embedding to the closest enrolled anchor."""
    if anchors.ndim != 2 or len(anchors) == 0:
        raise ValueError("no enrolled anchors")
    d = np.linalg.norm(anchors - embedding[None, :], axis=1)
    value = float(d.min())
    if not np.isfinite(value):
        raise ValueError("distance is not finite")
    return value


def fusion_of(card) -> dict:
    """Scan's rule and window from a model card: its shipped fusion rule and M, or {} (the old rule)
    for a card without attempt-level thresholds. Use it with card.scan_threshold(level)."""
    attempt = getattr(card, "attempt", None)
    return {"rule": attempt.rule, "window": attempt.probe} if attempt else {}


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
    if result.detection.crowded or (result.detection.multiple and policy.multiple_faces == "reject"):
        return "multiple"
    if result.face.size < policy.min_face_size:
        return "small"
    if result.sharpness < policy.min_sharpness:
        return "blurry"
    return None


class Scan:
    """Accumulates the frames of one scan and decides as soon as it can.

    A match needs `consecutive` fused windows in a row (each of `window` quality frames, scored by
    `rule`) of one tracked face under the attempt-level threshold while that face's liveness verdict
    is "live": its fused liveness score over the track (at least `liveness.window` frames of
    evidence) at or above the security level's threshold. A clear attack (score under the card's
    `attack_below`, a still picture, or an IR cue) ends the scan at once; anything in between is
    doubt, and the scan reads on until the deadline.
    """

    def __init__(
        self,
        user: str,
        anchors: np.ndarray,
        threshold: float,
        policy: VerifyConfig,
        liveness: LivenessConfig | None = None,
        live_card: LivenessCard | None = None,
        rule: str | None = None,
        window: int = 1,
    ):
        self.user = user
        self.anchors = anchors
        self.threshold = threshold
        self.policy = policy
        self.liveness = liveness or LivenessConfig()
        if self.liveness.enabled and live_card is None:
            raise ValueError("liveness is enabled but no liveness model card was given")
        self.live_card = live_card if self.liveness.enabled else None
        self.frames = 0
        self.judged = 0
        if rule is None:
            self.fused = FusedTrack(anchors, LEGACY_RULE, 1, threshold, min_quality=0.0)
        else:
            self.fused = FusedTrack(anchors, rule, window, threshold)
        self.first_judged: float | None = None
        self.late: float | None = None
        """With no frame embedded for the decision: the last face's distance, for the report only."""
        self.unmeasured: tuple[FrameResult, np.ndarray | None] | None = None
        self.embedded = 0
        self.track = 0
        self.last_face: Face | None = None
        self.skipped: dict[str, int] = {}
        self.cues: dict[str, int] = {}
        self.best_frame: np.ndarray | None = None
        self.distance: float | None = None
        """The fused score after the last frame (of the window it completed, else of the window filling;
        None when nothing could be fused); for the preview. With one-frame windows, that frame's distance."""
        self.evidence = Evidence()
        self.verdict: Verdict | None = None
        self.outcome: str | None = None
        self.track_embeddings: list[np.ndarray] = []
        self.best_embeddings: list[np.ndarray] = []
        """The fused (quality) frames of the track that gave the best score so far: what a failed
        scan offers to learn from (faceunlock.service.learning), if that track is the one whose
        liveness verdict the scan ends with (learnable)."""
        self.tracks = 0
        """Tracks started so far: a new face, or the same after an unusable frame."""
        self.best_track: int | None = None

    def networks(self) -> tuple[int, ...]:
        """The liveness network the next frame runs: they take turns, one per frame."""
        if self.live_card is None:
            return ()
        return (self.frames % len(self.live_card.networks),)

    def feed(self, result: FrameResult, rgb: np.ndarray | None = None) -> bool:
        """Take one analysed frame; return True once the scan is decided (match or attack).

        A usable frame without an embedding (not asked for, see wants_embedding) counts for the
        track and liveness but is not fused.
        """
        network = self.networks()
        self.frames += 1
        self.distance = None
        if self.best_frame is None:
            self.best_frame = rgb
        why = usable_face(result, self.policy)
        if why is not None:
            self.skipped[why] = self.skipped.get(why, 0) + 1
            self.track, self.last_face = 0, None
            self.fused.reset()
            self.track_embeddings = []
            return False
        self.judged += 1
        if self.first_judged is None:
            self.first_judged = time.monotonic()
        same_track = self.last_face is not None and iou(self.last_face, result.face) >= TRACK_MIN_IOU
        self.track = self.track + 1 if same_track else 1
        if not same_track:
            self.tracks += 1
            self.fused.reset()
            self.track_embeddings = []
        face = result.face
        if result.embedding is not None:
            self.embedded += 1
            best = self.fused.best
            quality = frame_quality(face.size, result.sharpness, face.landmarks, face.score)
            if quality >= self.fused.min_quality:
                self.track_embeddings.append(np.asarray(result.embedding, np.float32))
            score = self.fused.add(result.embedding, quality)
            self.distance = score if score is not None else self.fused.partial()
            if self.fused.best is not None and self.fused.best != best:
                self.best_frame = rgb
                self.best_embeddings = list(self.track_embeddings)
                self.best_track = self.tracks
        else:
            self.unmeasured = (result, rgb)
        self.last_face = face
        matched = self.fused.streak >= self.policy.consecutive
        if self.live_card is None:
            self.outcome = "match" if matched else None
            return self.outcome is not None
        self.judge_liveness(result, network[0] if network else None, same_track)
        if self.verdict.state == "attack":
            self.outcome = "attack"
        elif self.verdict.state == "live" and matched:
            self.outcome = "match"
        return self.outcome is not None

    def learnable(self) -> np.ndarray | None:
        """The best track's fused frames, only when that track is the face the liveness verdict is
        about: a doubtful near miss followed by another, live face offers nothing to learn."""
        if not self.best_embeddings or self.best_track != self.tracks:
            return None
        return np.stack(self.best_embeddings)

    def wants_embedding(self) -> bool:
        """Whether the next frame's embedding can change the decision.

        A match needs the liveness verdict "live", which needs `need` frames of evidence on the
        track, and `consecutive` full windows of `size` frames at its end; so the first
        `need - consecutive * size` frames of a track are watched (liveness) but not embedded.
        Without liveness every frame counts.
        """
        if self.live_card is None:
            return True
        need = max(self.liveness.window, self.live_card.min_frames)
        return self.track + 1 > need - self.policy.consecutive * self.fused.size

    def report_late(self, embed) -> None:
        """A scan that ended before any frame was embedded: measure the last face, for the report."""
        if self.best is None and self.unmeasured is not None:
            last, frame = self.unmeasured
            self.late = nearest_distance(self.anchors, embed(last.chip))
            self.best_frame = frame

    @property
    def streak(self) -> int:
        """Fused windows in a row of the current track under the threshold."""
        return self.fused.streak

    @property
    def best(self) -> float | None:
        """The best fused score of the scan; before any full window, that of the frames waiting."""
        return self.fused.best if self.fused.best is not None else self.fused.partial()

    def judge_liveness(self, result: FrameResult, network: int | None, same_track: bool) -> None:
        for cue in result.cues:
            self.cues[cue] = self.cues.get(cue, 0) + 1
        if not same_track:
            self.evidence = Evidence()
        if result.live is None:
            raise ValueError("liveness is enabled but the frame has no liveness measurements")
        self.evidence.add(result.live, network, same_track)
        if self.cues:
            named = ", ".join(f"{k} in {v} frames" for k, v in sorted(self.cues.items()))
            self.verdict = Verdict("attack", 0.0, f"IR cue: {named}")
            return
        self.verdict = judge(self.evidence, self.live_card, self.policy.security_level, self.liveness.window)

    def liveness_summary(self) -> str:
        """off, not-checked, pass, fail, doubt or pending."""
        if self.live_card is None:
            return "off"
        if self.verdict is None:
            return "not-checked"
        return {"live": "pass", "attack": "fail"}.get(self.verdict.state, self.verdict.state)

    def decision(self, matched: bool, timed_out: bool, started: float) -> Decision:
        if matched:
            kind = "match"
            reason = (
                f"{self.policy.consecutive} fused windows of {self.fused.size} frames in a row of one face "
                f"under the threshold ({self.fused.rule}), "
                + (f"liveness passed over {self.track} frames" if self.live_card else "liveness off")
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
        verdict = self.verdict
        return Decision(
            user=self.user,
            decision=kind,
            distance=self.best if self.best is not None else self.late,
            threshold=self.threshold,
            frames=self.frames,
            elapsed_ms=(time.monotonic() - started) * 1e3,
            reason=reason,
            judged=self.judged,
            skipped=dict(self.skipped),
            liveness=self.liveness_summary(),
            liveness_score=None if verdict is None else verdict.score,
            liveness_reason="" if verdict is None else verdict.reason,
            liveness_cues={} if verdict is None else dict(verdict.features),
            look=self.best_look_label(),
            first_judged_ms=None if self.first_judged is None else (self.first_judged - started) * 1e3,
        )

    def best_look_label(self) -> str:
        """The label of the look the best fused window came closest to ("" when unknown)."""
        labels = getattr(self.anchors, "labels", ())
        index = self.fused.best_look
        return labels[index] if index is not None and index < len(labels) else ""

    def no_match_reason(self) -> str:
        if self.outcome == "attack":
            return "presentation attack: " + self.verdict.reason
        if self.embedded == 0:
            return (
                f"the scan ended after {self.judged} usable frame(s), before the face could be judged"
                + self.skip_summary()
            )
        if self.fused.windows == 0:
            return (
                f"fewer than {self.fused.size} quality frames of one face to fuse"
                + (f" ({self.fused.low_quality} of low quality)" if self.fused.low_quality else "")
                + self.skip_summary()
            )
        if self.best < self.threshold:
            live = ""
            if self.verdict is not None:
                live = f"; liveness {self.liveness_summary()}: {self.verdict.reason}"
            return (
                f"fused score under the threshold but not {self.policy.consecutive} windows in a row "
                f"of one face judged live{live}" + self.skip_summary()
            )
        return f"best fused score {self.best:.3f} is not under the threshold {self.threshold:.3f}"

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
    meter: Callable[[np.ndarray, Face | None], None] | None = None,
) -> Decision:
    """Run the decision policy over frames until a match, the end of the source, or the deadline.

    deadline (time.monotonic()) wins over timeout; pass the one the frame source was given, so both
    agree on when the scan ran out of time. meter (the source's FrameSource.meter) is told where the
    face is in each frame.
    """
    started = time.monotonic()
    if deadline is None:
        deadline = started + (policy.timeout if timeout is None else timeout)
    card = getattr(pipeline, "card", None)
    state = Scan(user, anchors, threshold, policy, liveness, pipeline.live_card, **fusion_of(card))
    timed_out = False
    previous = None
    for rgb in frames:
        embed = state.wants_embedding()
        previous = pipeline.analyse(rgb, previous=previous, networks=state.networks(), embed=embed)
        if meter is not None:
            meter(rgb, previous.face)
        if state.feed(previous, rgb):
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break
    matched = state.outcome == "match"
    timed_out = timed_out or (not matched and time.monotonic() >= deadline)
    state.report_late(lambda chip: pipeline.embedder.embed(chip)[0])
    decision = state.decision(matched, timed_out, started)
    decision.frame = state.best_frame
    decision.embeddings = state.learnable()
    return decision
