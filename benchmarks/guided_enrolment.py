"""Guided enrolment (5 poses) against a straight enrolment, on held-out frames of the same video.

Each live video is cut in two halves by frame index: A = [0, n/2), B = [n/2, n).
Two folds: enrol from A and verify on B, then enrol from B and verify on A.
Every frame is analysed once (detect, align, embed, liveness cues); both
enrolments then read the same analysed frames of the enrol half, in order:

- straight-K: the first K frames that a plain enrolment (``enroll --frames K``)
  keeps and whose head pose reads straight: what "look at the camera" gives;
- guided-K: the guided flow (faceunlock.guided) over the enrol half, with
  per_pose = K / 5 (opportunistic: a good frame counts for any pose still missing).

On the verify half, with the model card's thresholds (never tuned here):
- frame rate: of the frames whose face can be judged (verify's gates), the
  share whose distance to the nearest anchor is under the threshold;
- scan rate: the verify half cut into consecutive windows of --window frames,
  each run through the full decision policy (faceunlock.verify.Scan: 2
  consecutive frames, liveness window) as one scan; the share that match.

A fold counts only when both enrolments produced anchors.
Usage: FACEUNLOCK_DATA=... python benchmarks/guided_enrolment.py [--videos V ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from faceunlock.camera import SourceOptions, open_source
from faceunlock.config import Config
from faceunlock.enroll import frame_problem
from faceunlock.errors import EnrollError
from faceunlock.guided import GuidedEnrolment, which_pose
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline
from faceunlock.verify import Scan, nearest_distance, usable_face
from faceunlock.vision.pose import estimate_pose

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACEUNLOCK_DATA", ROOT.parent / "shared" / "data")) / "video"


def default_videos(root: Path) -> list[Path]:
    return [root / "live-person-a.webm", root / "live-person-c.mp4"] + [
        Path(p) for p in sorted(glob.glob(str(root / "more" / "live-*.mp4")))
    ]


def analyse(pipeline: Pipeline, video: Path) -> list:
    """(frame height, FrameResult) for every decoded frame; nothing skipped, so indices are frame numbers."""
    out = []
    with open_source(str(video), SourceOptions(dark_threshold=0.0, read_timeout=30.0)) as source:
        for rgb in source.frames():
            out.append((rgb.shape[0], pipeline.analyse(rgb)))
    return out


def straight_anchors(cfg: Config, frames: list, wanted: int) -> tuple[np.ndarray | None, list[int]]:
    kept, where = [], []
    for i, (_h, r) in frames:
        if frame_problem(r, cfg.verify) is not None:
            continue
        pose = estimate_pose(r.face.landmarks)
        if pose is not None and which_pose(pose, None) == "straight":
            kept.append(r.embedding)
            where.append(i)
            if len(kept) == wanted:
                return np.stack(kept), where
    return None, where


def guided_anchors(cfg: Config, frames: list, per_pose: int) -> tuple[np.ndarray | None, dict]:
    enroll = dataclasses.replace(cfg.enroll, per_pose=per_pose, min_poses=1)
    state = GuidedEnrolment(cfg.verify, enroll, cfg.liveness, clock=lambda: 0.0)
    for _i, (h, r) in frames:
        state.feed(r, h)
        if state.finished:
            break
    try:
        anchors = state.result()
    except EnrollError:
        return None, state.report()
    report = state.report()
    offset = frames[0][0] if frames else 0
    report["kept_frames"] = {c["pose"]: [] for c in report["captures"]}
    for c in report["captures"]:
        if c["kept"]:
            report["kept_frames"][c["pose"]].append(offset + c["frame"] - 1)
    return anchors, report


def frame_rate(cfg: Config, anchors: np.ndarray, frames: list, threshold: float) -> tuple[int, int]:
    hits = judged = 0
    for _i, (_h, r) in frames:
        if usable_face(r, cfg.verify) is None:
            judged += 1
            hits += nearest_distance(anchors, r.embedding) < threshold
    return hits, judged


def scan_rate(
    cfg: Config, anchors: np.ndarray, frames: list, threshold: float, window: int
) -> tuple[int, int]:
    matched = scans = 0
    for start in range(0, len(frames) - window + 1, window):
        scan = Scan("bench", anchors, threshold, cfg.verify, cfg.liveness)
        scans += 1
        matched += any(scan.feed(r) for _i, (_h, r) in frames[start : start + window])
    return matched, scans


def per_video(rows: list[dict], k: int, level: str) -> list[str]:
    """One line per video: held-out frame and scan match rates, straight-k against guided-k, both folds."""
    head = f"{'video':<20} {'poses (A / B)':<44} {'frames straight':>16} {'guided':>8}"
    lines = [head + f" {'scans straight':>15} {'guided':>8}"]
    for video in dict.fromkeys(r["video"] for r in rows):
        folds = [r for r in rows if r["video"] == video and f"straight{k}_{level}" in r]
        poses = " / ".join(
            ",".join(p[:2] for p in r[f"guided{k}_poses"]) for r in rows if r["video"] == video
        )
        if not folds:
            lines.append(f"{video:<20} {poses:<44} {'no enrolment in a fold':>49}")
            continue
        cells = []
        for kind in ("frames", "scans"):
            for name in ("straight", "guided"):
                hit = sum(r[f"{name}{k}_{level}"][kind][0] for r in folds)
                n = sum(r[f"{name}{k}_{level}"][kind][1] for r in folds)
                cells.append(f"{hit / max(n, 1):.3f}")
        lines.append(f"{video:<20} {poses:<44} {cells[0]:>16} {cells[1]:>8} {cells[2]:>15} {cells[3]:>8}")
    return lines


def print_report(rows: list[dict], totals: dict) -> None:
    keys = (re.fullmatch(r"straight(\d+)_balanced", key) for r in rows for key in r)
    for k in sorted({int(m.group(1)) for m in keys if m}):
        for level in ("balanced", "strict"):
            print(
                f"\nstraight-{k} against guided-{k}, {level} threshold, both folds (poses: st le ri up do):"
            )
            print("\n".join(per_video(rows, k, level)))
    print("\npooled over all folds that produced both enrolments:")
    for (name, level, kind), (hit, n) in sorted(totals.items()):
        print(f"  {name:<11} {level:<9} {kind:<7} {hit:>5}/{n:<5} = {hit / max(n, 1):.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", nargs="*", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--window", type=int, default=15, help="frames per scan (default 15: 0.5 s at 30 fps)")
    p.add_argument(
        "--anchors", type=int, nargs="*", default=[5, 10], help="anchors per enrolment (multiples of 5)"
    )
    p.add_argument("--json", help="write every fold's figures here")
    p.add_argument("--report", help="print the tables of a --json file of an earlier run, and stop")
    args = p.parse_args()
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        print_report(saved["rows"], {tuple(k.split(" ")): tuple(v) for k, v in saved["pooled"].items()})
        return 0
    cfg, card = Config(), load_card()
    pipeline = Pipeline(cfg, card, threads=args.threads)
    levels = {level: card.threshold(level) for level in ("balanced", "strict")}
    rows, totals = [], {}
    for video in args.videos or default_videos(DATA):
        t0 = time.monotonic()
        analysed = list(enumerate(analyse(pipeline, video)))
        half = len(analysed) // 2
        parts = {"A": analysed[:half], "B": analysed[half:]}
        for enrol, test in (("A", "B"), ("B", "A")):
            row = {"video": video.name, "frames": len(analysed), "enrol": enrol, "verify": test}
            row["enrol_frames"] = [parts[enrol][0][0], parts[enrol][-1][0]]
            row["verify_frames"] = [parts[test][0][0], parts[test][-1][0]]
            for k in args.anchors:
                straight, where = straight_anchors(cfg, parts[enrol], k)
                guided, report = guided_anchors(cfg, parts[enrol], k // 5)
                row[f"straight{k}_frames"] = where
                row[f"guided{k}_poses"] = report["captured"]
                row[f"guided{k}_frames"] = report.get("kept_frames")
                if straight is None or guided is None:
                    row[f"k{k}"] = "skipped: an enrolment got no anchors"
                    continue
                for level, threshold in levels.items():
                    for name, anchors in (("straight", straight), ("guided", guided)):
                        fr = frame_rate(cfg, anchors, parts[test], threshold)
                        sr = scan_rate(cfg, anchors, parts[test], threshold, args.window)
                        row[f"{name}{k}_{level}"] = {"frames": fr, "scans": sr}
                        for kind, (hit, n) in (("frames", fr), ("scans", sr)):
                            key = (f"{name}{k}", level, kind)
                            a, b = totals.get(key, (0, 0))
                            totals[key] = (a + hit, b + n)
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(f"# {video.name}: {len(analysed)} frames in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    print_report(rows, totals)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "pooled": {" ".join(k): v for k, v in totals.items()}})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
