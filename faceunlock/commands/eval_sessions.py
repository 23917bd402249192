"""`faceunlock eval sessions`: the owner on another day: enrol from one session, scan in the later ones."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def register(esub) -> None:
    """Add the eval sessions parser to eval's subcommands."""
    e = esub.add_parser("sessions", help="per-scan FRR at each level across recording sessions")
    e.add_argument(
        "--root",
        default=str(Path(os.environ.get("FACEUNLOCK_DATA", "../shared/data")) / "nuaa-live"),
        help="folder of <person>/enrol and <person>/live-N frame folders (default: the shared nuaa-live)",
    )
    e.add_argument(
        "--learn",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="a learnable miss becomes a learned look before the next session (as after a password)",
    )
    e.add_argument("--config", help="TOML config file")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    e.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceunlock import config as config_mod
    from faceunlock.evaluation.sessions import evaluate_sessions
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline

    cfg = config_mod.load(args.config)
    card = load_card()
    pipeline = Pipeline(cfg, card, threads=args.threads)

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    result = evaluate_sessions(pipeline, cfg, card, Path(args.root), args.learn, progress)
    print(f"{result['people']} people, learning {'on' if args.learn else 'off'}; {result['root']}")
    for name, why in result["enrolment_refused"].items():
        print(f"  enrolment refused: {name}: {why}")
    for level, r in result["levels"].items():
        frr = "-" if r["frr"] is None else f"{100 * r['frr']:.1f}%"
        missed = f"; missed {', '.join(r['missed'])}" if r["missed"] else ""
        print(
            f"{level:<8} threshold {r['threshold']:.4f}: {r['matched']} of {r['scans']} scans match, "
            f"FRR {frr}{missed}"
        )
    for name, p in result["balanced_per_person"].items():
        print(f"  {name}: {p['matched']} of {p['scans']} (balanced)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    return 0
