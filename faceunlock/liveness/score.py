"""From the per-frame cues of one tracked face to one liveness score in [0, 1] and a verdict.

Window features (over the frames of the track so far; ``None`` when not measurable, which counts
as the fitting data's mean, i.e. no evidence either way):

- ``pad``: mean real-vs-attack log-odds (clipped to +-8) of the network each frame ran;
  ``pad0`` / ``pad1``: the same per network; ``pad_votes``: share of frames with log-odds > 0.
- ``coupling``: how much the surroundings move with the face, sum(f.r) / sum(|f|^2) over frame
  pairs (f, r: face and ring shifts), clipped to [-1, 1] and scaled down when the face hardly
  moves (below 1% of its width per frame): ~0 for a live head before a still background, ~1 for
  a face on a hand-held screen or photo.
- ``motion``: log10 of the face's rms shift per frame (micro-motion); ``stillness``: how far it
  is under STILL_LEVEL (0 above it), so stillness can count against a face without a lot of
  motion counting for it (a hand-held replay moves a lot).
- ``glare``, ``moire``: means of the per-frame shares; ``flicker``: mean |change| of the ring's
  grey level between frames, relative to its level.
- ``blink``: how deep the eyes' openness dipped under its median over the track, 1 - min / median
  (from BLINK_FRAMES measured frames on): about 0.4-0.7 over a blink, a few hundredths on a print.

The score is a logistic fusion of the features the model card names, fitted on data that is not
reported on (faceunlock.training.liveness_fit). Frames identical to the previous one are not
evidence; two in a row mean the source is a still picture: a clear attack.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from faceunlock.errors import ModelError
from faceunlock.liveness.card import Fusion, LivenessCard
from faceunlock.liveness.cues import FrameCues

CUES_OF_FEATURE = {
    "pad": (),
    "pad0": (),
    "pad1": (),
    "pad_votes": (),
    "coupling": ("face_shift", "ring_shift"),
    "motion": ("face_shift",),
    "stillness": ("face_shift",),
    "glare": ("glare",),
    "moire": ("moire",),
    "flicker": ("ring_level",),
    "blink": ("eyes",),
}
"""The per-frame measurements (faceunlock.liveness.cues) each window feature is computed from; the
networks' log-odds and the identical-frame check are always measured."""
FEATURES = tuple(CUES_OF_FEATURE)
ALL_CUES = frozenset(c for cues in CUES_OF_FEATURE.values() for c in cues)
LOGIT_CLIP = 8.0
STILL_MOTION = 0.01
STILL_LEVEL = -2.5
"""log10 face shift per frame under which a face counts as unnaturally still (live faces in the
fitting clips: median -1.95, 2nd percentile -2.8; a still picture with fresh noise: about -3.8)."""
FROZEN_RUN = 2
BLINK_FRAMES = 3
KEPT_FRAMES = 300
"""Evidence frames a track keeps one by one: the longest liveness window a config may ask for."""


