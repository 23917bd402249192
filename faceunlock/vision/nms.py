"""Greedy non-maximum suppression without torchvision.

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
import torch
from torch import Tensor

Overlap = Literal["iou", "min"]


def nms(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float,
    *,
    overlap: Overlap = "iou",
    offset: float = 0.0,
) -> Tensor:
    """Indices (int64) of the boxes kept by greedy NMS, by decreasing score."""
    return _greedy(boxes, scores, None, iou_threshold, overlap, offset)


def batched_nms(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor,
    iou_threshold: float,
    *,
    overlap: Overlap = "iou",
    offset: float = 0.0,
) -> Tensor:
    """NMS run independently within each value of idxs (a class or image index)."""
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must have shape {tuple(scores.shape)}, got {tuple(idxs.shape)}")
    return _greedy(boxes, scores, idxs, iou_threshold, overlap, offset)


def _greedy(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor | None,
    threshold: float,
    overlap: Overlap,
    offset: float,
) -> Tensor:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"scores must have shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    if overlap not in ("iou", "min"):
        raise ValueError(f"overlap must be 'iou' or 'min', got {overlap!r}")
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)

    b = boxes.detach().cpu().numpy()
    if not np.issubdtype(b.dtype, np.floating):
        b = b.astype(np.float32)
    order = np.argsort(-scores.detach().cpu().numpy(), kind="stable")
    x1, y1, x2, y2 = b[order].T
    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    group = None if idxs is None else idxs.detach().cpu().numpy()[order]

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
    return torch.as_tensor(order[kept], dtype=torch.int64, device=boxes.device)
