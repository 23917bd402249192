"""Write a model card (models/<name>.json format) for weights fine-tuned by `faceunlock train`.

Thresholds are calibrated from an `faceunlock eval lfw --json` run over all cross-identity LFW pairs
(flip-averaged, as the card says): the largest threshold with FAR <= 1e-6 (strict), 1e-5 (balanced)
and 1e-4 (fast), rounded down to 4 decimals, as for the shipped card.

    python scripts/model_card.py --name NAME --weights W.pt --view2 v2.json [--view2-no-flip v2nf.json]
        [--view1 v1.json] [--train-log W.jsonl] --out-dir DIR
    python scripts/model_card.py --recalibrate NAME --view2 v2.json --out-dir DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from datetime import date
from pathlib import Path

from faceunlock.paths import package_data

LEVELS = {"strict": "1e-6", "balanced": "1e-5", "fast": "1e-4"}


def floor4(x: float) -> float:
    return math.floor(x * 1e4) / 1e4


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lfw_sections(args: argparse.Namespace) -> dict:
    """The card's thresholds, their calibration and the LFW metrics, from the eval lfw JSON files."""
    v2 = json.loads(Path(args.view2).read_text())
    full = v2["all_pairs"]
    thresholds = {level: floor4(full["threshold_at_far"][far]) for level, far in LEVELS.items()}
    repo_models = package_data("models").resolve()
    env = "" if Path(args.out_dir).resolve() == repo_models else f"FACEUNLOCK_MODELS={args.out_dir} "
    metrics = {
        "lfw_view2_accuracy": {
            "mean": round(v2["accuracy"], 4),
            "std": round(v2["accuracy_std"], 4),
            "flip_average": v2.get("flip", True),
        },
        "lfw_view2_auc": round(v2["auc"], 5),
        "lfw_view2_eer": round(v2["eer"], 5),
        "lfw_all_pairs": {
            "genuine": full["pairs"]["genuine"],
            "impostor": full["pairs"]["impostor"],
            "auc": round(full["auc"], 5),
            "eer": round(full["eer"], 5),
            "tar_at_far": {k: round(v, 5) for k, v in full["tar_at_far"].items()},
        },
        "no_face_images": v2["no_face"]["count"],
        "command": f"{env}faceunlock eval lfw --model {args.name} --root ../shared/data/lfw/lfw-deepfunneled "
        "--pairs ../shared/data/lfw/pairs.txt --cache cache/ [--no-flip]",
        "measured": f"{date.today().isoformat()}, 1 CPU thread",
    }
    if args.view2_no_flip:
        nf = json.loads(Path(args.view2_no_flip).read_text())
        metrics["lfw_view2_accuracy_no_flip"] = {
            "mean": round(nf["accuracy"], 4),
            "std": round(nf["accuracy_std"], 4),
        }
    if args.view1:
        v1 = json.loads(Path(args.view1).read_text())
        metrics["lfw_view1_accuracy"] = {
            "accuracy": round(v1["accuracy"], 4),
            "threshold": round(v1["threshold"], 4),
            "protocol": "threshold chosen on pairsDevTrain, accuracy on pairsDevTest",
            "flip_average": v1.get("flip", True),
            "command": f"{env}faceunlock eval lfw --model {args.name} "
            "--root ../shared/data/lfw/lfw-deepfunneled --pairs ../shared/data/lfw/pairsDevTest.txt "
            "--threshold-pairs ../shared/data/lfw/pairsDevTrain.txt --no-all-pairs --cache cache/",
        }
    return {
        "thresholds": thresholds,
        "thresholds_calibration": {
            "method": "largest distance threshold whose false accept rate on all cross-identity pairs of "
            "LFW is at most the target; rounded down to 4 decimals",
            "targets": {level: f"FAR <= {far}" for level, far in LEVELS.items()},
            "command": metrics["command"].replace(" [--no-flip]", " --json lfw.json"),
            "tar_on_lfw_photos": {level: round(full["tar_at_far"][far], 5) for level, far in LEVELS.items()},
        },
        "metrics": metrics,
    }


def card(args: argparse.Namespace) -> dict:
    weights = Path(args.weights)
    training = {"data": "celeba-train (200 identities, 4,161 photos), through MTCNN + alignment"}
    if args.train_command:
        training["command"] = args.train_command
    if args.train_log:
        log = [json.loads(line) for line in Path(args.train_log).read_text().splitlines()]
        start = next(r for r in log if r["event"] == "start")
        epochs = [r for r in log if r["event"] == "epoch" and r["epoch"] > 0]
        cfg = start["config"]
        training.update(
            recipe={k: cfg[k] for k in ("init", "loss", "p", "k", "optimizer", "lr", "schedule", "margin")}
            | {k: cfg[k] for k in ("squared", "soft_margin", "freeze", "augment", "seed", "epochs")},
            images=start["images"],
            identities=start["identities"],
            selected_epoch=args.epoch,
            selection="the trained epoch with the best LFW View 1 accuracy in the run's log (no flip; "
            "threshold chosen on pairsDevTrain, accuracy on pairsDevTest)",
            seconds_per_epoch=[r["train_s"] for r in epochs],
        )
    return {
        "name": args.name,
        "architecture": "dlib face-recognition ResNet (29 conv layers, 5.6M parameters), PyTorch port "
        "in faceunlock/vision/embed.py, fine-tuned by faceunlock train",
        "weights": {"file": weights.name, "sha256": sha256(weights), "licence": "the project's own"},
        "input": {
            "size": [150, 150],
            "channels": "RGB",
            "normalisation": "(pixel - mean_c) / 256, means stored in the weights (buffer 'means')",
            "alignment": "similarity transform of MTCNN's 5 landmarks to faceunlock.vision.align.TEMPLATE",
            "flip_average": True,
        },
        "output": {"dim": 128, "distance": "euclidean", "normalised": False},
        **lfw_sections(args),
        "training": training,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", help="the new card's name")
    p.add_argument("--weights", help="the new card's weights")
    p.add_argument(
        "--recalibrate",
        metavar="NAME",
        help="instead of a new card, redo the thresholds and LFW metrics of --out-dir/NAME.json (keeping "
        "the rest; its attempt section is dropped: redo it with scripts/attempt_card.py --write)",
    )
    p.add_argument("--view2", required=True, help="eval lfw --json output: View 2, all pairs, flip-averaged")
    p.add_argument("--view2-no-flip", help="the same without flip averaging")
    p.add_argument("--view1", help="eval lfw --json output on pairsDevTest with --threshold-pairs")
    p.add_argument("--train-log", help="the training run's .jsonl log")
    p.add_argument("--epoch", type=int, help="the epoch selected on View 1")
    p.add_argument("--train-command", help="the faceunlock train command that made the weights")
    p.add_argument("--out-dir", required=True)
    args = p.parse_args()
    if args.recalibrate:
        args.name = args.recalibrate
        out = Path(args.out_dir) / f"{args.name}.json"
        raw = {k: v for k, v in json.loads(out.read_text()).items() if k != "attempt"}
        written = {**raw, **lfw_sections(args)}
    elif args.name and args.weights:
        out = Path(args.out_dir) / f"{args.name}.json"
        written = card(args)
    else:
        p.error("give --name and --weights, or --recalibrate NAME")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(written, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
