"""The LFW protocol: pairs files, image paths, and 10-fold accuracy with held-out thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Pair:
    """Two LFW images and whether they show the same person."""

    a: str
    b: str
    same: bool
    fold: int


def image_name(person: str, index: int) -> str:
    return f"{person}/{person}_{index:04d}.jpg"


def parse_pairs(path: Path) -> list[Pair]:
    """Read pairs.txt (header 'folds n') or a View 1 file (header 'n': one fold)."""
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"pairs file {path} is empty")
    header = lines[0]
    try:
        folds, per = (int(header[0]), int(header[1])) if len(header) == 2 else (1, int(header[0]))
    except ValueError:
        raise ValueError(f"pairs file {path} has a bad header: {' '.join(header)}") from None
    body = lines[1:]
    if len(body) != folds * 2 * per:
        raise ValueError(f"pairs file {path}: expected {folds * 2 * per} pairs, found {len(body)}")
    pairs = []
    for i, f in enumerate(body):
        fold = i // (2 * per)
        if len(f) == 3:
            pairs.append(Pair(image_name(f[0], int(f[1])), image_name(f[0], int(f[2])), True, fold))
        elif len(f) == 4:
            pairs.append(Pair(image_name(f[0], int(f[1])), image_name(f[2], int(f[3])), False, fold))
        else:
            raise ValueError(f"pairs file {path}: line {i + 2} has {len(f)} fields")
    return pairs


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The distance threshold that maximises accuracy on these pairs (midpoint between candidates)."""
    order = np.argsort(distances)
    d, s = distances[order], same[order]
    # Accuracy when accepting the first k pairs (k = 0..n): genuine accepted plus impostors rejected.
    genuine_accepted = np.concatenate([[0], np.cumsum(s)])
    impostor_rejected = (~s).sum() - np.concatenate([[0], np.cumsum(~s)])
    correct = genuine_accepted + impostor_rejected
    k = int(np.argmax(correct))
    if k == 0:
        return float(d[0]) - 1e-6
    if k == len(d):
        return float(d[-1]) + 1e-6
    return float((d[k - 1] + d[k]) / 2)


def ten_fold_accuracy(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """Per-fold accuracy with the threshold chosen on the other folds; mean and std."""
    accs, thresholds = [], []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        t = best_threshold(distances[train], same[train])
        accs.append(float(np.mean((distances[test] < t) == same[test])))
        thresholds.append(t)
    return {
        "accuracy": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "fold_accuracy": accs,
        "fold_thresholds": thresholds,
    }
