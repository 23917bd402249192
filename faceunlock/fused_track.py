"""The frames of one tracked face, fused a window at a time: the verify policy's unit of decision.

Quality frames of the tracked face fill a window of ``size`` frames (the model card's attempt M).
Each full window is one attempt, scored by the card's fusion rule against the enrolled anchors and
compared with the rule's attempt-level threshold; then the next window starts empty, so windows
never share a frame. ``streak`` counts full windows in a row under the threshold.
"""

from __future__ import annotations

import numpy as np

from faceunlock.fusion import check_rule, fuse

MIN_QUALITY = 0.1
"""Frames of lower quality (faceunlock.quality) are watched but never fused: a strongly turned head,
say, or a tiny, blurred face."""


class FusedTrack:
    """Disjoint windows of quality frames of one tracked face, each a fused decision."""

    def __init__(
        self, anchors: np.ndarray, rule: str, size: int, threshold: float, min_quality: float = MIN_QUALITY
    ):
        if anchors.ndim != 2 or len(anchors) == 0:
            raise ValueError("no enrolled anchors")
        if size < 1:
            raise ValueError("a window needs at least one frame")
        self.anchors = anchors
        self.rule = check_rule(rule)
        self.size = size
        self.threshold = threshold
        self.min_quality = min_quality
        self.frames: list[np.ndarray] = []
        self.weights: list[float] = []
        self.streak = 0
        self.windows = 0
        self.best: float | None = None
        self.best_look: int | None = None
        """Which look (faceunlock.store.Anchors.looks) the best window came closest to."""
        self.low_quality = 0

    def reset(self) -> None:
        """A new track: nothing carries over from the last face."""
        self.frames, self.weights, self.streak = [], [], 0

    def add(self, embedding: np.ndarray, quality: float) -> float | None:
        """Take one frame of the track; return the fused score when it completes a window, else None."""
        if not quality >= self.min_quality:
            self.low_quality += 1
            return None
        self.frames.append(np.asarray(embedding, np.float64))
        self.weights.append(float(quality))
        if len(self.frames) < self.size:
            return None
        scores = self.look_scores()
        score = min(scores)
        self.frames, self.weights = [], []
        self.windows += 1
        self.streak = self.streak + 1 if score < self.threshold else 0
        if self.best is None or score < self.best:
            self.best = score
            self.best_look = scores.index(score)
        return score

    def look_scores(self) -> list[float]:
        """The fused score of the frames in the window now (full or not) against each look of the
        enrolment (faceunlock.store.Anchors) on its own."""
        frames, weights = np.stack(self.frames), np.array(self.weights)
        looks = getattr(self.anchors, "looks", ()) or (self.anchors,)
        return [fuse(self.rule, np.asarray(look), frames, weights) for look in looks]

    def score(self) -> float:
        """The fused score of the frames in the window now: the best look's."""
        return min(self.look_scores())

    def partial(self) -> float | None:
        """The fused score of a window still filling, for the record: never a decision."""
        return self.score() if self.frames else None
