"""Benchmarks through the full pipeline: LFW (10-fold View 2 plus all cross-identity pairs) and any
identity-folder dataset, with embeddings cached on disk so repeated runs skip detection and embedding."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from faceunlock.camera import IMAGE_SUFFIXES
from faceunlock.training.faceset import Landmarks, cache_key, detect_all, embed_all
from faceunlock.training.lfw import best_threshold, parse_pairs, ten_fold_accuracy
from faceunlock.training.metrics import all_pair_distances, as_sorted, rates, summarise
from faceunlock.vision.align import TEMPLATE


def identity_images(root: Path) -> list[str]:
    """Relative paths root/<identity>/<image>, sorted; images are what the camera reads (IMAGE_SUFFIXES)."""
    names = [
        p.relative_to(root).as_posix()
        for p in root.glob("*/*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ]
    if not names:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(f"no images found as {root}/<identity>/<image> ({suffixes})")
    return sorted(names)


def embed_images(
    root: Path,
    names: list[str],
    embedder,
    detector,
    pick: str,
    cache_dir: Path | None,
    progress: bool = True,
) -> tuple[np.ndarray, Landmarks, dict]:
    """Embeddings of images through detect → align → embed, reusing cached landmarks and embeddings."""
    marks = detect_all(root, names, detector, pick=pick, cache_dir=cache_dir, progress=progress)
    key = hashlib.sha256(
        (embedder.fingerprint + str(embedder.flip) + cache_key(detector, pick)).encode() + TEMPLATE.tobytes()
    ).hexdigest()[:16]
    cached: dict[str, np.ndarray] = {}
    cache_file = Path(cache_dir) / f"embeddings-{key}.npz" if cache_dir else None
    if cache_file and cache_file.exists():
        with np.load(cache_file) as z:
            cached = dict(zip(z["names"].tolist(), z["embeddings"], strict=True))
    todo = [i for i, n in enumerate(names) if n not in cached]
    out = np.zeros((len(names), 128), np.float32)
    timings: dict = {"align_ms": [], "embed_ms": []}
    if todo:
        sub = Landmarks([names[i] for i in todo], marks.points[todo], marks.detected[todo], marks.sizes[todo])
        result = embed_all(root, sub, embedder, progress=progress)
        for j, i in enumerate(todo):
            cached[names[i]] = result["embeddings"][j]
        timings = {"align_ms": result["align_ms"], "embed_ms": result["embed_ms"]}
        if cache_file:
            keys = sorted(cached)
            tmp = cache_file.with_suffix(".tmp.npz")
            np.savez(tmp, names=np.array(keys), embeddings=np.stack([cached[k] for k in keys]))
            tmp.replace(cache_file)
    for i, n in enumerate(names):
        out[i] = cached[n]
    return out, marks, timings


def median_ms(values: list[float]) -> float | None:
    return round(float(np.median(values)), 2) if values else None


def stage_times(marks: Landmarks, timings: dict) -> dict:
    return {
        "decode": median_ms(marks.decode_ms),
        "detect": median_ms(marks.detect_ms),
        "align": median_ms(timings["align_ms"]),
        "embed": median_ms(timings["embed_ms"]),
    }


def no_face_report(marks: Landmarks) -> dict:
    return {
        "count": len(marks.missing),
        "images": marks.missing,
        "handling": "aligned with the median landmarks of the detected images and kept in the protocol",
    }


def at_levels(genuine: np.ndarray, impostor: np.ndarray, thresholds: dict[str, float]) -> dict:
    g, i = as_sorted(genuine), as_sorted(impostor)
    out = {}
    for level, t in thresholds.items():
        far, frr = rates(g, i, t)
        out[level] = {"threshold": t, "far": far, "frr": frr}
    return out


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
    a = np.array([index[p.a] for p in pairs])
    b = np.array([index[p.b] for p in pairs])
    d = np.linalg.norm(emb[a] - emb[b], axis=1)
    same = np.array([p.same for p in pairs])
    if tpairs:
        ta = np.array([index[p.a] for p in tpairs])
        tb = np.array([index[p.b] for p in tpairs])
        t = best_threshold(np.linalg.norm(emb[ta] - emb[tb], axis=1), np.array([p.same for p in tpairs]))
        result = {"accuracy": float(np.mean((d < t) == same)), "accuracy_std": 0.0, "threshold": t}
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


def evaluate_folder(
    root: Path,
    embedder,
    detector,
    cache_dir: Path | None,
    levels: dict[str, float],
    max_impostor: int = 50_000_000,
    seed: int = 0,
) -> tuple[dict, dict]:
    """All genuine pairs and all (or a stated random sample of) impostor pairs of an identity folder."""
    started = time.perf_counter()
    names = identity_images(root)
    emb, marks, timings = embed_images(root, names, embedder, detector, "largest", cache_dir)
    labels = np.array([n.split("/")[0] for n in names])
    genuine, impostor = all_pair_distances(emb, labels)
    total_impostor = int(impostor.size)
    if impostor.size > max_impostor:
        rng = np.random.default_rng(seed)
        impostor = impostor[rng.choice(impostor.size, max_impostor, replace=False)]
    result = summarise(genuine, impostor)
    result.update(
        {
            "benchmark": "folder",
            "root": str(root),
            "identities": int(len(set(labels))),
            "images": len(names),
            "impostor_pairs_total": total_impostor,
            "impostor_sampled": bool(impostor.size < total_impostor),
            "levels": at_levels(genuine, impostor, levels),
            "no_face": no_face_report(marks),
            "stage_ms_median": stage_times(marks, timings),
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    return result, {"genuine": genuine, "impostor": impostor}


def write_plots(
    raw: dict, out_dir: Path, title: str, thresholds: dict[str, float] | None = None
) -> list[Path]:
    """ROC curve (log FAR) and genuine/impostor distance histograms as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from faceunlock.training.metrics import roc_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    g, i = as_sorted(raw["genuine"]), as_sorted(raw["impostor"])
    far, tar = roc_curve(g, i)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    keep = far > 0
    ax.semilogx(far[keep], tar[keep])
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"ROC: {title} ({g.size:,} genuine, {i.size:,} impostor pairs)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    roc_path = out_dir / "roc.png"
    fig.tight_layout()
    fig.savefig(roc_path, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    bins = np.linspace(0, max(g[-1], i[-1]), 120)
    ax.hist(g, bins=bins, density=True, alpha=0.6, label="genuine")
    ax.hist(i, bins=bins, density=True, alpha=0.6, label="impostor")
    for level, t in (thresholds or {}).items():
        ax.axvline(t, linestyle="--", linewidth=1, color="k")
        ax.text(t, ax.get_ylim()[1] * 0.9, f" {level}", fontsize=8, rotation=90)
    ax.set_xlabel("euclidean distance")
    ax.set_ylabel("density")
    ax.set_title(f"Distances: {title}", fontsize=9)
    ax.legend()
    hist_path = out_dir / "hist.png"
    fig.tight_layout()
    fig.savefig(hist_path, dpi=110)
    plt.close(fig)
    return [roc_path, hist_path]
