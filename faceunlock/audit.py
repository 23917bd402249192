"""Audit trail: one log line per attempt (stderr, hence the journal under systemd), and optional
snapshots of failed attempts (off by default; mode 0600; the folder is capped in size)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from faceunlock.atomic import CREATE_FLAGS
from faceunlock.config import AuditConfig
from faceunlock.decision import Decision

log = logging.getLogger("faceunlock.audit")


def log_attempt(decision: Decision, service: str, insecure: bool = False) -> str:
    """Log one attempt as key=value pairs; returns the line. insecure: the config allows unsafe settings."""
    distance = "-" if decision.distance is None else f"{decision.distance:.4f}"
    score = "-" if decision.liveness_score is None else f"{decision.liveness_score:.4f}"
    cues = ",".join(f"{k}:{v:.3g}" for k, v in sorted(decision.liveness_cues.items())) or "-"
    line = (
        f"attempt user={decision.user} service={service} decision={decision.decision} "
        f"distance={distance} threshold={decision.threshold} liveness={decision.liveness!r} "
        f"liveness_score={score} liveness_cues={cues} liveness_reason={decision.liveness_reason!r} "
        f"frames={decision.frames} duration_ms={decision.elapsed_ms:.0f} reason={decision.reason!r}"
    )
    if insecure:
        line += " insecure=yes"
    if not log.handlers and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="faceunlock: %(message)s")
    log.info(line)
    return line


def save_snapshot(frame: np.ndarray, decision: Decision, cfg: AuditConfig) -> Path | None:
    """Keep a JPEG of a failed attempt's frame (mode 0600), then trim the folder to its size cap."""
    import cv2

    if not cfg.snapshots or decision.matched or frame is None:
        return None
    folder = Path(cfg.snapshot_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{decision.user}-{decision.decision}.jpg"
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        return None
    path, fd = create_new(folder, name)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.tobytes())
    trim(folder, int(cfg.snapshot_max_mb * 1024 * 1024))
    return path


def create_new(folder: Path, name: str) -> tuple[Path, int]:
    """A new file in folder (mode 0600), never an existing one or one behind a link: name, or name
    with a counter when two attempts fail within the same second."""
    stem, suffix = os.path.splitext(name)
    for n in range(100):
        path = folder / (name if n == 0 else f"{stem}-{n}{suffix}")
        try:
            return path, os.open(path, CREATE_FLAGS, 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(f"too many snapshots named {name} in {folder}")


def trim(folder: Path, limit: int) -> None:
    """Delete the oldest snapshots until the folder holds at most limit bytes."""
    files = sorted((p for p in folder.glob("*.jpg") if p.is_file()), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    while files and total > limit:
        oldest = files.pop(0)
        total -= oldest.stat().st_size
        oldest.unlink()
