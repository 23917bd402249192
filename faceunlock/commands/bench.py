"""`faceunlock bench`: per-stage and end-to-end speed on real webcam frames, against Howdy's pipeline."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


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
    p.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="torch thread counts to try")
    p.add_argument("--cold-runs", type=int, default=3, help="runs of `faceunlock verify` in a new process")
    p.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    p.set_defaults(run=run)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from faceunlock import benchmark as b
    from faceunlock.attempt import attempt
    from faceunlock.config import Config, replace
    from faceunlock.enroll import capture
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline

    frames, decode_ms = b.decode_frames(Path(args.video), max(args.frames, 120))
    if len(frames) < 70:
        raise ValueError(f"{args.video} has only {len(frames)} frames; the benchmark needs 70 or more")
    card = load_card()
    results: dict = {"video": args.video, "frame_size": list(frames[0].shape[:2]), "by_threads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        cfg = replace(Config(), "store", path=str(store))
        rest = Path(tmp) / "rest"
        rest.mkdir()
        for i, f in enumerate(frames[60:]):
            cv2.imwrite(str(rest / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        for threads in args.threads:
            b.set_threads(threads)
            t0 = time.perf_counter()
            pipeline = Pipeline(cfg, card, threads=threads)
            load_ms = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            anchors = capture(pipeline, iter(frames[:60]), 10, cfg.verify, 60.0)
            enrol_ms = (time.perf_counter() - t0) * 1e3
            per_frame = b.faceunlock_per_frame(pipeline, frames[: args.frames], anchors)
            threshold = card.threshold(cfg.verify.security_level)
            warm = []
            for _ in range(5):
                t0 = time.perf_counter()
                d = attempt(pipeline, iter(frames[60:]), "bench", anchors, threshold, cfg, service="bench")
                warm.append((time.perf_counter() - t0) * 1e3)
            results["by_threads"][str(threads)] = {
                "model_load_ms": round(load_ms, 1),
                "enrol_ms": round(enrol_ms, 1),
                "warm_verify_ms": b.stats(warm),
                "warm_verify_decision": d.decision,
                "rss_mb": round(rss_mb(), 1),
                **per_frame,
            }
        from faceunlock.store import TemplateStore

        TemplateStore(store, card.sha256, card.embedding_id).add("bench", "default", np.asarray(anchors))
        b.set_threads(max(args.threads))
        results["cold_verify_ms"] = b.cold_verify_ms(rest, store, args.cold_runs)
    results["peer"] = b.peer_per_frame(frames[: args.frames])
    best = min(results["by_threads"].values(), key=lambda r: r["per_frame"]["median"])
    results["decode"] = b.stats(decode_ms)
    results["faceunlock"] = {
        "ms_per_frame": best["per_frame"]["median"],
        "stages": {k: v["median"] for k, v in best["stages"].items()},
    }
    if results["peer"]:
        results["peer"]["ms_per_frame"] = results["peer"]["per_frame"]["median"]
        results["ratio_per_frame"] = round(results["peer"]["ms_per_frame"] / best["per_frame"]["median"], 2)
    report(results)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def report(r: dict) -> None:
    h, w = r["frame_size"]
    print(f"frames: {w}x{h} from {r['video']}; decode median {r['decode']['median']} ms")
    for threads, t in r["by_threads"].items():
        stages = ", ".join(f"{k} {v['median']}/{v['p90']}" for k, v in t["stages"].items())
        print(
            f"faceunlock, {threads} thread(s): {t['per_frame']['median']} ms/frame median "
            f"(p90 {t['per_frame']['p90']}); stages median/p90 ms: {stages}"
        )
        print(
            f"  model load {t['model_load_ms']} ms, enrol (10 frames) {t['enrol_ms']} ms, warm verify "
            f"{t['warm_verify_ms']['median']} ms to '{t['warm_verify_decision']}', RSS {t['rss_mb']} MB"
        )
    print(f"cold verify (new process): median {r['cold_verify_ms']['median']} ms")
    peer = r.get("peer")
    if peer:
        stages = ", ".join(f"{k} {v['median']}" for k, v in peer["stages"].items())
        print(
            f"peer (Howdy: dlib HOG at 320 px, 5 landmarks, ResNet): "
            f"{peer['ms_per_frame']} ms/frame ({stages})"
        )
        print(f"ratio peer/faceunlock per frame: {r['ratio_per_frame']}x")
    else:
        print("peer: dlib is not installed (pip install dlib-bin); no ratio")
