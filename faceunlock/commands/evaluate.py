"""`faceunlock eval lfw`: the LFW pairs protocol through the full pipeline (detect, align, embed)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from faceunlock.model import DEFAULT_MODEL, load_card
from faceunlock.training.faceset import detect_all, embed_all
from faceunlock.training.lfw import parse_pairs, ten_fold_accuracy


def median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 2) if values else None


def run_lfw(args: argparse.Namespace) -> dict:
    from faceunlock.vision.detect import Detector
    from faceunlock.vision.embed import Embedder

    torch.set_num_threads(args.threads)
    root = Path(args.root)
    if not root.is_dir():
        raise ValueError(f"LFW root is not a folder: {root}")
    pairs = parse_pairs(Path(args.pairs))
    if args.folds:
        wanted = {f - 1 for f in args.folds}
        pairs = [p for p in pairs if p.fold in wanted]
        if not pairs:
            raise ValueError(f"no pairs in folds {args.folds}")
    names = sorted({p.a for p in pairs} | {p.b for p in pairs})
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise ValueError(f"{len(missing)} images named in {args.pairs} are missing under {root}, e.g. {missing[0]}")
    card = load_card(args.model or DEFAULT_MODEL)
    flip = card.flip if args.flip is None else args.flip
    started = time.perf_counter()
    detector = Detector(min_face_size=20, threads=args.threads)
    marks = detect_all(root, names, detector, pick="central", cache_dir=args.cache)
    embedder = Embedder(path=card.weights, flip=flip, threads=args.threads)
    emb = embed_all(root, marks, embedder)
    index = {n: i for i, n in enumerate(names)}
    e = emb["embeddings"]
    a = np.array([index[p.a] for p in pairs])
    b = np.array([index[p.b] for p in pairs])
    distances = np.linalg.norm(e[a] - e[b], axis=1)
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    result = ten_fold_accuracy(distances, same, folds) if len(set(folds)) > 1 else {}
    result.update(
        {
            "benchmark": "lfw",
            "pairs_file": str(args.pairs),
            "model": card.name,
            "flip": flip,
            "pairs": {"genuine": int(same.sum()), "impostor": int((~same).sum())},
            "images": len(names),
            "no_face": {
                "count": len(marks.missing),
                "images": marks.missing,
                "handling": "aligned with the median landmarks of the detected images (LFW faces are centred)",
            },
            "stage_ms_median": {
                "decode": median(marks.decode_ms),
                "detect": median(marks.detect_ms),
                "align": median(emb["align_ms"]),
                "embed": median(emb["embed_ms"]),
            },
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    return result


def report(result: dict) -> None:
    if "accuracy" in result:
        print(
            f"LFW accuracy {100 * result['accuracy']:.2f}% ± {100 * result['accuracy_std']:.2f} "
            f"(10-fold, threshold chosen on the other 9 folds)"
        )
    p = result["pairs"]
    print(f"pairs: {p['genuine']} genuine, {p['impostor']} impostor; images: {result['images']}")
    nf = result["no_face"]
    print(f"no face detected: {nf['count']} image(s); {nf['handling']}")
    for name in nf["images"][:10]:
        print(f"  {name}")
    stages = ", ".join(
        f"{k} {'cached' if v is None else f'{v} ms'}" for k, v in result["stage_ms_median"].items()
    )
    print(f"median per-stage time: {stages}")


def run(args: argparse.Namespace) -> int:
    result = run_lfw(args)
    report(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    return 0
