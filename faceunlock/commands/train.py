"""`faceunlock train`: triplet-loss training or fine-tuning of the face ResNet on identity folders."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub) -> None:
    """Add the train parser."""
    p = sub.add_parser(
        "train",
        help="train or fine-tune the embedding network with a triplet loss",
        description="Train on DIR/<identity>/<image> through the project's detect -> align pipeline, "
        "validating on LFW View 1 after each epoch. Writes OUT (last weights), OUT-stem.best.pt "
        "(best on validation), OUT-stem.ckpt (for --resume) and OUT-stem.jsonl (the log).",
    )
    p.add_argument("--data", required=True, help="folder of identity folders")
    p.add_argument("--out", required=True, help="weights file to write (.pt)")
    p.add_argument("--init", default="port", help="port (dlib's weights), scratch, or a .pt/.dat file")
    p.add_argument("--loss", choices=("batch-all", "batch-hard"), default="batch-hard")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--p", "-P", dest="p", type=int, default=16, help="identities per batch")
    p.add_argument("--k", "-K", dest="k", type=int, default=4, help="images per identity per batch")
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: images / (P*K))")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine", help="cosine: to lr/10")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--margin", type=float, default=0.2, help="triplet margin, in distance units")
    p.add_argument("--squared", action="store_true", help="squared Euclidean distances in the loss")
    p.add_argument("--soft-margin", action="store_true", help="batch-hard: softplus instead of hinge")
    p.add_argument("--freeze", type=int, default=0, help="freeze the first N of 15 stages (stem=1)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT-stem.ckpt")
    p.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps")
    p.add_argument("--keep-epochs", action="store_true", help="also keep OUT-stem.eN.pt after each epoch")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--cache", help="cache folder for landmarks and chips (default: OUT's folder/cache)")
    p.add_argument("--min-face-size", type=float, default=20, help="detector minimum face size")
    v = p.add_argument_group("validation (LFW View 1: threshold on pairsDevTrain, accuracy on pairsDevTest)")
    v.add_argument("--val-root", help="lfw-deepfunneled folder; validation is skipped without it")
    v.add_argument("--val-pairs", help="pairs to score (default: pairsDevTest.txt beside --val-root)")
    v.add_argument(
        "--val-threshold-pairs", help="pairs to pick the threshold on (default: pairsDevTrain.txt beside it)"
    )
    v.add_argument("--val-flip", action="store_true", help="flip-average in validation")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(run=run)


def default_pairs(given: str | None, root: Path, name: str) -> Path | None:
    if given:
        return Path(given)
    guess = root.parent / name
    return guess if guess.is_file() else None


def run(args: argparse.Namespace) -> int:
    from faceunlock.training.train import PairValidator, TrainConfig, train
    from faceunlock.vision.detect import Detector
    from faceunlock.vision.threads import set_threads

    set_threads(args.threads)
    if not Path(args.data).is_dir():
        raise ValueError(f"--data is not a folder: {args.data}")
    cfg = TrainConfig(
        data=Path(args.data),
        out=Path(args.out),
        init=args.init,
        loss=args.loss,
        epochs=args.epochs,
        p=args.p,
        k=args.k,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        margin=args.margin,
        squared=args.squared,
        soft_margin=args.soft_margin,
        freeze=args.freeze,
        augment=args.augment,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
        checkpoint_every=args.checkpoint_every,
        keep_epochs=args.keep_epochs,
        device=args.device,
        threads=args.threads,
        cache=Path(args.cache) if args.cache else None,
        min_face_size=args.min_face_size,
        resume=args.resume,
        progress=args.progress,
    )
    cache = cfg.cache or cfg.out.parent / "cache"
    validator = None
    if args.val_root:
        root = Path(args.val_root)
        test = default_pairs(args.val_pairs, root, "pairsDevTest.txt")
        if test is None:
            raise ValueError(f"--val-pairs not given and no pairsDevTest.txt beside {root}")
        thr = default_pairs(args.val_threshold_pairs, root, "pairsDevTrain.txt")
        cfg.val_root, cfg.val_pairs, cfg.val_threshold_pairs, cfg.val_flip = root, test, thr, args.val_flip
        if int(os.environ.get("RANK", 0)) == 0:  # under torchrun only rank 0 validates
            detector = Detector(min_face_size=20, threads=args.threads)
            validator = PairValidator(root, test, thr, detector, cache, args.val_flip, args.progress)
    result = train(cfg, validator)
    if int(os.environ.get("RANK", 0)) != 0:
        return 0  # under torchrun, rank 0 reports
    for key in ("epoch", "loss", "fraction_active", "train_s"):
        if key in result:
            print(f"{key}: {result[key]}")
    best = result.get("best")
    if best:
        print(
            f"best validation: epoch {best['epoch']}, accuracy {100 * best['accuracy']:.2f}%, "
            f"AUC {best['auc']:.5f} -> {result['paths']['best']}"
        )
    print(f"wrote {result['paths']['out']}; log {result['paths']['log']}")
    return 0
