"""Any identity-folder dataset (root/<identity>/<image>) through the full pipeline: all genuine
pairs and all (or a stated random sample of) impostor pairs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from faceunlock.evaluation.faceset import embed_images, no_face_report, stage_times
from faceunlock.evaluation.metrics import all_pair_distances, at_levels, summarise

IMAGE_GLOB = ("*.jpg", "*.jpeg", "*.png")


def identity_images(root: Path) -> list[str]:
    """Relative paths root/<identity>/<image>, sorted."""
    names = [p.relative_to(root).as_posix() for pat in IMAGE_GLOB for p in root.glob(f"*/{pat}")]
    if not names:
        raise ValueError(f"no images found as {root}/<identity>/<image>")
    return sorted(names)


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