@dataclass
class Evidence:
    """The liveness evidence of one tracked face, frame by frame."""

    pad: list[tuple[int, float]] = field(default_factory=list)
    pairs: list[tuple[tuple[float, float], tuple[float, float]]] = field(default_factory=list)
    face_only: list[tuple[float, float]] = field(default_factory=list)
    glare: list[float] = field(default_factory=list)
    moire: list[float] = field(default_factory=list)
    level_steps: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)
    eyes: list[float] = field(default_factory=list)
    frozen_run: int = 0
    frozen: int = 0
    kept: deque = field(default_factory=lambda: deque(maxlen=KEPT_FRAMES))
    """The last KEPT_FRAMES evidence frames as given (cues without the grey copy kept for motion,
    network, continued), for recent()."""

    @property
    def frames(self) -> int:
        """Frames that count as evidence (not frozen copies)."""
        return len(self.glare)

    def add(self, cues: FrameCues, network: int | None, continued: bool) -> None:
        """Take one judged frame; `continued`: the previous frame was judged on the same track."""
        if continued and cues.frozen:
            self.frozen_run += 1
            self.frozen += 1
            return
        self.frozen_run = 0
        self.kept.append((replace(cues, motion=None), network, continued))
        if network is not None and network in cues.pad:
            self.pad.append((network, float(np.clip(cues.pad[network], -LOGIT_CLIP, LOGIT_CLIP))))
        if continued and cues.face_shift is not None:
            self.face_only.append(cues.face_shift)
            if cues.ring_shift is not None:
                self.pairs.append((cues.face_shift, cues.ring_shift))
        if continued and self.levels:
            self.level_steps.append(abs(cues.ring_level - self.levels[-1]))
        self.levels.append(cues.ring_level)
        self.glare.append(cues.glare)
        self.moire.append(cues.moire)
        if cues.eyes is not None:
            self.eyes.append(cues.eyes)

    def recent(self, frames: int) -> Evidence:
        """The evidence of the last `frames` evidence frames alone, as a track that started there."""
        if not 0 < frames <= KEPT_FRAMES:
            raise ValueError(f"recent evidence of {frames} frames: keep 1 to {KEPT_FRAMES}")
        out = Evidence()
        for k, (cues, network, continued) in enumerate(list(self.kept)[-frames:]):
            out.add(cues, network, continued and k > 0)
        return out

    def features(self) -> dict[str, float | None]:
        values = [v for _, v in self.pad]
        out: dict[str, float | None] = {
            "pad": mean(values),
            "pad0": mean([v for i, v in self.pad if i == 0]),
            "pad1": mean([v for i, v in self.pad if i == 1]),
            "pad_votes": mean([float(v > 0) for v in values]),
            "coupling": None,
            "motion": None,
            "stillness": None,
            "glare": mean(self.glare),
            "moire": mean(self.moire),
            "flicker": None,
            "blink": None,
        }
        if self.face_only:
            f = np.asarray(self.face_only)
            out["motion"] = math.log10(math.sqrt(float((f**2).sum(1).mean())) + 1e-4)
            out["stillness"] = max(0.0, STILL_LEVEL - out["motion"])
        if self.pairs:
            f = np.asarray([p[0] for p in self.pairs])
            r = np.asarray([p[1] for p in self.pairs])
            energy = float((f**2).sum())
            rms = math.sqrt(energy / len(f))
            if energy > 0:
                c = float(np.clip((f * r).sum() / energy, -1.0, 1.0))
                out["coupling"] = c * min(1.0, rms / STILL_MOTION)
            else:
                out["coupling"] = 0.0
        if len(self.eyes) >= BLINK_FRAMES:
            middle = float(np.median(self.eyes))
            out["blink"] = 1.0 - min(self.eyes) / middle if middle > 0 else None
        if self.level_steps and self.levels:
            out["flicker"] = float(np.mean(self.level_steps)) / max(float(np.mean(self.levels)), 1.0)
        return out


def cues_for(features: tuple[str, ...]) -> frozenset[str]:
    """The per-frame measurements the named window features need (ModelError for an unknown one)."""
    unknown = [f for f in features if f not in CUES_OF_FEATURE]
    if unknown:
        raise ModelError(f"unknown liveness feature(s) {', '.join(unknown)}; known: {', '.join(FEATURES)}")
    return frozenset(c for f in features for c in CUES_OF_FEATURE[f])


def mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def fused(fusion: Fusion, features: dict[str, float | None]) -> float:
    """The logistic score of the features the fusion names (a missing one counts as its mean)."""
    z = fusion.bias
    for name, w, m, s in zip(fusion.features, fusion.weights, fusion.mean, fusion.std, strict=True):
        x = features.get(name)
        if x is not None:
            z += w * (x - m) / s
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@dataclass(frozen=True)
class Verdict:
    """live, attack, doubt (scored, between the thresholds) or pending (too few frames yet)."""

    state: str
    score: float | None
    reason: str
    features: dict = field(default_factory=dict)


def judge(evidence: Evidence, card: LivenessCard, level: str, min_frames: int) -> Verdict:
    """The verdict on a track's evidence at a security level.

    Live needs the score over the whole track and over its last `need` frames (the frames a match
    is fused from lie within them) at the level's threshold: a long live stretch of one face cannot
    vouch for a picture that takes its place in the same box."""
    if evidence.frozen_run >= FROZEN_RUN:
        return Verdict("attack", 0.0, f"still picture: {evidence.frozen_run + 1} identical frames in a row")
    need = max(min_frames, card.min_frames)
    if evidence.frames < need:
        return Verdict("pending", None, f"face watched {evidence.frames} of {need} frames")
    features = evidence.features()
    score = fused(card.fusion, features)
    shown = {k: round(features[k], 4) for k in card.fusion.features if features.get(k) is not None}
    threshold = card.threshold(level)
    over = f"over {evidence.frames} frames"
    if score < card.attack_below:
        return Verdict("attack", score, f"score {score:.3f} < {card.attack_below}: attack {over}", shown)
    if score >= threshold and evidence.frames > need:
        recent = fused(card.fusion, evidence.recent(need).features())
        if recent < threshold:
            reason = (
                f"score {score:.3f} {over}, but {recent:.3f} over the last {need}, under {threshold} "
                f"({level}): doubt"
            )
            return Verdict("doubt", recent, reason, shown)
    if score >= threshold:
        return Verdict("live", score, f"score {score:.3f} >= {threshold} ({level}) {over}", shown)
    reason = f"score {score:.3f} between {card.attack_below} and {threshold} ({level}): doubt {over}"
    return Verdict("doubt", score, reason, shown)
