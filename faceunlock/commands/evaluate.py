"""`faceunlock eval lfw|folder|sets|liveness|sessions`: accuracy and error rates through the full pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceunlock.model import default_model, load_card
from faceunlock.vision.backend import BACKENDS, DEFAULT_BACKEND


def register(sub) -> None:
    """Add the eval lfw and eval folder parsers."""
    p = sub.add_parser("eval", help="measure accuracy and error rates on a benchmark")
    esub = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    e = esub.add_parser("lfw", help="LFW: 10-fold View 2 protocol, plus all cross-identity pairs")
    e.add_argument("--root", required=True, help="folder of LFW person folders (lfw-deepfunneled)")
    e.add_argument("--pairs", required=True, help="pairs.txt (View 2) or a View 1 pairs file")
    e.add_argument("--folds", type=int, nargs="*", help="only these folds (1-based), for a quick check")
    e.add_argument(
        "--threshold-pairs",
        help="choose the threshold on these pairs instead of 10-fold (View 1: pairsDevTrain.txt)",
    )
    e.add_argument(
        "--all-pairs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure TAR at FAR 1e-5 and 1e-6 on every cross-identity pair of the images under --root",
    )
    f = esub.add_parser("folder", help="any root/<identity>/<image> dataset: all genuine and impostor pairs")
    f.add_argument("--root", required=True, help="folder of identity folders")
    f.add_argument("--min-face-size", type=int, default=20, help="detector minimum face size (pixels)")
    f.add_argument("--max-impostor", type=int, default=50_000_000, help="sample impostor pairs above this")
    s = esub.add_parser("sets", help="set-to-set attempts: K enrolled images against M probe images")
    s.add_argument("--root", required=True, help="identity folders, lfw-deepfunneled, or the video folder")
    s.add_argument("--kind", choices=("folder", "lfw", "video"), default="folder", help="what --root holds")
    s.add_argument("--split", choices=("calibrate", "report", "all"), default="all", help="identities to use")
    s.add_argument("--enrol", type=int, default=5, help="K: images enrolled per identity")
    s.add_argument("--probe", type=int, default=3, help="M: images per attempt")
    s.add_argument("--min-images", type=int, help="leave out identities with fewer images (default: K)")
    s.add_argument("--seed", type=int, default=0, help="seed of the enrolment and attempt draw")
    s.add_argument("--rule", help="the rule for --json and the levels (default: the model card's)")
    s.add_argument("--step", type=int, default=5, help="video: every step-th frame")
    s.add_argument("--frames", help="video: folder for the extracted frames (default: CACHE/frames)")
    s.add_argument(
        "--keep-duplicates", action="store_true", help="count known one-person label pairs as impostors too"
    )
    from faceunlock.commands import eval_liveness, eval_sessions

    eval_liveness.register(esub)
    eval_sessions.register(esub)
    for bench in (e, f, s):
        bench.add_argument("--json", dest="json_out", help="write the results to this JSON file")
        bench.add_argument("--plots", help="write roc.png and hist.png into this folder")
        bench.add_argument("--cache", help="folder for cached landmarks and embeddings")
        bench.add_argument("--model", default=None, help="model card name in models/")
        bench.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="flip-average")
        bench.add_argument("--threads", type=int, default=2)
        bench.add_argument(
            "--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="inference backend (default onnx)"
        )
        bench.set_defaults(run=run)


def fmt_rate(x: float) -> str:
    return f"{100 * x:.3f}%"


def report(result: dict) -> None:
    if "threshold_pairs_file" in result:
        print(
            f"LFW accuracy {100 * result['accuracy']:.2f}% (threshold {result['threshold']:.4f} chosen on "
            f"{Path(result['threshold_pairs_file']).name})"
        )
    elif "accuracy" in result:
        print(
            f"LFW accuracy {100 * result['accuracy']:.2f}% ± {100 * result['accuracy_std']:.2f} "
            f"(10-fold, threshold chosen on the other 9 folds)"
        )
    p = result["pairs"]
    print(f"pairs: {p['genuine']:,} genuine, {p['impostor']:,} impostor; images: {result['images']:,}")
    print(f"ROC AUC {result['auc']:.5f}, EER {fmt_rate(result['eer'])}")
    for k, v in result["tar_at_far"].items():
        print(f"TAR at FAR {k}: {fmt_rate(v)}")
    full = result.get("all_pairs")
    if full:
        fp = full["pairs"]
        print(
            f"all cross-identity pairs: {fp['genuine']:,} genuine, {fp['impostor']:,} impostor; "
            f"AUC {full['auc']:.5f}, EER {fmt_rate(full['eer'])}"
        )
        for k, v in full["tar_at_far"].items():
            print(f"  TAR at FAR {k}: {fmt_rate(v)} (threshold {full['threshold_at_far'][k]:.4f})")
    levels = result.get("levels") or (full or {}).get("levels") or {}
    for level, r in levels.items():
        far, frr = fmt_rate(r["far"]), fmt_rate(r["frr"])
        print(f"level {level:<8} threshold {r['threshold']:.4f}: FAR {far}, FRR {frr}")
    if result.get("impostor_sampled"):
        print(f"impostor pairs sampled: {p['impostor']:,} of {result['impostor_pairs_total']:,}")
    nf = result["no_face"]
    print(f"no face detected: {nf['count']} image(s); {nf['handling']}")
    for name in nf["images"][:10]:
        print(f"  {name}")
    stages = ", ".join(
        f"{k} {'cached' if v is None else f'{v} ms'}" for k, v in result["stage_ms_median"].items()
    )
    print(f"median per-stage time: {stages}")


def run(args: argparse.Namespace) -> int:
    if args.benchmark == "sets":
        from faceunlock.commands.evaluate_sets import run_sets

        return run_sets(args)
    from faceunlock.evaluation.folders import evaluate_folder
    from faceunlock.evaluation.lfw import evaluate_lfw
    from faceunlock.evaluation.plots import write_plots
    from faceunlock.networks import load_detector, load_embedder

    root = Path(args.root)
    if not root.is_dir():
        raise ValueError(f"dataset root is not a folder: {root}")
    card = load_card(args.model or default_model(args.backend))
    flip = card.flip if args.flip is None else args.flip
    embedder = load_embedder(card, args.backend, args.threads, flip)
    cache = Path(args.cache) if args.cache else None
    if args.benchmark == "lfw":
        detector = load_detector(min_face_size=20, backend=args.backend, threads=args.threads)
        result, raw = evaluate_lfw(
            root,
            Path(args.pairs),
            embedder,
            detector,
            cache,
            args.folds,
            args.all_pairs,
            card.thresholds,
            Path(args.threshold_pairs) if args.threshold_pairs else None,
        )
    else:
        detector = load_detector(args.min_face_size, backend=args.backend, threads=args.threads)
        result, raw = evaluate_folder(root, embedder, detector, cache, card.thresholds, args.max_impostor)
    result.update({"model": card.name, "flip": flip, "backend": args.backend})
    report(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    if args.plots:
        for path in write_plots(raw, Path(args.plots), f"{args.benchmark} {root.name}", card.thresholds):
            print(f"wrote {path}")
    return 0
