"""APCER/BPCER of the default policy on the shared webcam videos, per window length.

Person A is enrolled from the first 2 s of live-person-a.webm; genuine windows come from the
rest of that video, attack windows from every position in replay-person-a.webm.

    .venv/bin/python benchmarks/liveness_rates.py [--data ../shared/data] [--json out.json]
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np

from faceunlock.camera import open_source
from faceunlock.config import Config
from faceunlock.evaluation.pad import analyse_frames, rates
from faceunlock.model import load_card
from faceunlock.runtime import load_pipeline

FPS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FACEUNLOCK_DATA", "../shared/data"))
    parser.add_argument("--lengths", type=int, nargs="*", default=[8, 15, 30, 60, 150])
    parser.add_argument("--no-liveness", action="store_true", help="for comparison: the gate off")
    parser.add_argument("--json")
    args = parser.parse_args()
    cfg = Config()
    if args.no_liveness:
        from faceunlock import config

        cfg = config.replace(cfg, "liveness", enabled=False)
    card = load_card()
    pipeline = load_pipeline(cfg, card, threads=2)
    video = Path(args.data) / "video"
    live = list(open_source(str(video / "live-person-a.webm")).frames())
    enrol = [r.embedding for r in analyse_frames(pipeline, live[: 2 * FPS]) if r.embedding is not None]
    anchors = np.stack(enrol[:: max(1, len(enrol) // 10)][:10])
    genuine = analyse_frames(pipeline, live[2 * FPS :])
    attack = analyse_frames(pipeline, open_source(str(video / "replay-person-a.webm")).frames())
    threshold = card.threshold(cfg.verify.security_level)
    table = rates(genuine, attack, args.lengths, anchors, threshold, cfg.verify, cfg.liveness)
    print(
        f"liveness {'off' if args.no_liveness else 'on'}; threshold {threshold} ({cfg.verify.security_level})"
    )
    print("frames  attack windows  APCER        genuine windows  BPCER")
    for n, r in table.items():
        print(
            f"{n:>6}  {r['attack_windows']:>14}  {r['apcer']:.4f} ({r['attack_accepted']:>3})  "
            f"{r['genuine_windows']:>15}  {r['bpcer']:.4f} ({r['genuine_rejected']:>3})"
        )
    cue_frames = sum(bool(r.cues) for r in attack)
    live_cues = sum(bool(r.cues) for r in genuine)
    print(f"frames with an attack cue: replay {cue_frames}/{len(attack)}, live {live_cues}/{len(genuine)}")
    if args.json:
        Path(args.json).write_text(json.dumps({str(k): v for k, v in table.items()}, indent=1))


if __name__ == "__main__":
    main()
