"""The liveness gate on the real webcam recordings, over every window of frames a scan could see.

Person A is enrolled from the first 2 s of live-person-a.webm. The phone replay of the same person
(replay-person-a.webm) must never be accepted, whatever window of it a scan sees; the rest of the
live recording must still be accepted.
"""

import numpy as np
import pytest

from faceunlock.camera import open_source
from faceunlock.config import Config, replace
from faceunlock.evaluation.pad import accepted_windows, analyse_frames
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline

FPS = 30


@pytest.fixture(scope="module")
def analysed(video_dir):
    cfg = Config()
    card = load_card()
    pipeline = Pipeline(cfg, card, threads=1)
    live = list(open_source(str(video_dir / "live-person-a.webm")).frames())
    enrol = [r.embedding for r in analyse_frames(pipeline, live[: 2 * FPS : 6]) if r.embedding is not None]
    return {
        "cfg": cfg,
        "threshold": card.threshold(cfg.verify.security_level),
        "anchors": np.stack(enrol),
        "live": analyse_frames(pipeline, live[2 * FPS :]),
        "replay": analyse_frames(pipeline, open_source(str(video_dir / "replay-person-a.webm")).frames()),
    }


def windows(analysed, which, length, cfg=None):
    cfg = cfg or analysed["cfg"]
    return accepted_windows(
        analysed[which], length, analysed["anchors"], analysed["threshold"], cfg.verify, cfg.liveness
    )


def test_the_replay_is_the_same_person_so_only_liveness_stops_it(analysed):
    """Without the gate the replay would unlock: the test below is meaningful."""
    off = replace(analysed["cfg"], "liveness", enabled=False)
    total, accepted = windows(analysed, "replay", 30, off)
    assert accepted > 0.9 * total


@pytest.mark.parametrize("length", [8, 15, 30, 60, 150])
def test_replay_is_never_accepted_in_any_window(analysed, length):
    total, accepted = windows(analysed, "replay", length)
    assert total > 0 and accepted == 0


@pytest.mark.parametrize("length", [30, 60, 150])
def test_live_is_accepted_in_every_window(analysed, length):
    total, accepted = windows(analysed, "live", length)
    assert total > 0 and accepted == total


def test_no_attack_cue_fires_on_the_live_face(analysed):
    assert not any(r.cues for r in analysed["live"])
