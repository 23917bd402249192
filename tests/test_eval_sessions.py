"""`faceunlock eval sessions`: enrol from one recording session, scan in the later ones, on the shared
nuaa-live frames (7 people, several days and lights, others behind them)."""

import json

import numpy as np
import pytest

from faceunlock.cli import main
from faceunlock.evaluation.sessions import people, with_look
from faceunlock.store import Anchors


def test_every_later_session_is_one_scan_at_each_level(nuaa_dir, tmp_path, capsys):
    out = tmp_path / "sessions.json"
    assert main(["eval", "sessions", "--root", str(nuaa_dir), "--threads", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    sessions = sum(len(p.sessions) for p in people(nuaa_dir))
    assert result["people"] == 7 and result["enrolment_refused"] == {}, "everyone enrols, others behind"
    levels = result["levels"]
    assert {r["scans"] for r in levels.values()} == {sessions}
    assert levels["strict"]["matched"] <= levels["balanced"]["matched"] <= levels["fast"]["matched"]
    assert levels["balanced"]["matched"] >= sessions - 1, levels["balanced"]["missed"]
    assert all(set(row) >= {"strict", "balanced", "fast"} for row in result["scans"])
    text = capsys.readouterr().out
    assert f"balanced threshold {levels['balanced']['threshold']:.4f}: " in text


def test_a_learned_look_is_scored_beside_the_others():
    first = np.ones((3, 4), np.float32).view(Anchors)
    first.looks = (np.asarray(first),)
    joined = with_look(first, np.zeros((2, 4), np.float32))
    assert joined.shape == (5, 4) and len(joined.looks) == 2
    assert with_look(np.ones((3, 4), np.float32), np.zeros((1, 4))).looks[0].shape == (3, 4)


def test_light_changes_are_applied_to_the_scans_only(data_dir):
    """One held-out live clip, enrolled as filmed, scanned once under each light at each level."""
    from faceunlock.config import Config
    from faceunlock.evaluation.lights import LIGHTS, relit
    from faceunlock.evaluation.sessions import evaluate_lights
    from faceunlock.evaluation.shared_data import recorded_clips
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline

    frame = np.full((2, 2, 3), 100, np.uint8)
    assert relit(frame, LIGHTS["as filmed"]) is frame
    assert relit(frame, LIGHTS["dim"]).max() == 35 and relit(frame, LIGHTS["bright"]).min() == 180
    assert relit(frame, LIGHTS["flat, low contrast"]).min() == 115
    clip = next(c for c in recorded_clips(data_dir, "report") if c.live)
    pipeline = Pipeline(Config(), load_card(), threads=1)
    result = evaluate_lights(pipeline, Config(), load_card(), [clip], starts=1)
    assert result["enrolment_refused"] == {} and result["too_short"] == {}
    assert set(result["lights"]) == set(LIGHTS)
    assert all(r["scans"] == 1 for levels in result["lights"].values() for r in levels.values())
    assert result["lights"]["as filmed"]["balanced"]["matched"] == 1, result["balanced_missed"]
    for levels in result["lights"].values():
        for r in levels.values():
            assert 0 <= r["bpcer"] <= r["frr"], "liveness refusals are some of the misses"
    assert result["lights"]["as filmed"]["balanced"]["bpcer"] == 0
    short = evaluate_lights(pipeline, Config(), load_card(), [clip], starts=1, length=100_000)
    assert short["enrolment_refused"] == {}, "the enrolment worked; the clip is only too short to scan"
    assert short["too_short"][clip.name].endswith("fewer than a scan's 100000")
    assert all(r["scans"] == 0 for levels in short["lights"].values() for r in levels.values())
    with pytest.raises(ValueError, match="frame step must be at least 1"):
        evaluate_lights(None, Config(), load_card(), [clip], step=0)


def test_a_relit_clip_for_fitting_changes_its_frames_and_name_not_its_enrolment():
    from faceunlock.evaluation.lights import LIGHTS, relit
    from faceunlock.evaluation.liveness import Clip
    from faceunlock.evaluation.sessions import LIGHT_NAMES, relit_clip

    frames = [np.full((2, 2, 3), v, np.uint8) for v in (60, 100)]
    clip = Clip("c", "replay-phone", "p", "fit", frames=lambda: iter(frames), enrol=lambda: iter(frames))
    assert set(LIGHT_NAMES) == {"dim", "bright", "warm", "flat"}
    assert LIGHT_NAMES["warm"] == "warm lamp" and LIGHT_NAMES["flat"] == "flat, low contrast"
    lit = relit_clip(clip, "bright")
    assert (lit.name, lit.label, lit.person) == ("c@bright", "replay-phone", "p")
    assert [f.tolist() for f in lit.frames()] == [relit(f, LIGHTS["bright"]).tolist() for f in frames]
    assert [f.min() for f in lit.frames()] == [108, 180]
    assert list(lit.enrol()) == frames
    with pytest.raises(ValueError, match="no light change named 'as filmed'"):
        relit_clip(clip, "as filmed")


def test_the_fit_refuses_an_unknown_light_by_name():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "fit_liveness.py"
    for value in ("sunny", "bright,bright", "flat, low contrast"):
        proc = subprocess.run(
            [sys.executable, str(script), "--lights", value, "--data", "/nonexistent"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and f"--lights {value!r}" in proc.stderr, (value, proc.stderr)
        assert "dim, bright, warm, flat" in proc.stderr


def test_the_light_options_are_refused_without_lights(capsys):
    assert main(["eval", "sessions", "--attacks", "--metering"]) == 3
    assert "--attacks and --metering work on the light changes: add --lights" in capsys.readouterr().err
