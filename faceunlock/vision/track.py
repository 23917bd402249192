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


def moved_too_far(before: Face, after: Face, policy: TrackPolicy) -> bool:
    (bx, by), (ax, ay) = before.center, after.center
    shift = math.hypot(ax - bx, ay - by) / before.size
    return shift > policy.max_shift or abs(math.log(after.size / before.size)) > math.log1p(policy.max_scale)


def locate(
    detector: Detector, rgb: np.ndarray, previous: Detection | None, age: int, policy: TrackPolicy
) -> tuple[Detection, int]:
    """This frame's faces and their age (frames since the last full detection; 0: detected now).

    Follows the one face of `previous` (last frame's faces, `age` frames after a full detection)
    when the policy allows, else runs a full detection.
    """
    if previous is not None and len(previous.faces) == 1 and age + 1 < policy.redetect_every:
        before = previous.faces[0]
        face = detector.refine(rgb, before.box)
        if face is not None and not moved_too_far(before, face, policy):
            return Detection(faces=[face], image_shape=(int(rgb.shape[0]), int(rgb.shape[1]))), age + 1
    return detector.detect(rgb), 0
