"""Following one face from frame to frame: O-Net alone on last frame's box, between full detections.

A full MTCNN detection runs on the first frame, every ``redetect_every`` frames after it, after a
frame with no face or several, and whenever following fails: O-Net no longer scores the box as a
face, or the face moved more than ``max_shift`` of its size, or grew or shrank by more than
``max_scale``. In between, O-Net on the square around the previous face box gives the new box and
landmarks at a fraction of the cost (one 48x48 crop instead of the pyramid, R-Net and O-Net).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from faceunlock.vision.detect import Detection, Detector, Face


@dataclass(frozen=True)
class TrackPolicy:
    redetect_every: int = 5
    max_shift: float = 0.25
    max_scale: float = 0.25

    def __post_init__(self) -> None:
        if self.redetect_every < 1 or not self.max_shift > 0 or not self.max_scale > 0:
            raise ValueError(f"bad tracking policy {self}")


@dataclass(frozen=True)
class Located:
    """Where this frame's faces are, and how they were found."""

    detection: Detection
    tracked: bool
    age: int
    """Frames since the last full detection (0: this frame was fully detected)."""


def moved_too_far(before: Face, after: Face, policy: TrackPolicy) -> bool:
    (bx, by), (ax, ay) = before.center, after.center
    shift = math.hypot(ax - bx, ay - by) / before.size
    return shift > policy.max_shift or abs(math.log(after.size / before.size)) > math.log1p(policy.max_scale)


def locate(detector: Detector, rgb: np.ndarray, previous: Located | None, policy: TrackPolicy) -> Located:
    """This frame's faces: followed from `previous` when the policy allows, else a full detection."""
    if previous is not None and previous.age + 1 < policy.redetect_every:
        faces = previous.detection.faces
        if len(faces) == 1:
            face = detector.refine(rgb, faces[0].box)
            if face is not None and not moved_too_far(faces[0], face, policy):
                detection = Detection(faces=[face], image_shape=(int(rgb.shape[0]), int(rgb.shape[1])))
                return Located(detection, tracked=True, age=previous.age + 1)
    return Located(detector.detect(rgb), tracked=False, age=0)
