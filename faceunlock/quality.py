"""Per-frame face quality from what the pipeline already measures: face size, chip sharpness, head
pose (from the five landmarks) and the detector's score.

Each factor maps its measure onto [FLOOR, 1]; the quality of a frame is their product. The reference
values were read off the distributions of the celeba-train "calibrate" identities (median box 103 px,
lower quartile of sharpness 64, 90% of yaws within +-0.3, pitch 0.59 +- 0.09), never off the
identities held out for reporting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE_FULL = 100.0
"""Box side (pixels) from which a face counts as full size: a smaller one is upscaled into the chip."""
SHARP_FULL = 60.0
"""Laplacian variance of the chip from which a face counts as sharp."""
YAW_SCALE = 0.3
"""Horizontal nose offset (in eye distances) at which the pose factor has fallen to 1/e."""
PITCH_FRONTAL = 0.59
"""Nose height between eyes (0) and mouth (1) of a frontal face: the alignment template's value."""
PITCH_SCALE = 0.2
SCORE_FLOOR = 0.8
"""Detector score at and below which the score factor is at its floor."""
FLOOR = 0.1
"""No factor goes below this: a poor frame counts for little, never for nothing."""


@dataclass(frozen=True)
class Pose:
    """Head pose proxies from five landmarks: roll (radians), yaw and pitch (dimensionless)."""

    roll: float
    yaw: float
    pitch: float


def pose(landmarks: np.ndarray) -> Pose:
    """Pose of a face from its five landmarks (left eye, right eye, nose, mouth left, mouth right).

    Yaw is the nose's horizontal offset from the eyes' midpoint in eye distances (0 frontal), pitch the
    nose's height between the eye line and the mouth line (about 0.59 frontal), both after undoing roll.
    """
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_l, eye_r, nose = p[0], p[1], p[2]
    mouth = (p[3] + p[4]) / 2
    across = eye_r - eye_l
    iod = float(np.linalg.norm(across))
    if not np.isfinite(iod) or iod < 1e-6:
        return Pose(0.0, float("inf"), float("inf"))
    x = across / iod
    y = np.array([-x[1], x[0]])
    mid = (eye_l + eye_r) / 2
    down = float((mouth - mid) @ y)
    yaw = float((nose - mid) @ x) / iod
    pitch = float((nose - mid) @ y) / down if abs(down) > 1e-6 else float("inf")
    return Pose(float(np.arctan2(across[1], across[0])), yaw, pitch)


def factors(size: float, sharpness: float, landmarks: np.ndarray, score: float) -> dict[str, float]:
    """Each quality factor in [FLOOR, 1]; an unknown (NaN) measure gives 1, a non-finite pose the floor."""
    p = pose(landmarks)
    deviation = (p.yaw / YAW_SCALE) ** 2 + ((p.pitch - PITCH_FRONTAL) / PITCH_SCALE) ** 2
    raw = {
        "size": size / SIZE_FULL,
        "sharpness": sharpness / SHARP_FULL,
        "pose": float(np.exp(-deviation)) if np.isfinite(deviation) else 0.0,
        "score": (score - SCORE_FLOOR) / (1.0 - SCORE_FLOOR),
    }
    return {k: 1.0 if np.isnan(v) else float(np.clip(v, FLOOR, 1.0)) for k, v in raw.items()}


def frame_quality(size: float, sharpness: float, landmarks: np.ndarray, score: float) -> float:
    """The quality of one frame: the product of its factors, in [FLOOR**4, 1]."""
    return float(np.prod(list(factors(size, sharpness, landmarks, score).values())))


def qualities(
    sizes: np.ndarray, sharpness: np.ndarray, landmarks: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """frame_quality of many frames: arrays of length N, landmarks (N, 5, 2)."""
    return np.array(
        [frame_quality(*args) for args in zip(sizes, sharpness, landmarks, scores, strict=True)], np.float64
    )
