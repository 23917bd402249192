"""`faceunlock bench`: per-stage and end-to-end speed on real webcam frames, against Howdy's pipeline."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from faceunlock.vision.backend import BACKENDS, DEFAULT_BACKEND


def register(sub) -> None:
    """Add the bench parser."""
    p = sub.add_parser("bench", help="speed benchmark against Howdy's dlib pipeline, in one run")
    p.add_argument(
        "--video",
        default=str(
            Path(os.environ.get("FACEUNLOCK_DATA", "../shared/data")) / "video" / "live-person-a.webm"
        ),
        help="webcam recording to use (default: live-person-a.webm from the shared data)",
    )
    p.add_argument("--frames", type=int, default=120, help="frames timed per setting")
    p.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="inference thread counts to try")
    p.add_argument(
        "--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="inference backend (default onnx)"
    )
    p.add_argument("--cold-runs", type=int, default=3, help="runs of `faceunlock verify` in a new process")
    p.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceunlock.evaluation.speed import run_bench

    results = run_bench(Path(args.video), args.frames, args.threads, args.cold_runs, args.backend)
    report(results)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def report(r: dict) -> None:
    h, w = r["frame_size"]
    m = r["machine"]
    print(f"machine: {m['cpu']}, {m['cpus']} CPUs; load average {r['load_average']}")
    print(
        f"frames: {w}x{h} from {r['video']}; decode median {r['decode']['median']} ms; backend {r['backend']}"
    )
    for threads, t in r["by_threads"].items():
        stages = ", ".join(f"{k} {v['median']}/{v['p90']}" for k, v in t["stages"].items())
        print(
            f"faceunlock, {threads} thread(s): {t['per_frame']['median']} ms/frame median "
            f"(p90 {t['per_frame']['p90']}); stages median/p90 ms: {stages}"
        )
        print(
            f"  model load {t['model_load_ms']} ms, enrol (10 frames) {t['enrol_ms']} ms, warm verify "
            f"{t['warm_verify_ms']['median']} ms to '{t['warm_verify_decision']}' "
            f"({t['warm_verify_frames']} frames), RSS {t['rss_mb']} MB"
        )
    c = r["cold_verify"]
    first = c["to_first_judged_ms"]["median"] if c["to_first_judged_ms"] else "-"
    print(
        f"cold verify (new process, 3 frames): start to first judged frame median {first} ms, to decision "
        f"{c['to_decision_ms']['median']} ms ({', '.join(c['decisions'])})"
    )
    d = r["rss_mb"]["daemon"]
    print(
        f"RSS: cli peak {r['rss_mb']['cli']} MB; "
        f"daemon idle {d['idle']} MB, peak in a scan {d['scan_peak']} MB"
    )
    a = r["accuracy"]
    print(
        f"accuracy check ({'ok' if a['ok'] else 'FAILED'}): genuine frames under the threshold, followed "
        f"{a['genuine_under_threshold']['followed']} vs detected {a['genuine_under_threshold']['detected']}; "
        + (
            f"largest distance shift against the float network {a['max_distance_shift_vs_float']}"
            if a["max_distance_shift_vs_float"] is not None
            else f"max descriptor difference to torch {a['max_descriptor_diff_vs_torch']}"
        )
    )
    peer = r.get("peer")
    if peer:
        stages = ", ".join(f"{k} {v['median']}" for k, v in peer["stages"].items())
        print(
            f"peer (Howdy: dlib HOG at 320 px, 5 landmarks, ResNet): "
            f"{peer['ms_per_frame']} ms/frame ({stages})"
        )
        ratios = ", ".join(f"{k} thread(s) {v}x" for k, v in r["ratio_by_threads"].items())
        print(f"ratio peer/faceunlock per frame: {ratios}")
    else:
        print("peer: dlib is not installed (pip install dlib-bin); no ratio")
