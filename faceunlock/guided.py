"""Guided enrolment: a few natural head poses, each capture checked, and plain words on what to change.

The person is asked for the poses in order (straight, a little left, right, up,
down). Every frame is checked: exactly one face, big enough but not cut off,
sharp, well lit, watched long enough without a presentation-attack cue, and
in which pose (faceunlock.vision.pose). A good frame counts for any pose still
missing, so a video or a person who turns early is not wasted; the prompt
moves on to the next pose when one is not seen for ``pose_timeout`` seconds.

Turning and tilting are judged against the person's own straight capture,
since where the nose sits when looking straight differs from face to face.
Each pose keeps its few most different candidates, so the anchors are a
small, diverse set instead of many near-identical frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from faceunlock.config import ENROL_POSES, EnrollConfig, LivenessConfig, VerifyConfig
from faceunlock.errors import EnrollError
from faceunlock.liveness.card import LivenessCard
from faceunlock.liveness.score import Evidence, judge
from faceunlock.pipeline import FrameResult
from faceunlock.verify import iou
from faceunlock.vision.detect import Face
from faceunlock.vision.pose import Pose, estimate_pose

POSES = ENROL_POSES
ASK = {
    "straight": "look straight at the camera",
    "left": "turn your head a little to the left",
    "right": "turn your head a little to the right",
    "up": "tilt your head up a little",
    "down": "tilt your head down a little",
}
HINTS = {
    "no-face": "no face found: look at the camera",
    "multiple": "only one face in front, please",
    "small": "move closer",
    "large": "move back a little",
    "blurry": "hold still",
    "dark": "more light, please",
    "bright": "too bright: turn away from the light",
    "attack": "no photos or screens, please",
    "watching": "keep looking at the camera",
}
STRAIGHT_YAW = 0.10
STRAIGHT_PITCH = (0.30, 0.70)
TURN = (0.12, 0.65)
"""Yaw for left and right, from the straight capture: at least a little, at most well turned."""
TILT = (0.08, 0.40)
"""Pitch for up and down, from the straight capture."""
MIN_LIGHT, MAX_LIGHT = 35.0, 215.0
"""Mean grey level of the aligned face chip."""
MAX_FACE_FRACTION = 0.8
"""A face taller than this share of the frame is likely cut off at the edges."""
CANDIDATE_GAP = 3
"""Frames between two candidates of one pose, so they are not copies of each other."""


@dataclass
class Quality:
    """What one frame looked like, for the report and the prompt."""

    frame: int
    faces: int
    face_size: float = 0.0
    sharpness: float = 0.0
    light: float = 0.0
    pose: Pose | None = None
    liveness: str = "not-checked"
    problem: str | None = None
    shows: str | None = None
    """The pose this frame shows (None: none of them, or not judged)."""

    def as_dict(self) -> dict:
        out = {
            "frame": self.frame,
            "faces": self.faces,
            "face_size": round(self.face_size, 1),
            "sharpness": round(self.sharpness, 1),
            "light": round(self.light, 1),
            "liveness": self.liveness,
            "problem": self.problem,
            "shows": self.shows,
        }
        if self.pose is not None:
            out.update(self.pose.as_dict())
        return out


@dataclass
class Step:
    """What the person is asked now, after one frame."""

    pose: str
    hint: str
    accepted: bool
    done: int
    total: int
    quality: Quality
    complete: list[str] = field(default_factory=list)


@dataclass
class Candidate:
    embedding: np.ndarray
    quality: Quality
    kept: bool = False


@dataclass
class Track:
    """One face followed from frame to frame: IR cues seen on it and its liveness evidence."""

    face: Face | None = None
    length: int = 0
    cues: set = field(default_factory=set)
    evidence: Evidence = field(default_factory=Evidence)

    def follow(self, result: FrameResult, network: int | None = None) -> None:
        face = result.face
        continued = face is not None and self.face is not None and iou(self.face, face) >= 0.3
        if not continued:
            self.length, self.cues, self.evidence = 0, set(), Evidence()
        self.face = face
        if face is not None:
            self.length += 1
            self.cues |= set(result.cues)
            if result.live is not None:
                self.evidence.add(result.live, network, continued)


def which_pose(pose: Pose, straight: Pose | None) -> str | None:
    """The pose a face shows. Before the straight capture, turns are judged from a yaw of 0, and tilts
    cannot be told (where the nose sits looking straight differs from face to face)."""
    if straight is None:
        level = abs(pose.yaw) < STRAIGHT_YAW and STRAIGHT_PITCH[0] <= pose.pitch <= STRAIGHT_PITCH[1]
        if level:
            return "straight"
        if TURN[0] <= abs(pose.yaw) <= TURN[1] and STRAIGHT_PITCH[0] <= pose.pitch <= STRAIGHT_PITCH[1]:
            return "left" if pose.yaw > 0 else "right"
        return None
    yaw, pitch = pose.yaw - straight.yaw, pose.pitch - straight.pitch
    if abs(yaw) < STRAIGHT_YAW / 2 and abs(pitch) < TILT[0] / 2:
        return "straight"
    if TURN[0] <= abs(yaw) <= TURN[1] and abs(pitch) <= TILT[1]:
        return "left" if yaw > 0 else "right"
    if TILT[0] <= abs(pitch) <= TILT[1] and abs(yaw) < TURN[0]:
        return "up" if pitch < 0 else "down"
    return None


def pose_hint(target: str, pose: Pose, straight: Pose | None) -> str:
    """Plain words that bring the head from pose towards the target pose."""
    if target == "straight" or straight is None:
        return ASK["straight"]
    yaw, pitch = pose.yaw - straight.yaw, pose.pitch - straight.pitch
    if target in ("left", "right"):
        sign = 1 if target == "left" else -1
        if sign * yaw > TURN[1]:
            return "not so far: turn back a little"
        if abs(pitch) > TILT[1]:
            return "keep your head level"
        return ASK[target]
    sign = -1 if target == "up" else 1
    if sign * pitch > TILT[1]:
        return "not so far: tilt back a little"
    if abs(yaw) >= TURN[0]:
        return "face the camera, then " + ASK[target]
    return ASK[target]


def frame_problem(result: FrameResult, policy: VerifyConfig, frame_height: int) -> str | None:
    """Why a frame cannot be an anchor, before pose and liveness: the first of the HINTS that applies."""
    if result.face is None:
        return "no-face"
    if result.detection.crowded or (result.detection.multiple and policy.multiple_faces == "reject"):
        return "multiple"
    if result.face.size < policy.min_face_size:
        return "small"
    if frame_height and result.face.height > MAX_FACE_FRACTION * frame_height:
        return "large"
    if result.sharpness < policy.min_sharpness:
        return "blurry"
    light = float(result.chip.mean())
    if light < MIN_LIGHT:
        return "dark"
    if light > MAX_LIGHT:
        return "bright"
    return None


class GuidedEnrolment:
    """Feed analysed frames; ask for poses; keep a small diverse anchor set. See the module docstring."""

    def __init__(
        self,
        policy: VerifyConfig,
        enroll: EnrollConfig,
        liveness: LivenessConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        live_card: LivenessCard | None = None,
    ):
        self.policy = policy
        self.cfg = enroll
        self.liveness = liveness or LivenessConfig()
        self.live_card = live_card if self.liveness.enabled else None
        self.previous: FrameResult | None = None
        self.clock = clock
        self.poses = ("straight", *(p for p in dict.fromkeys(enroll.poses) if p != "straight"))
        self.candidates: dict[str, list[Candidate]] = {p: [] for p in self.poses}
        self.last_taken: dict[str, int] = {}
        self.straight: Pose | None = None
        self.track = Track()
        self.frames = 0
        self.problems: dict[str, int] = {}
        self.asking = self.poses[0]
        self.asked_at = clock()
        self.skipped: list[str] = []

    @property
    def wanted(self) -> int:
        """Candidates gathered per pose before the pose is complete."""
        return 3 * self.cfg.per_pose

    def complete(self, pose: str) -> bool:
        return len(self.candidates[pose]) >= self.wanted

    @property
    def finished(self) -> bool:
        return all(self.complete(p) for p in self.poses)

    def captured(self) -> list[str]:
        return [p for p in self.poses if self.candidates[p]]

    def assess(self, result: FrameResult, frame_height: int) -> Quality:
        q = Quality(frame=self.frames, faces=len(result.detection.faces))
        self.track.follow(result, self.network(self.frames - 1))
        if result.face is not None:
            q.face_size, q.sharpness = result.face.size, result.sharpness
            q.light = float(result.chip.mean()) if result.chip is not None else 0.0
            q.pose = estimate_pose(result.face.landmarks)
        q.problem = frame_problem(result, self.policy, frame_height)
        if q.problem is None and q.pose is None:
            q.problem = "no-face"
        if q.problem is None and self.liveness.enabled:
            if self.track.cues:
                q.problem, q.liveness = "attack", "fail: " + ", ".join(sorted(self.track.cues))
            elif self.live_card is not None:
                q.problem, q.liveness = self.scored_liveness()
            elif self.track.length < self.liveness.window:
                q.problem = "watching"
                q.liveness = f"pending: {self.track.length} of {self.liveness.window} frames"
            else:
                q.liveness = "pass"
        elif not self.liveness.enabled:
            q.liveness = "off"
        if q.problem is None:
            q.shows = which_pose(q.pose, self.straight)
        return q

    def scored_liveness(self) -> tuple[str | None, str]:
        """The learned check on the track so far, as verify judges it: a clear attack refuses the
        frame, doubt or too little evidence keeps watching."""
        verdict = judge(self.track.evidence, self.live_card, self.policy.security_level, self.liveness.window)
        if verdict.state == "live":
            return None, "pass"
        if verdict.state == "attack":
            return "attack", "fail: " + verdict.reason
        return "watching", f"{verdict.state}: {verdict.reason}"

    def network(self, frame: int) -> int | None:
        """The liveness network frame `frame` (from 0) runs: they take turns, as in a scan."""
        return frame % len(self.live_card.networks) if self.live_card is not None else None

    def analyse(self, pipeline, rgb: np.ndarray) -> FrameResult:
        """The next frame through the pipeline as the liveness check needs it: motion against the
        frame before, and the network whose turn it is."""
        network = self.network(self.frames)
        self.previous = pipeline.analyse(
            rgb, previous=self.previous, networks=() if network is None else (network,)
        )
        return self.previous

    def take(self, q: Quality, embedding: np.ndarray) -> bool:
        """Keep the frame as a candidate for the pose it shows, if that pose still needs one."""
        pose = q.shows
        if pose not in self.candidates or self.complete(pose):
            return False
        if self.frames - self.last_taken.get(pose, -CANDIDATE_GAP) < CANDIDATE_GAP:
            return False
        self.candidates[pose].append(Candidate(embedding.astype(np.float32), q))
        self.last_taken[pose] = self.frames
        if pose == "straight" and self.straight is None:
            self.straight = q.pose
        return True

    def next_pose(self) -> str:
        """The pose to ask for: the current one until it is complete or its time is up (never for
        straight, which the others are judged against), then the next incomplete one in order."""
        now = self.clock()
        current_done = self.complete(self.asking)
        patience_over = self.asking != "straight" and now - self.asked_at > self.cfg.pose_timeout
        if not (current_done or patience_over) or self.finished:
            return self.asking
        if patience_over and not current_done and self.asking not in self.skipped:
            self.skipped.append(self.asking)
        order = self.poses[self.poses.index(self.asking) + 1 :] + self.poses
        self.asking = next(p for p in order if not self.complete(p))
        self.asked_at = now
        return self.asking

    def feed(self, result: FrameResult, frame_height: int = 0) -> Step:
        """Take one analysed frame; say what the person should do next."""
        self.frames += 1
        q = self.assess(result, frame_height)
        accepted = q.problem is None and self.take(q, result.embedding)
        if q.problem is not None:
            self.problems[q.problem] = self.problems.get(q.problem, 0) + 1
        target = self.next_pose()
        if self.finished:
            hint = "done: all poses captured"
        elif q.problem is not None:
            hint = HINTS[q.problem]
        else:
            hint = pose_hint(target, q.pose, self.straight)
        complete = [p for p in self.poses if self.complete(p)]
        return Step(target, hint, accepted, len(complete), len(self.poses), q, complete)

    def select(self) -> list[Candidate]:
        """Per pose, the per_pose candidates that differ most from what is already kept."""
        kept: list[Candidate] = []
        for pose in self.poses:
            pool = sorted(self.candidates[pose], key=lambda c: -c.quality.sharpness)
            for _ in range(min(self.cfg.per_pose, len(pool))):
                if kept:
                    chosen = np.stack([k.embedding for k in kept])
                    far = [float(np.linalg.norm(chosen - c.embedding, axis=1).min()) for c in pool]
                    best = pool.pop(int(np.argmax(far)))
                else:
                    best = pool.pop(0)
                best.kept = True
                kept.append(best)
        return kept

    def report(self) -> dict:
        """Every capture's quality, the poses got and missing, and the frames' problems."""
        return {
            "poses": {p: len(self.candidates[p]) for p in self.poses},
            "captured": self.captured(),
            "missing": [p for p in self.poses if not self.candidates[p]],
            "frames": self.frames,
            "problems": dict(self.problems),
            "captures": [
                {"pose": p, "kept": c.kept, **c.quality.as_dict()}
                for p in self.poses
                for c in self.candidates[p]
            ],
        }

    def result(self) -> np.ndarray:
        """The anchors; EnrollError naming what to change when too few poses were captured."""
        got = self.captured()
        enough = "straight" in got and len(got) >= min(self.cfg.min_poses, len(self.poses))
        if not enough:
            raise EnrollError(self.failure(got))
        return np.stack([c.embedding for c in self.select()])

    def failure(self, got: list[str]) -> str:
        if self.frames == 0:
            return "the source gave no usable frame (all black, too dark, or empty)"
        missing = [p for p in self.poses if p not in got]
        text = f"captured {len(got)} of {len(self.poses)} poses"
        text += f" ({', '.join(got)})" if got else ""
        text += f", need straight and at least {self.cfg.min_poses}; missing: "
        text += "; ".join(f"{p} ({ASK[p]})" for p in missing)
        if self.problems:
            worst = max(self.problems, key=self.problems.get)
            text += f"; most frames were not usable because: {HINTS[worst]}"
        return text
