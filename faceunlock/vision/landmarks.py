"""MediaPipe's 468-point face mesh on ONNX Runtime (no torch): landmarks and eye openness.

The network is MediaPipe 0.10.14's ``face_landmark.tflite``, exported to ONNX by
``scripts/export_face_landmark.py``; its card is ``models/face-landmark.json``. It reads a square crop
around the face, as MediaPipe cuts it from its detector's box: the box's centre, 1.5 times its longer
side, resized to 192x192, RGB scaled to [0, 1] (found by measurement, see the card). Here the box is
the MTCNN box (``faceunlock.vision.detect``), and the crop is not rotated.

Coordinates returned are frame pixels, with the centre of pixel (0, 0) at (0, 0) as for the MTCNN
landmarks; z is relative depth in the same pixel scale (smaller is nearer the camera).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceunlock.errors import ModelError
from faceunlock.paths import models_dir
from faceunlock.vision.backend import OnnxNet

CARD = "face-landmark"
INPUT_SIZE = 192
CROP_SCALE = 1.5
POINTS = 468
SOURCE_KEY = "source_sha256"

LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
"""The contour of the eye on the image's left in an unmirrored frame (the subject's right eye)."""
RIGHT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
"""The contour of the eye on the image's right (the subject's left eye)."""
LIDS = {"left": (159, 145, 33, 133), "right": (386, 374, 362, 263)}
"""Per eye (image side): upper lid, lower lid, outer and inner corner (left eye), inner and outer (right)."""


@dataclass(frozen=True)
class LandmarkCard:
    """The ONNX file of models/face-landmark.json, its sha256 and the .tflite it was exported from."""

    name: str
    onnx: Path
    onnx_sha256: str
    source_sha256: str
    path: Path


def load_landmark_card(name: str = CARD, folder: Path | None = None) -> LandmarkCard:
    """Read models/<name>.json (the ONNX file itself is checked when it is loaded)."""
    folder = folder or models_dir()
    path = folder / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
        return LandmarkCard(
            name=raw["name"],
            onnx=folder / raw["onnx"]["file"],
            onnx_sha256=raw["onnx"]["sha256"],
            source_sha256=raw["origin"]["tflite_sha256"],
            path=path,
        )
    except FileNotFoundError:
        raise ModelError(f"face landmark model card not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"face landmark model card {path} is malformed: {exc!r}") from None


@dataclass(frozen=True)
class FaceMesh:
    """One face's mesh: points (468, 3) float32 x, y, z in frame pixels; presence in [0, 1]."""

    points: np.ndarray
    presence: float


def crop_matrix(box: tuple[float, float, float, float], scale: float = CROP_SCALE) -> np.ndarray:
    """The 2x3 affine map from crop pixel (u, v) to frame pixel (x, y), both pixel-centre based."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * scale
    if not side > 0:
        raise ValueError(f"face box must have a positive size, got {box}")
    s = side / INPUT_SIZE
    x0, y0 = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
    return np.array([[s, 0.0, x0 + 0.5 * s - 0.5], [0.0, s, y0 + 0.5 * s - 0.5]], np.float64)


def face_crop(
    rgb: np.ndarray, box: tuple[float, float, float, float], scale: float = CROP_SCALE
) -> np.ndarray:
    """The network's input for one face: (3, 192, 192) float32 RGB in [0, 1]; black outside the frame."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("frame must be a uint8 RGB array of shape (H, W, 3)")
    crop = cv2.warpAffine(
        rgb,
        crop_matrix(box, scale),
        (INPUT_SIZE, INPUT_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32) / 255.0


def to_frame(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Network output (468, 3) in crop pixels (continuous: 0 is the crop's edge) -> frame pixels."""
    s = matrix[0, 0]
    out = np.empty_like(points, dtype=np.float32)
    out[:, 0] = matrix[0, 2] + (points[:, 0] - 0.5) * s
    out[:, 1] = matrix[1, 2] + (points[:, 1] - 0.5) * s
    out[:, 2] = points[:, 2] * s
    return out


def presence(logit: float) -> float:
    """The face-presence probability from the network's logit."""
    return float(1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0))))


class FaceLandmarker:
    """The landmark network, loaded once (after a sha256 check against its card) and kept warm."""

    def __init__(self, card: LandmarkCard | None = None, threads: int = 1):
        card = card or load_landmark_card()
        self.net = OnnxNet(card.onnx, card.onnx_sha256, threads=threads)
        source = self.net.metadata.get(SOURCE_KEY)
        if source != card.source_sha256:
            raise ModelError(
                f"{card.onnx} was exported from {source!r}, but the card's .tflite is {card.source_sha256}"
            )
        self.card = card

    def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw network on (N, 3, 192, 192) crops: points (N, 468, 3) in crop pixels, logits (N,)."""
        points, logits = self.net(crops)
        return points.reshape(-1, POINTS, 3), logits.reshape(-1)

    def __call__(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> FaceMesh:
        """The mesh of the face in `box` (x1, y1, x2, y2, as the detector gives it) of an RGB frame."""
        points, logits = self.run(face_crop(rgb, box)[None])
        if not (np.isfinite(points).all() and np.isfinite(logits).all()):
            raise ModelError("the face landmark network gave non-finite output")
        return FaceMesh(points=to_frame(points[0], crop_matrix(box)), presence=presence(logits[0]))


def eye_openness(points: np.ndarray) -> tuple[float, float]:
    """(left, right) by image side: each eye's lid gap (upper to lower lid point) over its width
    (corner to corner), in the image plane. Measured on 199 LFW photos: median 0.27, 1st to 99th
    percentile 0.13 to 0.43 (the lowest are squinting eyes); NaN if the corners coincide."""
    p = np.asarray(points, np.float64)[:, :2]
    out = []
    for side in ("left", "right"):
        upper, lower, corner_a, corner_b = LIDS[side]
        width = np.linalg.norm(p[corner_a] - p[corner_b])
        out.append(float(np.linalg.norm(p[upper] - p[lower]) / width) if width > 0 else float("nan"))
    return out[0], out[1]


def eye_centres(points: np.ndarray) -> np.ndarray:
    """(2, 2): the mean of each eye's contour, image-left eye first (as MTCNN orders its eye points)."""
    p = np.asarray(points, np.float64)[:, :2]
    return np.stack([p[list(LEFT_EYE)].mean(axis=0), p[list(RIGHT_EYE)].mean(axis=0)])
