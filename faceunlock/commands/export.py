"""`faceunlock export`: write the ONNX files of the detector and the embedder from the torch models."""

from __future__ import annotations

import argparse
from pathlib import Path

from faceunlock.model import FLOAT_MODEL
from faceunlock.paths import models_dir


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("export", help="write the ONNX files the run time loads, from the torch models")
    p.add_argument(
        "--model",
        default=FLOAT_MODEL,
        help=f"float embedder card with torch weights (default {FLOAT_MODEL})",
    )
    p.add_argument("--out", help="folder to write into (default: the model cards' folder)")
    p.add_argument(
        "--cards",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record the files' sha256 in the cards (default: when writing into the cards' folder)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceunlock.training.export import export_all

    cards = models_dir()
    out = Path(args.out) if args.out else cards
    write_cards = args.cards if args.cards is not None else out.resolve() == cards.resolve()
    for name, (path, sha) in export_all(args.model, out, write_cards).items():
        print(f"{name}: {path} sha256 {sha}")
    if write_cards:
        print(f"recorded in {cards}/{args.model}.json and {cards}/mtcnn.json")
    return 0
