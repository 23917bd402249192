"""One runtime assembly: from a config to the store, the camera, the warm pipeline, and one scan.

The CLI commands and the daemon build their parts here, so camera options,
store settings and the way a scan reads its camera are written once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from faceunlock.camera import FrameSource, SourceOptions, open_source
from faceunlock.config import Config
from faceunlock.decision import Decision
from faceunlock.model import ModelCard, load_card
from faceunlock.store import TemplateStore

SKIPPED_KINDS = ("black", "dark", "undecodable")


def open_store(cfg: Config, card: ModelCard | None = None) -> TemplateStore:
    """The template store of the config, bound to the model card's fingerprint."""
    card = card or load_card()
    return TemplateStore(cfg.store.path, model_sha256=card.sha256, embedding=card.embedding_id)


def open_camera(cfg: Config, open_timeout: float | None = None) -> FrameSource:
    """Open the configured camera; open_timeout (seconds) may shorten the configured one."""
    c = cfg.camera
    wait = c.open_timeout if open_timeout is None else min(c.open_timeout, open_timeout)
    options = SourceOptions(dark_threshold=c.dark_threshold, open_timeout=wait, read_timeout=c.read_timeout)
    return open_source(c.source, options)


def load_pipeline(cfg: Config, card: ModelCard, threads: int | None):
    """The detector and embedder of the model card, loaded once."""
    from faceunlock.pipeline import Pipeline

    return Pipeline(cfg, card, threads=threads)


def verify_scan(
    pipeline,
    cfg: Config,
    user: str,
    anchors: np.ndarray,
    threshold: float,
    deadline: float,
    service: str,
) -> Decision:
    """Open the camera, run one attempt under the whole policy until the deadline, close the camera.

    The deadline (time.monotonic()) bounds the camera's opening, every read and the scan, dark
    frames included. Camera errors propagate; the caller turns them into a non-match.
    """
    from faceunlock.attempt import attempt

    left = deadline - time.monotonic()
    with open_camera(cfg, open_timeout=max(0.1, left)) as source:
        decision = attempt(
            pipeline, source.frames(deadline), user, anchors, threshold, cfg, service, deadline=deadline
        )
        for kind in SKIPPED_KINDS:
            count = getattr(source.stats, kind)
            if count:
                decision.skipped[f"{kind}-frames"] = count
        dark = source.stats.black + source.stats.dark
        if not decision.judged and dark:
            decision.reason += f" ({dark} black or dark frames: is the lens covered, or the room too dark?)"
    return decision


def enrol_capture(
    pipeline,
    cfg: Config,
    wanted: int,
    progress: Callable[[int, int, str | None], None] | None = None,
) -> np.ndarray:
    """Capture `wanted` good embeddings from the camera within the enrolment timeout."""
    from faceunlock.enroll import capture

    deadline = time.monotonic() + cfg.enroll.timeout
    with open_camera(cfg) as source:
        return capture(pipeline, source.frames(deadline), wanted, cfg.verify, cfg.enroll.timeout, progress)
