"""Verification metrics from genuine and impostor distances: ROC AUC, EER, TAR at FAR, thresholds.

A pair is accepted when its distance is strictly below the threshold. FAR is
the fraction of impostor pairs accepted, TAR the fraction of genuine pairs
accepted, FRR = 1 - TAR.
"""

from __future__ import annotations

import numpy as np

FAR_TARGETS = {"1e-3": 1e-3, "1e-4": 1e-4, "1e-5": 1e-5, "1e-6": 1e-6}


def as_sorted(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64).ravel()
    if d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError("distances must be a non-empty array of finite values")
    return np.sort(d)


def rates(genuine_sorted: np.ndarray, impostor_sorted: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FAR, FRR) at a threshold, from sorted distances."""
    far = np.searchsorted(impostor_sorted, threshold, side="left") / impostor_sorted.size
    tar = np.searchsorted(genuine_sorted, threshold, side="left") / genuine_sorted.size
    return float(far), float(1.0 - tar)


def threshold_at_far(impostor_sorted: np.ndarray, target: float) -> float:
    """The largest threshold whose observed FAR is at most target.

    With fewer than 1/target impostor pairs this is the smallest impostor
    distance (no false accept observed): the estimate is then only as fine as
    1/len(impostor), which summarise() reports as far_resolution.
    """
    n = impostor_sorted.size
    allowed = int(np.floor(target * n + 1e-9))
    return float(impostor_sorted[allowed]) if allowed < n else float(impostor_sorted[-1]) + 1e-9


def roc_auc(genuine_sorted: np.ndarray, impostor_sorted: np.ndarray) -> float:
    """P(genuine distance < impostor distance), ties counted half (Mann-Whitney)."""
    below = np.searchsorted(genuine_sorted, impostor_sorted, side="left").astype(np.float64)
    at_or_below = np.searchsorted(genuine_sorted, impostor_sorted, side="right").astype(np.float64)
    wins = below.sum() + 0.5 * (at_or_below - below).sum()
    return float(wins / (genuine_sorted.size * impostor_sorted.size))


def equal_error_rate(genuine_sorted: np.ndarray, impostor_sorted: np.ndarray) -> tuple[float, float]:
    """(EER, threshold) where FAR and FRR cross, searched over all observed distances."""
    candidates = np.unique(np.concatenate([genuine_sorted, impostor_sorted]))
    far = np.searchsorted(impostor_sorted, candidates, side="left") / impostor_sorted.size
    frr = 1 - np.searchsorted(genuine_sorted, candidates, side="left") / genuine_sorted.size
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2), float(candidates[i])


def roc_curve(genuine_sorted: np.ndarray, impostor_sorted: np.ndarray, points: int = 2000):
    """(FAR, TAR) arrays over thresholds spread across the impostor quantiles, for plotting."""
    lo = min(genuine_sorted[0], impostor_sorted[0])
    hi = max(genuine_sorted[-1], impostor_sorted[-1])
    quantiles = np.quantile(impostor_sorted, np.logspace(-7, 0, points).clip(0, 1))
    thresholds = np.unique(np.concatenate([quantiles, np.linspace(lo, hi, points)]))
    far = np.searchsorted(impostor_sorted, thresholds, side="left") / impostor_sorted.size
    tar = np.searchsorted(genuine_sorted, thresholds, side="left") / genuine_sorted.size
    return far, tar


def summarise(genuine: np.ndarray, impostor: np.ndarray, targets: dict[str, float] = FAR_TARGETS) -> dict:
    """AUC, EER and TAR at each measurable FAR target, with the pair counts."""
    g, i = as_sorted(genuine), as_sorted(impostor)
    eer, eer_threshold = equal_error_rate(g, i)
    tar_at_far, thresholds = {}, {}
    for name, target in targets.items():
        t = threshold_at_far(i, target)
        far, frr = rates(g, i, t)
        tar_at_far[name] = 1.0 - frr
        thresholds[name] = t
    return {
        "auc": roc_auc(g, i),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "tar_at_far": tar_at_far,
        "threshold_at_far": thresholds,
        "pairs": {"genuine": int(g.size), "impostor": int(i.size)},
        "far_resolution": 1.0 / i.size,
    }


def all_pair_distances(embeddings: np.ndarray, labels: np.ndarray, block: int = 2048):
    """Genuine and impostor distances over every unordered pair of different images."""
    e = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels)
    sq = (e.astype(np.float64) ** 2).sum(1)
    genuine, impostor = [], []
    n = len(e)
    for start in range(0, n, block):
        stop = min(start + block, n)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (e[start:stop] @ e.T).astype(np.float64)
        d = np.sqrt(np.clip(d2, 0, None)).astype(np.float32)
        rows = np.arange(start, stop)[:, None]
        upper = np.arange(n)[None, :] > rows
        same = labels[start:stop, None] == labels[None, :]
        genuine.append(d[upper & same])
        impostor.append(d[upper & ~same])
    return np.concatenate(genuine), np.concatenate(impostor)


def at_levels(genuine: np.ndarray, impostor: np.ndarray, thresholds: dict[str, float]) -> dict:
    """FAR and FRR at each named threshold (the model card's security levels)."""
    g, i = as_sorted(genuine), as_sorted(impostor)
    out = {}
    for level, t in thresholds.items():
        far, frr = rates(g, i, t)
        out[level] = {"threshold": t, "far": far, "frr": frr}
    return out
