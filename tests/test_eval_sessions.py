"""`faceunlock eval sessions`: enrol from one recording session, scan in the later ones, on the shared
nuaa-live frames (7 people, several days and lights, others behind them)."""

import json

import numpy as np

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
