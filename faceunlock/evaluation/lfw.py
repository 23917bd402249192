"""LFW through the full pipeline: pairs files, 10-fold View 2 accuracy with held-out thresholds, and
TAR at FAR over all cross-identity pairs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceunlock.evaluation.faceset import embed_images, no_face_report, stage_times
from faceunlock.evaluation.folders import identity_images
from faceunlock.evaluation.metrics import all_pair_distances, at_levels, summarise


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


def pair_distances(
    emb: np.ndarray, index: dict[str, int], pairs: list[Pair]
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of each pair's embeddings (rows index[name] of emb), and whether it is genuine."""
    a = np.array([index[p.a] for p in pairs])
    b = np.array([index[p.b] for p in pairs])
    return np.linalg.norm(emb[a] - emb[b], axis=1), np.array([p.same for p in pairs])


def accuracy(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs decided right: genuine below the threshold, impostor at or above it."""
    return float(np.mean((distances < threshold) == same))


def ten_fold_accuracy(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """Per-fold accuracy with the threshold chosen on the other folds; mean and std."""
    accs, thresholds = [], []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        t = best_threshold(distances[train], same[train])
        accs.append(accuracy(distances[test], same[test], t))
        thresholds.append(t)
    return {
        "accuracy": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "fold_accuracy": accs,
        "fold_thresholds": thresholds,
    }


def evaluate_lfw(
    root: Path,
    pairs_file: Path,
    embedder,
    detector,
    cache_dir: Path | None,
    folds: list[int] | None = None,
    all_pairs: bool = True,
    levels: dict[str, float] | None = None,
    threshold_pairs: Path | None = None,
) -> tuple[dict, dict]:
    """LFW results (JSON-ready) and the raw distance arrays for plotting.

    With ``threshold_pairs`` (View 1: pairsDevTrain.txt) the threshold is chosen on those pairs and
    the accuracy measured on ``pairs_file`` (pairsDevTest.txt) instead of 10-fold."""
    started = time.perf_counter()
    pairs = parse_pairs(pairs_file)
    tpairs = parse_pairs(threshold_pairs) if threshold_pairs else []
    if not tpairs and len({p.fold for p in pairs}) < 2:
        raise ValueError(f"{pairs_file} has one fold: choose the threshold on other pairs (threshold_pairs)")
    if folds:
        pairs = [p for p in pairs if p.fold + 1 in set(folds)]
        if not pairs:
            raise ValueError(f"no pairs in folds {folds}")
    pair_names = {p.a for p in pairs + tpairs} | {p.b for p in pairs + tpairs}
    missing = sorted(n for n in pair_names if not (root / n).is_file())
    if missing:
        raise ValueError(
            f"{len(missing)} images named in {pairs_file} are missing under {root}, e.g. {missing[0]}"
        )
    names = identity_images(root) if all_pairs else sorted(pair_names)
    emb, marks, timings = embed_images(root, names, embedder, detector, "central", cache_dir)
    index = {n: i for i, n in enumerate(names)}
    d, same = pair_distances(emb, index, pairs)
    if tpairs:
        t = best_threshold(*pair_distances(emb, index, tpairs))
        result = {"accuracy": accuracy(d, same, t), "accuracy_std": 0.0, "threshold": t}
        result["threshold_pairs_file"] = str(threshold_pairs)
    else:
        result = ten_fold_accuracy(d, same, np.array([p.fold for p in pairs]))
    view2 = summarise(d[same], d[~same], {"1e-3": 1e-3, "1e-4": 1e-4})
    result.update(view2)
    raw = {"genuine": d[same], "impostor": d[~same]}
    if all_pairs:
        labels = np.array([n.split("/")[0] for n in names])
        genuine, impostor = all_pair_distances(emb, labels)
        full = summarise(genuine, impostor)
        result["all_pairs"] = full
        for k in ("1e-5", "1e-6"):
            result["tar_at_far"][k] = full["tar_at_far"][k]
        if levels:
            result["all_pairs"]["levels"] = at_levels(genuine, impostor, levels)
        raw = {"genuine": genuine, "impostor": impostor}
    result.update(
        {
            "benchmark": "lfw",
            "pairs_file": str(pairs_file),
            "images": len(names),
            "no_face": no_face_report(marks),
            "stage_ms_median": stage_times(marks, timings),
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    return result, raw
