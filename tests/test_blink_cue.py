"""The blink cue: the eyes' openness from the face mesh, frame by frame, and how deep it dips over a
track (faceunlock.liveness.score, feature ``blink``), on a real webcam blink and on a still of the
same face. It is a candidate of the liveness fit, measured there; see models/README.md."""

import itertools

import numpy as np
import pytest

from faceunlock.liveness.cues import FrameCues
from faceunlock.liveness.score import BLINK_FRAMES, Evidence

BLINK_AT = 135
"""live-person-a.webm: a blink at frames 135-136 (4.5 s), seen on the eye openness series."""


def evidence_of(openness) -> Evidence:
    evidence = Evidence()
    for k, value in enumerate(openness):
        evidence.add(FrameCues(pad={0: 1.0}, eyes=value), 0, k > 0)
    return evidence


def test_the_blink_feature_is_the_dip_under_the_median():
    assert evidence_of([0.30, 0.31, 0.29, 0.12, 0.30]).features()["blink"] == pytest.approx(0.6)
    assert evidence_of([0.30, 0.12]).features()["blink"] is None, f"fewer than {BLINK_FRAMES} frames"
    assert evidence_of([0.30, None, 0.30, None, 0.29]).features()["blink"] == pytest.approx(1 - 0.29 / 0.3)
    assert evidence_of([None] * 10).features()["blink"] is None, "no face mesh, no evidence"


def blink_over(pipeline, frames) -> float:
    evidence, previous = Evidence(), None
    for k, rgb in enumerate(frames):
        result = pipeline.analyse(rgb, previous=previous, networks=pipeline.networks_for(k))
        evidence.add(result.live, k % 2, previous is not None)
        previous = result
    assert len(evidence.eyes) >= 0.9 * len(frames), "the mesh measures the eyes of a plain webcam face"
    return evidence.features()["blink"]


def test_a_real_blink_dips_the_eyes_and_a_still_of_the_same_face_does_not(pad_cfg, video_dir):
    from faceunlock.evaluation.shared_data import segment
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline

    pipeline = Pipeline(pad_cfg, load_card(), threads=1, all_cues=True)
    assert pipeline.landmarker is not None
    frames = list(segment(video_dir / "live-person-a.webm", BLINK_AT - 15, BLINK_AT + 15)())
    before = list(itertools.islice(frames, 0, 12))
    rng = np.random.default_rng(3)
    still = [
        np.clip(frames[0] + rng.normal(0, 2, frames[0].shape), 0, 255).astype(np.uint8) for _ in range(30)
    ]
    over_blink, without, of_still = (
        blink_over(pipeline, frames),
        blink_over(pipeline, before),
        blink_over(pipeline, still),
    )
    assert over_blink > 0.3, over_blink
    assert without < 0.2 and of_still < 0.1, (without, of_still)
