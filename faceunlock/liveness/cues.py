"""Per-frame liveness measurements for an ordinary RGB webcam; no special hardware, no torch.

Each judged frame gets:

- ``pad``: the presentation-attack network's real-vs-attack log-odds on a context crop (2.7x or
  4.0x the face box). A scan alternates the networks frame by frame (see ``Pipeline.analyse``).
- ``frozen``: the frame's small grey copy is identical to the previous frame's. A camera's
  sensor noise makes every real frame differ; identical frames are a still picture fed as video.
- ``face_shift`` / ``ring_shift``: the median optical-flow displacement since the previous frame
  of points on the face and of points in a ring of surroundings around it (in face widths). A
  live head moves against a still background; a face on a hand-held phone or photo moves with
  its bezel, border and the screen content around it, as one rigid plane.
- ``glare``: the share of saturated pixels in the 2.7x crop (specular reflection on glass or
  glossy paper).
- ``moire``: the share of the face chip's spectral energy in the top frequency band, where a
  re-photographed screen's pixel grid and resampling leave aliasing.
- ``ring_level``: the ring's mean grey level, whose frame-to-frame jumps measure flicker.
- ``eyes``: the mean openness of both eyes (lid gap over eye width) from the face mesh
  (faceunlock.vision.landmarks); a blink dips it for a few frames. A print or a still cannot blink;
  a replayed video can.

``faceunlock.liveness.score`` turns the frames of one tracked face into window features and one
score; which features it uses is written in the model card.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from faceunlock.vision.landmarks import eye_openness

MOTION_SIDE = 320
"""Motion is measured on a grey copy of the frame scaled to this long side."""
MAX_POINTS = 60
MIN_POINTS = 4
MESH_PRESENCE = 0.5
"""The face mesh's presence probability under which its eyes are not measured."""


@dataclass
class MotionFrame:
    """What the next frame needs to measure motion against this one: a small grey copy."""

    grey: np.ndarray
    scale: float


@dataclass
class FrameCues:
    """The liveness measurements of one frame's face."""

    pad: dict[int, float] = field(default_factory=dict)
    frozen: bool = False
    face_shift: tuple[float, float] | None = None
    ring_shift: tuple[float, float] | None = None
    glare: float = 0.0
    moire: float = 0.0
    ring_level: float = 0.0
    eyes: float | None = None
    motion: MotionFrame | None = field(default=None, repr=False)


def motion_frame(rgb: np.ndarray) -> MotionFrame:
    h, w = rgb.shape[:2]
    scale = min(1.0, MOTION_SIDE / max(h, w))
    small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return MotionFrame(grey=cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), scale=scale)


def regions(box, scale: float, shape: tuple[int, int]) -> tuple[np.ndarray, tuple, tuple]:
    """A mask of the surroundings (1.3x to 3x the face box) and the inner face box, in grey pixels."""
    x1, y1, x2, y2 = (v * scale for v in box)
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2

    def grow(f):
        return (cx - f * w / 2, cy - f * h / 2, cx + f * w / 2, cy + f * h / 2)

    outer, inner_out, face = grow(3.0), grow(1.3), grow(0.6)
    mask = np.zeros(shape, np.uint8)
    ox1, oy1, ox2, oy2 = (int(round(v)) for v in outer)
    mask[max(oy1, 0) : max(oy2, 0), max(ox1, 0) : max(ox2, 0)] = 255
    ix1, iy1, ix2, iy2 = (int(round(v)) for v in inner_out)
    mask[max(iy1, 0) : max(iy2, 0), max(ix1, 0) : max(ix2, 0)] = 0
    fx1, fy1, fx2, fy2 = (int(round(v)) for v in face)
    face_mask = np.zeros(shape, np.uint8)
    face_mask[max(fy1, 0) : max(fy2, 0), max(fx1, 0) : max(fx2, 0)] = 255
    return mask, face_mask, (w, h)


def median_flow(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> tuple[float, float] | None:
    """Median displacement of trackable corners inside mask, from prev to cur (None: too few)."""
    points = cv2.goodFeaturesToTrack(prev, MAX_POINTS, 0.01, 3, mask=mask, blockSize=5)
    if points is None or len(points) < MIN_POINTS:
        return None
    moved, status, _ = cv2.calcOpticalFlowPyrLK(prev, cur, points, None, winSize=(11, 11), maxLevel=2)
    ok = status.ravel() == 1
    if ok.sum() < MIN_POINTS:
        return None
    d = (moved - points).reshape(-1, 2)[ok]
    return float(np.median(d[:, 0])), float(np.median(d[:, 1]))


def measure_motion(
    prev: MotionFrame, cur: MotionFrame, box, ring: bool = True
) -> tuple[bool, tuple | None, tuple | None]:
    """(frozen, face_shift, ring_shift) of cur against prev, shifts in face widths; the ring's only
    when `ring`."""
    if prev.grey.shape != cur.grey.shape:
        return False, None, None
    if np.array_equal(prev.grey, cur.grey):
        return True, (0.0, 0.0), (0.0, 0.0)
    ring_mask, face_mask, (w, _) = regions(box, cur.scale, cur.grey.shape)
    if w <= 1:
        return False, None, None
    face = median_flow(prev.grey, cur.grey, face_mask)
    ring = median_flow(prev.grey, cur.grey, ring_mask) if ring else None
    norm = 1.0 / w
    face = None if face is None else (face[0] * norm, face[1] * norm)
    ring = None if ring is None else (ring[0] * norm, ring[1] * norm)
    return False, face, ring


def glare_share(crop_bgr: np.ndarray) -> float:
    """Share of the (3, H, W) crop's pixels that are saturated in every channel."""
    return float((crop_bgr.min(axis=0) >= 245).mean())


def moire_share(chip: np.ndarray) -> float:
    """Share of the chip's (RGB uint8) non-DC spectral energy above 0.35 cycles per pixel."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey -= grey.mean()
    power = np.abs(np.fft.rfft2(grey)) ** 2
    fy = np.fft.fftfreq(grey.shape[0])[:, None]
    fx = np.fft.rfftfreq(grey.shape[1])[None, :]
    radius = np.hypot(fy, fx)
    band = power[(radius > 0.05)]
    total = float(band.sum())
    return float(power[radius > 0.35].sum() / total) if total > 0 else 0.0


def eye_level(mesh) -> float | None:
    """Both eyes' mean openness from a face mesh (faceunlock.vision.landmarks.FaceMesh), or None
    when the network does not see a face in the crop."""
    if not mesh.presence >= MESH_PRESENCE:
        return None
    value = float(np.mean(eye_openness(mesh.points)))
    return value if np.isfinite(value) else None


def ring_level(motion: MotionFrame, box) -> float:
    mask, _, _ = regions(box, motion.scale, motion.grey.shape)
    return float(cv2.mean(motion.grey, mask=mask)[0])
