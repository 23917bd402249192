"""Greedy non-maximum suppression in numpy (no torch, no torchvision).

``nms`` and ``batched_nms`` follow ``torchvision.ops``: boxes are (x1, y1, x2, y2), the
indices kept come back sorted by decreasing score (ties: lower index first), and a box is
suppressed when its overlap with a kept box is strictly greater than the threshold. The
arithmetic is done in the boxes' own dtype, in torchvision's order, so borderline cases
agree too.

Two keywords cover MTCNN's variants:
- ``overlap="min"``: intersection over the smaller of the two areas, not over the union
  (MTCNN's 'Min' suppression in its last stage).
- ``offset=1.0``: widths are ``x2 - x1 + 1``, treating coordinates as inclusive pixel indices
  (MTCNN's convention). torchvision's is ``offset=0.0``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Overlap = Literal["iou", "min"]


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    *,
    overlap: Overlap = "iou",
    offset: float = 0.0,
) -> np.ndarray:
    """Indices (int64 array) of the boxes kept by greedy NMS, by decreasing score."""
    return _greedy(boxes, scores, None, iou_threshold, overlap, offset)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    idxs: np.ndarray,
    iou_threshold: float,
    *,
    overlap: Overlap = "iou",
    offset: float = 0.0,
) -> np.ndarray:
    """NMS run independently within each value of idxs (a class or image index)."""
    idxs, scores = np.asarray(idxs), np.asarray(scores)
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must have shape {np.shape(scores)}, got {np.shape(idxs)}")
    return _greedy(boxes, scores, idxs, iou_threshold, overlap, offset)


def _greedy(
    boxes: np.ndarray,
    scores: np.ndarray,
    idxs: np.ndarray | None,
    threshold: float,
    overlap: Overlap,
    offset: float,
) -> np.ndarray:
    boxes, scores = np.asarray(boxes), np.asarray(scores)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"scores must have shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    if overlap not in ("iou", "min"):
        raise ValueError(f"overlap must be 'iou' or 'min', got {overlap!r}")
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)

    b = boxes if np.issubdtype(boxes.dtype, np.floating) else boxes.astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = b[order].T
    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    group = None if idxs is None else np.asarray(idxs)[order]

    kept = []
    alive = np.arange(len(order))  # positions in score order not yet suppressed
    with np.errstate(divide="ignore", invalid="ignore"):
        while alive.size:
            i, rest = alive[0], alive[1:]
            kept.append(i)
            w = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + offset)
            h = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + offset)
            inter = w * h
            if overlap == "min":
                ratio = inter / np.minimum(area[i], area[rest])
            else:
                ratio = inter / (area[i] + area[rest] - inter)
            # Compare in double, as torchvision does (float score vs double threshold).
            drop = ratio.astype(np.float64) > threshold
            if group is not None:
                drop &= group[rest] == group[i]
            alive = rest[~drop]
    return order[kept].astype(np.int64)
