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
