"""Context crops around a detected face for the presentation-attack networks.

Each network sees the face box scaled about its centre (2.7x or 4.0x), so the crop carries the
context where a screen border, a hand or glare shows. A crop that would leave the image is first
shrunk to fit (keeping the box's aspect ratio) and then shifted back inside, never padded. The
crop is resized to 80x80 and given in the networks' input format: BGR, float32, 0..255, CHW.
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE = 80


def context_box(
    box: tuple[float, float, float, float], scale: float, height: int, width: int
) -> tuple[int, int, int, int]:
    """The face box scaled about its centre by `scale`, shrunk to fit and shifted into the image."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    if bw <= 0 or bh <= 0 or height <= 0 or width <= 0:
        raise ValueError(f"empty face box {box} or image {height}x{width}")
    scale = min(scale, (height - 1) / bh, (width - 1) / bw)
    cw, ch = bw * scale, bh * scale
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(cx - cw / 2, 0.0), width - 1 - cw)
    top = min(max(cy - ch / 2, 0.0), height - 1 - ch)
    return int(left), int(top), int(left + cw), int(top + ch)


def context_crop(rgb: np.ndarray, box: tuple[float, float, float, float], scale: float) -> np.ndarray:
    """One network input: (3, 80, 80) float32 BGR 0..255 of the scaled face box."""
    h, w = rgb.shape[:2]
    left, top, right, bottom = context_box(box, scale, h, w)
    small = cv2.resize(rgb[top : bottom + 1, left : right + 1], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(small[..., ::-1].transpose(2, 0, 1), dtype=np.float32)
