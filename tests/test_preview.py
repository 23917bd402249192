"""`faceunlock test`: the live preview runs the real policy over real video, writes annotated frames
(--record, --snapshot) where there is no display, and records nothing: no lockout, no audit line."""

import json
import logging

import cv2
import numpy as np
import pytest

from faceunlock.cli import main
from faceunlock.config import Config
from faceunlock.errors import EXIT_ERROR
from faceunlock.liveness.card import load_liveness_card
from faceunlock.model import load_card
from faceunlock.overlay import GREEN, RED, draw
from faceunlock.preview import Frame, Preview
from faceunlock.vision.detect import Face


@pytest.fixture(scope="module")
def person_a(video_dir, tmp_path_factory):
    """live-person-a.webm: frames 0-29 to enrol from, frames 60-99 to preview."""
    root = tmp_path_factory.mktemp("person-a")
    enrol, shown = root / "enrol", root / "shown"
    enrol.mkdir()
    shown.mkdir()
    cap = cv2.VideoCapture(str(video_dir / "live-person-a.webm"))
    for i in range(100):
        ok, frame = cap.read()
        assert ok
        if i < 30:
            cv2.imwrite(str(enrol / f"frame{i:04d}.png"), frame)
        elif i >= 60:
            cv2.imwrite(str(shown / f"frame{i:04d}.png"), frame)
    store = root / "store"
    assert (
        main(["enroll", "--user", "alice", "--source", str(enrol), "--store", str(store), "--frames", "5"])
        == 0
    )
    return store, shown


def test_preview_writes_an_annotated_video_and_frames_and_records_nothing(
    person_a, tmp_path, capsys, caplog, monkeypatch
):
    store, shown = person_a
    monkeypatch.delenv("DISPLAY", raising=False)
    video, folder = tmp_path / "out.mp4", tmp_path / "frames"
    args = ["test", "--user", "alice", "--source", str(shown), "--store", str(store), "--threads", "1"]
    with caplog.at_level(logging.INFO):
        assert main([*args, "--record", str(video), "--snapshot", str(folder), "--json", "--fps", "10"]) == 0
    figures = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(figures) == 40
    assert "match" in {f["decision"] for f in figures}
    judged = [f for f in figures if "distance" in f]
    threshold = load_card().scan_threshold("balanced")
    assert judged and all(f["threshold"] == pytest.approx(threshold) for f in judged)
    assert {"liveness", "cues", "fps", "box", "faces"} <= set(figures[-1])
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40 and cap.get(cv2.CAP_PROP_FPS) == 10
    ok, first = cap.read()
    assert ok and first.shape == (480, 640, 3)
    jpegs = sorted(folder.glob("*.jpg"))
    assert len(jpegs) == 40 and list(folder.iterdir()) == [*folder.glob("*.jpg")]
    raw = cv2.imread(str(next(iter(sorted(shown.glob("*.png"))))))
    annotated = cv2.imread(str(jpegs[0]))
    assert annotated.shape == raw.shape and np.abs(annotated.astype(int) - raw).mean() > 1, (
        "frames are drawn on"
    )
    assert not (store / "state").exists(), "the preview never counts toward a lockout"
    assert "attempt user=" not in caplog.text, "the preview is not an attempt"


def test_a_replay_of_the_owner_is_shown_refused_in_red(person_a, video_dir, tmp_path, capsys):
    """The owner's face replayed on a screen matches, but liveness holds it back: the preview says
    "refused: looks like a photo or a screen" and draws the box red, not green and "scanning"."""
    store, _shown = person_a
    replay = tmp_path / "replay"
    replay.mkdir()
    cap = cv2.VideoCapture(str(video_dir / "replay-person-a.webm"))
    for i in range(90):
        ok, frame = cap.read()
        assert ok
        cv2.imwrite(str(replay / f"frame{i:04d}.png"), frame)
    video = tmp_path / "out.mp4"
    args = ["test", "--user", "alice", "--source", str(replay), "--store", str(store), "--threads", "1"]
    assert main([*args, "--json", "--record", str(video)]) == 0
    figures = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    decisions = [f["decision"] for f in figures]
    assert "match" not in decisions
    refused = [k for k, f in enumerate(figures) if f["decision"] == "refused"]
    assert len(refused) >= 10, decisions
    assert {figures[k]["reason"] for k in refused} == {"looks like a photo or a screen"}
    assert all(figures[k]["liveness"] in ("doubt", "fail") for k in refused)
    cap = cv2.VideoCapture(str(video))
    for _ in range(refused[-1] + 1):
        ok, img = cap.read()
        assert ok
    x1, y1, x2, y2 = (int(round(v)) for v in figures[refused[-1]]["box"])
    edge = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)[(y1 + y2) // 2, max(0, x1 - 2) : x1 + 3].astype(int)
    assert np.abs(edge - np.array(RED)).sum(axis=1).min() < 90, "the face box is red"


def test_preview_without_a_display_needs_an_output(person_a, monkeypatch, capsys):
    store, shown = person_a
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["test", "--source", str(shown), "--store", str(store)]) == EXIT_ERROR
    assert "no display: write the annotated frames with --record" in capsys.readouterr().err


def test_overlay_colours_follow_the_distance():
    face = Face(
        (100, 100, 200, 220), np.array([[130, 150], [170, 150], [150, 175], [135, 195], [165, 195]]), 0.99
    )
    rgb = np.zeros((480, 640, 3), np.uint8)
    for distance, colour in ((0.2, GREEN), (0.6, RED)):
        frame = Frame(faces=[face], face=face, distance=distance, threshold=0.43, level="balanced")
        img = draw(rgb, frame)
        assert tuple(img[160, 100]) == colour, "the box's left edge"
        assert tuple(img[150, 130]) == colour, "a landmark"
        assert not rgb.any(), "the input frame is not drawn on"


def test_preview_scans_end_and_restart_without_recording(person_a):
    """Back-to-back scans: a scan that times out shows its decision, then the next scan starts."""
    from faceunlock.pipeline import FrameResult
    from faceunlock.vision.detect import Detection

    now = [0.0]
    cfg = Config()
    card = load_liveness_card()
    preview = Preview(
        cfg, "alice", np.zeros((1, 128), np.float32), 0.43, clock=lambda: now[0], live_card=card
    )
    empty = FrameResult(detection=Detection([], (480, 640)))
    first = preview.step(empty)
    assert first.decision == "scanning" and first.distance is None
    now[0] = cfg.verify.timeout + 0.1
    ended = preview.step(empty)
    assert ended.decision == "no-face" and preview.decisions == ["no-face"]
    now[0] += 5
    assert preview.step(empty).decision == "scanning"
    assert Preview(cfg, "bob", None, 0.43, live_card=card).step(empty).decision == "not-enrolled"
