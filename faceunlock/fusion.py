"""Fusion rules: one score for an attempt (a set of probe frames) against one enrolment (a set of anchors).

Every score is distance-like: lower means more alike, and an attempt matches when its score is
strictly below the rule's own attempt-level threshold (model card ``attempt``), never a per-pair one.

Rules:

- ``nearest-min``: each frame's distance to its nearest anchor, then the smallest (any frame matches);
- ``nearest-max``: the largest (every frame must match: the old consecutive-frames policy);
- ``nearest-mean``: the mean over frames;
- ``nearest-trimmed``: the mean after dropping the largest and the smallest fifth of the frames
  (at least one of each with three or more frames; with three, the median);
- ``centroid``: the distance between the anchors' mean and the frames' mean;
- ``nearest-wmean`` and ``centroid-weighted``: as ``nearest-mean`` and ``centroid`` with each frame
  weighted by its quality (``faceunlock.quality``).
"""

from __future__ import annotations

import numpy as np

RULES = (
    "nearest-min",
    "nearest-max",
    "nearest-mean",
    "nearest-trimmed",
    "centroid",
    "nearest-wmean",
    "centroid-weighted",
)
WEIGHTED = ("nearest-wmean", "centroid-weighted")
TRIM = 0.2


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"unknown fusion rule {rule!r}; known: {', '.join(RULES)}")
    return rule


def nearest(anchors: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Distance of each probe frame to its nearest anchor: probes (..., M, d) -> (..., M)."""
    a = np.asarray(anchors, np.float64)
    p = np.asarray(probes, np.float64)
    d2 = (p**2).sum(-1)[..., None] + (a**2).sum(-1) - 2.0 * p @ a.T
    return np.sqrt(np.clip(d2, 0.0, None)).min(-1)


def trimmed_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis after dropping the largest and smallest TRIM of the values."""
    m = values.shape[-1]
    cut = max(1, int(m * TRIM)) if m >= 3 else 0
    v = np.sort(values, axis=-1)
    return v[..., cut : m - cut].mean(-1)


def fuse_batch(
    rule: str, anchors: np.ndarray, probes: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Scores of A attempts against one enrolment: anchors (K, d), probes (A, M, d), weights (A, M)."""
    check_rule(rule)
    anchors = np.asarray(anchors, np.float64)
    probes = np.asarray(probes, np.float64)
    if anchors.ndim != 2 or len(anchors) == 0:
        raise ValueError("no enrolled anchors")
    if probes.ndim != 3 or probes.shape[1] == 0 or probes.shape[2] != anchors.shape[1]:
        raise ValueError(f"probes of shape {probes.shape} do not fit anchors of shape {anchors.shape}")
    if rule in WEIGHTED:
        if weights is None:
            raise ValueError(f"rule {rule} needs a quality weight per frame")
        w = np.asarray(weights, np.float64)
        if w.shape != probes.shape[:2] or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError("quality weights must be positive and finite, one per frame")
        w = w / w.sum(-1, keepdims=True)
    if rule.startswith("centroid"):
        frames = (probes * w[..., None]).sum(1) if rule in WEIGHTED else probes.mean(1)
        scores = np.linalg.norm(frames - anchors.mean(0), axis=-1)
    else:
        d = nearest(anchors, probes)
        if rule == "nearest-min":
            scores = d.min(-1)
        elif rule == "nearest-max":
            scores = d.max(-1)
        elif rule == "nearest-mean":
            scores = d.mean(-1)
        elif rule == "nearest-trimmed":
            scores = trimmed_mean(d)
        else:
            scores = (d * w).sum(-1)
    if not np.all(np.isfinite(scores)):
        raise ValueError("fused score is not finite")
    return scores


def fuse(rule: str, anchors: np.ndarray, frames: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The score of one attempt: frames (M, d) against anchors (K, d)."""
    w = None if weights is None else np.asarray(weights, np.float64)[None]
    return float(fuse_batch(rule, anchors, np.asarray(frames)[None], w)[0])
