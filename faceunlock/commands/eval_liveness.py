"""`faceunlock eval liveness`: APCER per attack kind and BPCER over every window a scan could see,
the DET curve, and how long a genuine scan takes to reach `match`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from faceunlock.camera import VIDEO_SUFFIXES

DEFAULT_LENGTHS = (8, 15, 30, 60, 150)


def register(esub) -> None:
    """Add the eval liveness parser to eval's subcommands."""
    e = esub.add_parser("liveness", help="presentation-attack rates (ISO/IEC 30107-3 style) on videos")
    e.add_argument(
        "--data",
        default=os.environ.get("FACEUNLOCK_DATA", "../shared/data"),
        help="the shared data folder (its video/, lfw/ and celeba-train/ give the built-in clips)",
    )
    e.add_argument(
        "--split",
        choices=("report", "fit", "all", "none"),
        default="report",
        help="built-in clips of the shared data: the held-out report set (default), the fitting set, "
        "both, or none (only --live/--attack)",
    )
    e.add_argument("--no-made", action="store_true", help="leave out the MADE clips")
    e.add_argument("--prints", type=int, default=30, help="printed-photo stand-ins per split (default 30)")
    e.add_argument("--live", nargs="*", default=[], help="live videos, folders of videos, or lists of paths")
    e.add_argument(
        "--attack",
        nargs="*",
        default=[],
        metavar="KIND=PATH",
        help="attack videos (or folders, lists) labelled with their kind, e.g. replay-phone=clips/",
    )
    e.add_argument("--enrol", help="live video whose first 2 s enrol the person of every --attack clip")
    e.add_argument("--lengths", type=int, nargs="*", default=list(DEFAULT_LENGTHS), help="window lengths")
    e.add_argument("--level", choices=("strict", "balanced", "fast"), help="security level (default: config)")
    e.add_argument("--config", help="TOML config file")
    e.add_argument("--timing", type=int, default=5, help="timed scans per live clip for time to match")
    e.add_argument("--cache", help="folder for cached per-clip analyses")
    e.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    e.add_argument("--plots", help="write liveness_det.png into this folder")
    e.add_argument("--threads", type=int, default=1)
    e.set_defaults(run=run)


def expand(spec: str) -> list[Path]:
    """A video, a folder of videos (sorted), or a text file listing one path per line."""
    path = Path(spec)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        if not path.is_file():
            raise ValueError(f"video not found: {path}")
        return [path]
    if path.is_file():
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        return [p for ln in lines for p in expand(str(path.parent / ln))]
    raise ValueError(f"not a video, a folder or a list of videos: {path}")


def user_clips(args: argparse.Namespace) -> list:
    from faceunlock.evaluation.liveness import Clip
    from faceunlock.evaluation.shared_data import enrol_part, rest_part, segment

    clips = []
    for spec in args.live:
        for path in expand(spec):
            clips.append(
                Clip(path.stem, "live", path.stem, "user", rest_part(path), enrol_part(path), room="-")
            )
    enrol = enrol_part(Path(args.enrol)) if args.enrol else None
    for spec in args.attack:
        kind, sep, where = spec.partition("=")
        if not sep or not kind or kind == "live":
            raise ValueError(f"--attack takes KIND=PATH with a kind other than 'live', got {spec!r}")
        for path in expand(where):
            clips.append(
                Clip(
                    path.stem,
                    kind,
                    "enrolled",
                    "user",
                    segment(path, 0, None),
                    enrol,
                    room="-",
                    instrument=kind,
                )
            )
    return clips


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:6.2f}%"


