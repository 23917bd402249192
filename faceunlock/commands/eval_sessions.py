"""`faceunlock eval sessions`: the owner on another day: enrol from one session, scan in the later ones;
with --lights, the shared live videos scanned under other light than they were enrolled in."""

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
    e.add_argument(
        "--lights",
        action="store_true",
        help="instead: the shared live videos (--data), enrolled as filmed, scanned dim, bright, under a "
        "warm lamp and at low contrast",
    )
    e.add_argument(
        "--data",
        default=os.environ.get("FACEUNLOCK_DATA", "../shared/data"),
        help="--lights: the shared data folder (its video/ clips)",
    )
    e.add_argument(
        "--split",
        choices=("report", "fit", "all"),
        default="report",
        help="--lights: the clips held out from the liveness fit (default), the fitting ones, or both",
    )
    e.add_argument("--starts", type=int, default=3, help="--lights: scans per clip and light")
    e.add_argument(
        "--frame-step",
        type=int,
        default=1,
        help="--lights: scan every Kth frame, as a slower camera would give (30 fps clips, K 2: 15 fps)",
    )
    e.add_argument(
        "--metering",
        action="store_true",
        help="--lights: a simulated camera films each light and is metered on the face ([camera] exposure "
        "= face), instead of the light applied to the frames as filmed",
    )
    e.add_argument(
        "--attacks",
        action="store_true",
        help="--lights: scan the replays instead (recorded, and MADE screen re-shoots), each against its "
        "person's own enrolment: every match is an attack let in",
    )
    e.add_argument("--config", help="TOML config file")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    e.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceunlock import config as config_mod
    from faceunlock.errors import UserError
    from faceunlock.evaluation.sessions import evaluate_sessions
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline

    stray = [name for name, on in (("--attacks", args.attacks), ("--metering", args.metering)) if on]
    if stray and not args.lights:
        raise UserError(f"{' and '.join(stray)} work on the light changes: add --lights")
    cfg = config_mod.load(args.config)
    card = load_card()
    pipeline = Pipeline(cfg, card, threads=args.threads)

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    if args.lights:
        return run_lights(args, pipeline, cfg, card, progress)
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


def rate(frr: float | None) -> str:
    return "-" if frr is None else f"{100 * frr:.1f}%"


def run_lights(args: argparse.Namespace, pipeline, cfg, card, progress) -> int:
    from faceunlock.evaluation.sessions import evaluate_lights
    from faceunlock.evaluation.shared_data import made_clips, recorded_clips

    role = None if args.split == "all" else args.split
    clips = [c for c in recorded_clips(Path(args.data), role) if c.live != args.attacks]
    if args.attacks:
        clips += [c for c in made_clips(Path(args.data), role) if c.label == "made-screen"]
    what = "replays" if args.attacks else "live clips"
    if not clips:
        raise ValueError(f"no {what} of the {args.split} split under {args.data}/video")
    result = evaluate_lights(
        pipeline,
        cfg,
        card,
        clips,
        starts=max(1, args.starts),
        progress=progress,
        step=args.frame_step,
        metering=args.metering,
    )
    every = f", one frame in {args.frame_step}" if args.frame_step > 1 else ""
    every += ", a simulated camera metering on the face" if args.metering else ""
    said = "scans let in" if args.attacks else "per-scan FRR (in brackets: BPCER, the scans liveness refused)"
    print(f"{result['clips']} {what} ({args.split}), enrolled as filmed{every}; {said}:")
    for name, why in result["enrolment_refused"].items():
        print(f"  enrolment refused: {name}: {why}")
    for name, why in result["too_short"].items():
        print(f"  not scanned: {name}: {why}")
    for light, levels in result["lights"].items():
        cells = ", ".join(
            f"{level} {r['matched']} of {r['scans']}"
            if args.attacks
            else f"{level} {rate(r['frr'])} ({rate(r['bpcer'])}) of {r['scans']}"
            for level, r in levels.items()
        )
        print(f"  {light:<20} {cells}")
    if args.attacks:
        for line in result["balanced_matched"]:
            print(f"  LET IN at balanced: {line}")
    else:
        for line in result["balanced_missed"]:
            print(f"  missed at balanced: {line}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    return 0
