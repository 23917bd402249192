"""`faceunlock test`: a live preview of what the camera sees and what the policy decides.

It draws the face box, the five landmarks, the distance against the threshold,
the liveness state and cues, the frame rate and the current decision. It shows
a window where a display exists, or writes the annotated frames (--record,
--snapshot). It never unlocks anything and records no attempt: no lockout
count, no audit line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from faceunlock import config as config_mod
from faceunlock import runtime
from faceunlock.commands.common import add_common, add_store, load_config
from faceunlock.config import SECURITY_LEVELS
from faceunlock.errors import StoreError, UserError, describe
from faceunlock.model import load_card


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("test", help="live preview: face box, landmarks, distance, liveness, decision")
    p.add_argument("--user", help="compare with this user's enrolment (default: only detect)")
    p.add_argument("--source", help="camera device or index, video, image or folder of images")
    p.add_argument("--record", metavar="OUT.mp4", help="write the annotated frames to this video")
    p.add_argument("--snapshot", metavar="DIR", help="write each annotated frame as a JPEG into DIR")
    p.add_argument("--seconds", type=float, help="stop after this long (default: at the source's end)")
    p.add_argument("--fps", type=float, help="frame rate of --record (default: the source's, else 15)")
    p.add_argument("--level", choices=SECURITY_LEVELS, help="security level")
    p.add_argument("--json", action="store_true", help="also print one JSON line of figures per frame")
    add_store(p)
    add_common(p)
    p.set_defaults(run=run)


def has_display() -> bool:
    return bool(os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY"))


def anchors_of(cfg, card, user: str | None) -> np.ndarray | None:
    if not user:
        return None
    try:
        return runtime.open_store(cfg, card).load(user).anchors()
    except (StoreError, OSError) as exc:
        print(f"faceunlock: showing detection only: {describe(exc)}", file=sys.stderr)
        return None


class Snapshots:
    """Annotated frames as numbered JPEG files in a folder (quality 90: a tenth of PNG's size)."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        self.count += 1
        path = self.folder / f"frame{self.count:05d}.jpg"
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise UserError(f"cannot write {path}")

    def close(self) -> str:
        return f"wrote {self.count} annotated frames to {self.folder}"


class Recording:
    """Annotated frames as an MP4 video (opened at the first frame, which fixes the size)."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps = Path(path), fps
        self.writer = None
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        if self.writer is None:
            h, w = rgb.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise UserError(f"cannot write a video to {self.path} (an .mp4 path in a writable folder?)")
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> str:
        if self.writer is not None:
            self.writer.release()
        return f"wrote {self.count} annotated frames to {self.path} ({self.fps:g} fps)"


def source_fps(source) -> float | None:
    import cv2

    cap = getattr(source, "cap", None)
    fps = cap.get(cv2.CAP_PROP_FPS) if cap is not None else 0.0
    return fps if 1.0 <= fps <= 240.0 else None


def annotated(args, cfg, card, source, stop):
    """Yield (annotated RGB frame, figures) for each frame until the source ends, --seconds, or stop()."""
    from faceunlock.overlay import draw
    from faceunlock.preview import Preview

    pipeline = runtime.load_pipeline(cfg, card, args.threads)
    from faceunlock.verify import fusion_of

    threshold = card.scan_threshold(cfg.verify.security_level)
    preview = Preview(
        cfg,
        args.user or "",
        anchors_of(cfg, card, args.user),
        threshold,
        fusion=fusion_of(card),
        live_card=pipeline.live_card,
    )
    end = time.monotonic() + args.seconds if args.seconds else None
    for rgb in source.frames(end):
        result = preview.analyse(pipeline, rgb)
        source.meter(rgb, result.face)
        frame = preview.step(result, rgb)
        yield draw(rgb, frame), frame.as_dict()
        if stop():
            return


def run(args: argparse.Namespace) -> int:
    if args.user:
        from faceunlock.store import check_user

        check_user(args.user)
    cfg = config_mod.replace(load_config(args), "verify", security_level=args.level)
    card = load_card()
    outputs = []
    if args.snapshot:
        outputs.append(Snapshots(args.snapshot))
    with runtime.open_camera(cfg) as source:
        if args.record:
            outputs.append(Recording(args.record, args.fps or source_fps(source) or 15.0))
        if not outputs:
            if not has_display():
                raise UserError(
                    "no display: write the annotated frames with --record OUT.mp4 or --snapshot DIR"
                )
            from faceunlock.gui.preview_window import show

            return show(
                lambda stop: annotated(args, cfg, card, source, stop),
                f"faceunlock test: {source.description}",
            )
        try:
            for rgb, figures in annotated(args, cfg, card, source, lambda: False):
                for out in outputs:
                    out.write(rgb)
                if args.json:
                    print(json.dumps(figures), flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            for out in outputs:
                print(out.close(), file=sys.stderr)
    return 0
