"""Enrolment: capture N good frames (one dominant face, big and sharp enough) and embed them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from faceunlock.config import VerifyConfig
from faceunlock.errors import EnrollError
from faceunlock.pipeline import FrameResult, Pipeline
from faceunlock.verify import usable_face

GUIDANCE = {
    "no-face": "no face found: look straight at the camera",
    "multiple": "two faces of about the same size in view: only the person enrolling should be in front",
    "small": "face too small: move closer to the camera",
    "blurry": "image too blurry: hold still",
}


def frame_problem(result: FrameResult, policy: VerifyConfig) -> str | None:
    """Why a frame is not good enough to enrol from, or None: verification's gates. The face that
    counts is the dominant one; smaller faces behind are ignored, two of similar size refuse."""
    return usable_face(result, policy)


def capture(
    pipeline: Pipeline,
    frames: Iterable[np.ndarray],
    wanted: int,
    policy: VerifyConfig,
    timeout: float,
    progress: Callable[[int, int, str | None], None] | None = None,
    meter: Callable | None = None,
) -> np.ndarray:
    """Collect `wanted` embeddings of good frames; raise EnrollError naming what went wrong.

    meter: the camera's FrameSource.meter, told where the face is in each frame."""
    deadline = time.monotonic() + timeout
    kept: list[np.ndarray] = []
    problems: dict[str, int] = {}
    seen = 0
    for rgb in frames:
        seen += 1
        result = pipeline.analyse(rgb)
        if meter is not None:
            meter(rgb, result.face)
        problem = frame_problem(result, policy)
        if problem is None:
            kept.append(result.embedding)
        else:
            problems[problem] = problems.get(problem, 0) + 1
        if progress:
            progress(len(kept), wanted, GUIDANCE.get(problem) if problem else None)
        if len(kept) >= wanted or time.monotonic() >= deadline:
            break
    if len(kept) >= wanted:
        return np.stack(kept).astype(np.float32)
    if seen == 0:
        raise EnrollError("the source gave no usable frame (all black, too dark, or empty)")
    worst = max(problems, key=problems.get) if problems else None
    hint = f"; most frames were rejected because: {GUIDANCE[worst]}" if worst else ""
    raise EnrollError(f"got {len(kept)} of {wanted} usable frames from {seen} frames{hint}")
