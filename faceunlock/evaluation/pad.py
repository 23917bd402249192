"""Presentation-attack evaluation in the ISO/IEC 30107-3 style, over every window of frames a scan
could see: APCER (attack windows wrongly accepted) and BPCER (genuine windows wrongly rejected)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from faceunlock.config import LivenessConfig, VerifyConfig
from faceunlock.pipeline import FrameResult, Pipeline
from faceunlock.verify import Scan


def analyse_frames(pipeline: Pipeline, frames: Iterable[np.ndarray]) -> list[FrameResult]:
    """Run the per-frame pipeline once; windows are then replayed from these results."""
    return [pipeline.analyse(rgb) for rgb in frames]


def accepted_windows(
    results: list[FrameResult],
    length: int,
    anchors: np.ndarray,
    threshold: float,
    policy: VerifyConfig,
    liveness: LivenessConfig,
) -> tuple[int, int]:
    """(windows, accepted): every start position, a fresh scan over `length` frames."""
    windows = accepted = 0
    for start in range(0, len(results) - length + 1):
        scan = Scan("window", anchors, threshold, policy, liveness)
        windows += 1
        accepted += any(scan.feed(r) for r in results[start : start + length])
    return windows, accepted


def rates(
    genuine: list[FrameResult],
    attack: list[FrameResult],
    lengths: list[int],
    anchors: np.ndarray,
    threshold: float,
    policy: VerifyConfig,
    liveness: LivenessConfig,
) -> dict:
    """APCER and BPCER per window length."""
    out = {}
    for n in lengths:
        gw, ga = accepted_windows(genuine, n, anchors, threshold, policy, liveness)
        aw, aa = accepted_windows(attack, n, anchors, threshold, policy, liveness)
        out[n] = {
            "attack_windows": aw,
            "attack_accepted": aa,
            "apcer": aa / aw if aw else None,
            "genuine_windows": gw,
            "genuine_rejected": gw - ga,
            "bpcer": (gw - ga) / gw if gw else None,
        }
    return out
