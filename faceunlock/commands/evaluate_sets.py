"""`faceunlock eval sets`: attempt-level error rates of every fusion rule on one set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceunlock.evaluation.metrics import FAR_TARGETS
from faceunlock.model import default_model, load_card

FALLBACK_RULE = "centroid"


def pct(x: float) -> str:
    return f"{100 * x:.3f}%"


def print_table(result: dict, far_resolution: float) -> None:
    """AUC, EER and TAR at each FAR of every rule; '*' marks a FAR below one impostor attempt."""
    print(f"{'rule':<18} {'AUC':>8} {'EER':>8} " + " ".join(f"{'TAR@' + k:>11}" for k in FAR_TARGETS))
    for rule, r in result.items():
        marks = {k: "*" if FAR_TARGETS[k] < far_resolution else " " for k in FAR_TARGETS}
        tars = " ".join(f"{pct(v) + marks[k]:>11}" for k, v in r["tar_at_far"].items())
        print(f"{rule:<18} {r['auc']:>8.5f} {pct(r['eer']):>8} {tars}")
    print(
        f"* FAR target below {far_resolution:.1e} (one impostor attempt): the TAR with no impostor accepted"
    )


def run_sets(args: argparse.Namespace) -> int:
    from faceunlock.evaluation.plots import write_rule_rocs
    from faceunlock.evaluation.sets import (
        SAME_PERSON,
        attempt_result,
        evaluate_sets,
        load_set,
        thresholds_at,
        video_frames,
    )
    from faceunlock.networks import load_detector, load_embedder

    root = Path(args.root)
    if not root.is_dir():
        raise ValueError(f"dataset root is not a folder: {root}")
    card = load_card(args.model or default_model(args.backend))
    rule = args.rule or (card.attempt.rule if card.attempt else FALLBACK_RULE)
    flip = card.flip if args.flip is None else args.flip
    cache = Path(args.cache) if args.cache else None
    if args.kind == "video":
        frames = Path(args.frames) if args.frames else (cache / "frames" if cache else None)
        if frames is None:
            raise ValueError("--kind video needs --frames or --cache: a folder for the extracted frames")
        root = video_frames(root, frames, args.step)
    embedder = load_embedder(card, args.backend, args.threads, flip)
    detector = load_detector(min_face_size=20, backend=args.backend, threads=args.threads)
    pick = "central" if args.kind == "lfw" else "largest"
    faces = load_set(root, embedder, detector, pick, cache, args.min_images or args.enrol, args.split)
    same = set() if args.keep_duplicates else SAME_PERSON.get(Path(args.root).name, set())
    raw = evaluate_sets(faces, args.enrol, args.probe, args.seed, same_person=same)
    if rule not in raw["scores"]:
        raise ValueError(f"unknown rule {rule!r}")
    calibrated = card.attempt.thresholds.get(rule) if card.attempt else None
    results = {}
    for name, (genuine, impostor) in raw["scores"].items():
        levels = (card.attempt.thresholds.get(name) if card.attempt else None) or thresholds_at(impostor)
        results[name] = attempt_result(genuine, impostor, levels)
    chosen = results[rule]
    counts = chosen["attempts"]
    print(
        f"{raw['identities']} identities ({raw['identities_with_genuine']} with genuine attempts), "
        f"{raw['images']} images, split {args.split}; enrol K={args.enrol}, probe M={args.probe}, "
        f"seed {args.seed}"
    )
    print(
        "sampling: each identity's images shuffled once; the first K enrol; genuine attempts are the rest "
        "in groups of M; impostor attempts are all its images in groups of M, against every other enrolment"
    )
    print(f"attempts: {counts['genuine']:,} genuine, {counts['impostor']:,} impostor")
    for pair in sorted(sorted(p) for p in same):
        print(f"not counted as impostors of each other (one person, two labels): {' and '.join(pair)}")
    print_table(results, 1.0 / counts["impostor"])
    source = "the model card" if calibrated else "thresholds calibrated on this very set (in-sample)"
    print(f"rule {rule}: levels from {source}")
    for level, r in chosen["levels"].items():
        print(f"  level {level:<8} threshold {r['threshold']:.4f}: FAR {pct(r['far'])}, FRR {pct(r['frr'])}")
    nf = faces.no_face
    print(f"no face detected: {nf['count']} image(s); low quality: {nf['low_quality']}; {nf['handling']}")
    if args.json_out:
        out = {"attempt": chosen, "rule": rule, "enrol": args.enrol, "probe": args.probe}
        Path(args.json_out).write_text(json.dumps(out, indent=1) + "\n")
    if args.plots:
        title = f"{args.kind} {Path(args.root).name} ({args.split}), K={args.enrol}, M={args.probe}"
        path = write_rule_rocs(raw["scores"], Path(args.plots), title)
        print(f"wrote {path}")
    return 0