def report(result: dict) -> None:
    print(
        f"level {result['level']}: match threshold {result['match_threshold']}, liveness threshold "
        f"{result['liveness_threshold']}, clear attack below {result['attack_below']}"
    )
    print("data (MADE clips are synthetic, built by faceunlock/evaluation/made.py):")
    for label, d in sorted(result["data"].items()):
        print(
            f"  {label:<18} {d['clips']:>3} clips ({d['made_clips']} made), {d['frames']:>5} frames, "
            f"{len(d['people'])} people, {len(d['rooms'])} rooms/recordings, instruments: "
            f"{', '.join(d['instruments']) or '-'}"
        )
    for name, why in result["not_enrolled"].items():
        print(f"  left out {name}: {why}")
    print(
        "scan level: the whole policy (face match and liveness) on every window; PAD level: liveness "
        "alone, on the windows where it reached a score; no score: windows without enough usable "
        "frames of one tracked face"
    )
    for length, r in result["lengths"].items():
        print(f"\n{length}-frame windows    windows  scan level (all windows)   PAD level     no score")
        for label, k in sorted(r["kinds"].items(), key=lambda kv: kv[0] != "live"):
            if label == "live":
                print(
                    f"  {'live':<18} {k['windows']:>7}  BPCER {pct(k['bpcer'])} ({k['rejected']:>4})      "
                    f"BPCER {pct(k['pad_bpcer'])}  {pct(k['not_acquired'])}   "
                    f"(liveness off: BPCER {pct(k['bpcer_liveness_off'])})"
                )
            else:
                print(
                    f"  {label:<18} {k['windows']:>7}  APCER {pct(k['apcer'])} ({k['accepted']:>4})      "
                    f"APCER {pct(k['pad_apcer'])}  {pct(k['not_acquired'])}"
                )
    t = result.get("time_to_match")
    if t and "ms_median" not in t:
        print(f"\ngenuine scans to match: none of {t['scans']} timed scans matched")
    elif t:
        print(
            f"\ngenuine scans to match (warm, {t['scans']} scans of {t['clips']} live clips, load average "
            f"{t['load_average'][0]:.1f}): median {t['frames_median']} frames, {t['ms_median']:.0f} ms wall "
            f"(p90 {t['ms_p90']:.0f}), {t['cpu_ms_median']:.0f} ms CPU (p90 {t['cpu_ms_p90']:.0f}); "
            f"matched {t['matched']}/{t['scans']}"
        )
        print(
            f"per frame: total {t['frame_ms_median']:.1f} ms wall ({t['frame_cpu_ms_median']:.1f} ms CPU), "
            f"liveness {t['liveness_ms_median']:.2f} ms ({100 * t['liveness_share']:.1f}% of the frame)"
        )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from faceunlock import config as config_mod
    from faceunlock.evaluation import liveness as ev
    from faceunlock.evaluation.shared_data import made_clips, recorded_clips
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline
    from faceunlock.verify import fusion_of

    cfg = config_mod.load(args.config)
    cfg = config_mod.replace(cfg, "verify", security_level=args.level)
    if not cfg.liveness.enabled:
        raise ValueError("liveness is off in the config: nothing to evaluate")
    card = load_card()
    threshold = card.scan_threshold(cfg.verify.security_level)
    pipeline = Pipeline(cfg, card, threads=args.threads, all_cues=True)
    clips = user_clips(args)
    if args.split != "none":
        data = Path(args.data)
        role = None if args.split == "all" else args.split
        clips = (
            recorded_clips(data, role) + ([] if args.no_made else made_clips(data, role, args.prints)) + clips
        )
    if not clips:
        raise ValueError("no clips: give --live/--attack, or a --split of the shared data")
    cache = Path(args.cache) if args.cache else None
    items = [
        ev.prepare(pipeline, clip, cfg, cache)
        for clip in tqdm(clips, desc="clips", unit="clip", disable=not sys.stderr.isatty())
    ]
    result = ev.evaluate(items, args.lengths, threshold, cfg, pipeline.live_card, fusion_of(card))
    if args.timing:
        scanning = Pipeline(cfg, card, threads=args.threads)
        result["time_to_match"] = timing(scanning, items, threshold, cfg, args.timing, np)
    report(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    if args.plots:
        print(f"wrote {ev.write_det(result, Path(args.plots))}")
    return 0


def timing(pipeline, items, threshold, cfg, per_clip: int, np) -> dict | None:
    """Real warm scans on recorded (not MADE) live clips, from evenly spread start frames; per-frame
    cost over 30 frames of each. Wall and CPU milliseconds (see time_to_match). `pipeline` is a
    run-time one: it measures only the cues the liveness card uses, as a scan does."""
    import os
    import time

    from faceunlock.evaluation.liveness import time_to_match

    runs, frame_ms, frame_cpu, live_ms, clips = [], [], [], [], 0
    for item in tqdm(items, desc="timing", unit="clip", disable=not sys.stderr.isatty()):
        if not item.clip.live or item.clip.made or item.anchors is None:
            continue
        frames = list(item.clip.frames())
        if len(frames) < 30:
            continue
        clips += 1
        starts = np.linspace(0, len(frames) - 30, per_clip).astype(int)
        time_to_match(pipeline, frames, item.anchors, threshold, cfg, starts[:1])
        runs += time_to_match(pipeline, frames, item.anchors, threshold, cfg, starts)
        previous = None
        for k, rgb in enumerate(frames[:30]):
            c0 = time.process_time()
            previous = pipeline.analyse(rgb, previous=previous, networks=pipeline.networks_for(k))
            if "liveness" in previous.ms:
                frame_cpu.append((time.process_time() - c0) * 1e3)
                frame_ms.append(sum(previous.ms.values()))
                live_ms.append(previous.ms["liveness"])
    matched = [r for r in runs if r["decision"] == "match"]
    out = {
        "scans": len(runs),
        "clips": clips,
        "matched": len(matched),
        "load_average": os.getloadavg(),
        "runs": runs,
    }
    if not matched:
        return out
    ms = np.array([r["ms"] for r in matched])
    cpu = np.array([r["cpu_ms"] for r in matched])
    out.update(
        frames_median=float(np.median([r["frames"] for r in matched])),
        ms_median=float(np.median(ms)),
        ms_p90=float(np.percentile(ms, 90)),
        cpu_ms_median=float(np.median(cpu)),
        cpu_ms_p90=float(np.percentile(cpu, 90)),
        frame_ms_median=float(np.median(frame_ms)),
        frame_cpu_ms_median=float(np.median(frame_cpu)),
        liveness_ms_median=float(np.median(live_ms)),
        liveness_share=float(np.median(live_ms) / np.median(frame_ms)),
    )
    return out
