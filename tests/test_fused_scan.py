"""The fused policy on real webcam video: person A, enrolled from the first 2 s of their recording, is
matched by every 1 s window of the rest; no window of person C's recording matches A, nor any window
of another person (live-arun) does.

Frames are analysed once (the other people's at every second frame, to keep the test short); windows
are then replayed through Scan, with the model card's shipped rule, window and attempt-level balanced
threshold, liveness on.
"""

import numpy as np
import pytest

from faceunlock.camera import open_source
from faceunlock.config import Config
from faceunlock.evaluation.liveness import analyse
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline
from faceunlock.verify import Scan

FPS = 30
WINDOW = FPS  # one second of frames per simulated scan


@pytest.fixture(scope="module")
def analysed(video_dir):
    cfg, card = Config(), load_card()
    pipeline = Pipeline(cfg, card, threads=1)

    def frames(name, step=1, limit=None):
        return analyse(pipeline, list(open_source(str(video_dir / name)).frames())[:limit:step])

    live = frames("live-person-a.webm")
    enrol = [r.embedding for r in live[: 2 * FPS : 6] if r.embedding is not None]
    return {
        "cfg": cfg,
        "card": card,
        "live_card": pipeline.live_card,
        "anchors": np.stack(enrol),
        "genuine": live[2 * FPS :],
        "person-c": frames("live-person-c.mp4", step=2, limit=240),
        "arun": frames("more/live-arun.mp4", step=2, limit=180),
    }


def scans(results, analysed):
    """Decisions of a scan over every 1 s window (half a second apart)."""
    card, cfg = analysed["card"], analysed["cfg"]
    out = []
    for start in range(0, len(results) - WINDOW + 1, WINDOW // 2):
        scan = Scan(
            "a",
            analysed["anchors"],
            card.scan_threshold(cfg.verify.security_level),
            cfg.verify,
            cfg.liveness,
            analysed["live_card"],
            rule=card.attempt.rule,
            window=card.attempt.probe,
        )
        matched = any(scan.feed(r) for r in results[start : start + WINDOW])
        out.append((matched, scan.best))
    return out


def test_the_owner_matches_in_every_window(analysed):
    decisions = scans(analysed["genuine"], analysed)
    assert len(decisions) >= 8
    assert all(matched for matched, _ in decisions), decisions


@pytest.mark.parametrize("other", ["person-c", "arun"])
def test_another_person_never_matches(analysed, other):
    decisions = scans(analysed[other], analysed)
    assert len(decisions) >= 4
    assert not any(matched for matched, _ in decisions)
    threshold = analysed["card"].scan_threshold(analysed["cfg"].verify.security_level)
    fused = [best for _, best in decisions if best is not None]
    assert fused and min(fused) > threshold, (min(fused), threshold)
