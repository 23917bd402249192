"""Head pose from the five MTCNN landmarks: how far the nose sits off the face's midline and along it.

No 3-D model: the nose tip stands out of the face's plane, so turning the head
moves it sideways against the eyes and mouth, and tilting it moves it along the
line from the eyes to the mouth. Both are measured in the face's own frame
(rotated with the eye-to-mouth axis, so a tilted head reads the same), as
fractions of the eye distance (yaw) and of the eye-to-mouth distance (pitch).

Conventions, for a camera that does not mirror (V4L2 webcams deliver the
scene as seen from the camera):
- yaw > 0: the nose is towards the image's right, so the person has turned to
  *their* left; about 0.15-0.6 for "a little" to "well" turned.
- pitch: 0 at the eye line, 1 at the mouth line; about 0.45-0.55 looking
  straight (it varies from person to person), lower looking up, higher
  looking down.
- roll: the eye line's angle in degrees, positive when the right-hand eye in
  the image is lower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    yaw: float
    pitch: float
    roll: float

    def as_dict(self) -> dict:
        return {"yaw": round(self.yaw, 3), "pitch": round(self.pitch, 3), "roll": round(self.roll, 1)}


def estimate_pose(landmarks: np.ndarray) -> Pose | None:
    """The pose of a face from its (5, 2) landmarks; None when they are degenerate."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.all(np.isfinite(points)):
        return None
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    eyes = (left_eye + right_eye) / 2
    mouth = (mouth_left + mouth_right) / 2
    axis = mouth - eyes
    length = float(np.linalg.norm(axis))
    eye_distance = float(np.linalg.norm(right_eye - left_eye))
    if length < 1e-3 or eye_distance < 1e-3:
        return None
    down = axis / length
    across = np.array([down[1], -down[0]])
    offset = nose - eyes
    roll = math.degrees(math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))
    return Pose(yaw=float(offset @ across) / eye_distance, pitch=float(offset @ down) / length, roll=roll)
