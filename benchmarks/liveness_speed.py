"""Liveness cost per frame on 1 thread: each network alone (ONNX Runtime), the crops, the motion and
texture cues, and the whole liveness step against the whole frame, on real webcam frames.

Each figure is a median of wall and of CPU milliseconds: on a machine shared with other jobs, wall
time also counts waiting for a core, so the load average is printed too.

    .venv/bin/python benchmarks/liveness_speed.py [--data ../shared/data] [--frames 150] [--json out.json]
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from faceunlock.camera import open_source
from faceunlock.config import Config
from faceunlock.liveness import cues
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline


def median_ms(fn, runs: int) -> dict:
    """Median wall and CPU milliseconds of fn() (CPU: the process's time, all its threads)."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return {"wall": round(float(np.median(wall)), 3), "cpu": round(float(np.median(cpu)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FACEUNLOCK_DATA", "../shared/data"))
    parser.add_argument("--video", default="video/live-person-a.webm")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    pipeline = Pipeline(Config(), load_card(), threads=1)
    frames = list(open_source(str(Path(args.data) / args.video)).frames())[: args.frames]
    results = [pipeline.analyse(rgb) for rgb in frames[:5]]
    face = next(r.face for r in results if r.face is not None)
    rgb = frames[0]
    out = {"frames": len(frames), "threads": 1, "onnxruntime_threads": 1, "load_average": os.getloadavg()}
    for i, net in enumerate(pipeline.pad.networks):
        crop = pipeline.pad.crop(i, rgb, face.box)
        out[f"crop_{net.scale}_ms"] = median_ms(lambda i=i: pipeline.pad.crop(i, rgb, face.box), 200)
        out[f"network_{net.name}_ms"] = median_ms(lambda i=i, crop=crop: pipeline.pad.score(i, crop), 200)
    a, b = cues.motion_frame(frames[0]), cues.motion_frame(frames[1])
    out["motion_ms"] = median_ms(
        lambda: (cues.motion_frame(frames[1]), cues.measure_motion(a, b, face.box)), 100
    )
    chip = results[0].chip
    out["moire_ms"] = median_ms(lambda: cues.moire_share(chip), 200)
    frame_ms, frame_cpu, live_ms = [], [], []
    previous = None
    for k, rgb in enumerate(frames):
        c0 = time.process_time()
        previous = pipeline.analyse(rgb, previous=previous, networks=pipeline.networks_for(k))
        if previous.face is not None:
            frame_cpu.append((time.process_time() - c0) * 1e3)
            frame_ms.append(sum(previous.ms.values()))
            live_ms.append(previous.ms["liveness"])
    nets = pipeline.pad.networks
    out["model_part_ms_per_frame"] = {
        kind: round(
            float(
                np.mean([out[f"network_{n.name}_ms"][kind] + out[f"crop_{n.scale}_ms"][kind] for n in nets])
            ),
            3,
        )
        for kind in ("wall", "cpu")
    }
    """One network and its crop per frame (they take turns), averaged over the two."""
    out["liveness_ms_median"] = round(float(np.median(live_ms)), 3)
    out["frame_ms_median"] = round(float(np.median(frame_ms)), 3)
    out["frame_cpu_ms_median"] = round(float(np.median(frame_cpu)), 3)
    out["liveness_share"] = round(out["liveness_ms_median"] / out["frame_ms_median"], 4)
    for k, v in out.items():
        print(f"{k:<34} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
