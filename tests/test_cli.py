"""The `faceunlock` command end to end on real video and real faces, and on bad input."""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceunlock.cli import main
from faceunlock.errors import EXIT_ERROR, EXIT_NO_MATCH

FPS = 30


@pytest.fixture(scope="module")
def video_frames(video_dir, tmp_path_factory):
    """live-person-a.webm split into its first 2 seconds (enrolment) and the rest (verification)."""
    root = tmp_path_factory.mktemp("frames")
    first, rest = root / "first2s", root / "rest"
    first.mkdir()
    rest.mkdir()
    cap = cv2.VideoCapture(str(video_dir / "live-person-a.webm"))
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.imwrite(str((first if i < 2 * FPS else rest) / f"frame{i:04d}.png"), frame)
        i += 1
    assert i == 214
    return first, rest


@pytest.fixture(scope="module")
def enrolled_once(video_frames, tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "templates"
    first, _ = video_frames
    assert (
        main(["enroll", "--user", "alice", "--source", str(first), "--store", str(store), "--frames", "10"])
        == 0
    )
    return store


@pytest.fixture
def enrolled(enrolled_once, tmp_path):
    """A private copy of the enrolled store, so one test's failed scans cannot lock out another's."""
    store = tmp_path / "templates"
    store.mkdir(mode=0o700)
    shutil.copy2(enrolled_once / "alice.json", store / "alice.json")
    return store


def verify(capsys, store, source, user="alice", extra=()):
    base = ["verify", "--user", user, "--source", str(source), "--store", str(store), "--json"]
    code = main([*base, "--threads", "1", "--timeout", "60", *extra])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    result = json.loads(out[0])
    for key in ("user", "decision", "distance", "threshold", "frames", "elapsed_ms", "reason"):
        assert key in result
    assert (code == 0) == (result["decision"] == "match")
    return code, result


def test_enrolment_file(enrolled):
    path = enrolled / "alice.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(enrolled.stat().st_mode & 0o777) == "0o700"
    raw = json.loads(path.read_text())
    assert len(raw["enrolments"][0]["embeddings"]) == 10


def test_live_frames_not_used_for_enrolment_match(enrolled, video_frames, capsys):
    _, rest = video_frames
    code, result = verify(capsys, enrolled, rest)
    assert result["decision"] == "match" and code == 0
    assert result["distance"] < result["threshold"]


def test_twenty_other_people_do_not_match(enrolled, lfw_dir, tmp_path, capsys):
    """Every one of 20 LFW photos is judged (sharpness gate off, as LFW is soft) and rejected, but for
    a photo of two faces of similar size, which is not judged at all; shown as a
    stream of 6 copies, at least a window's worth of frames is fused before the liveness check ends
    the scan as a still picture, and the fused score stays over the threshold (a photo of too low a
    quality to fuse has no score)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[verify]\nmin_sharpness = 0.0\nmax_failures = 100\n")
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())[::250][:20]
    assert len(people) == 20
    scored = 0
    for person in people:
        photo = sorted(person.glob("*.jpg"))[0]
        stream = tmp_path / person.name
        stream.mkdir()
        for i in range(6):
            (stream / f"f{i}.jpg").write_bytes(photo.read_bytes())
        code, result = verify(capsys, enrolled, stream, extra=("--config", str(cfg)))
        if result["decision"] == "no-face":
            assert result["skipped"].get("multiple"), "only two faces of similar size go unjudged"
            continue
        assert code == 1 and result["decision"] == "no-match", (person.name, result)
        assert result["judged"] >= 3, (person.name, result)
        if result["distance"] is not None:
            scored += 1
            assert result["distance"] >= result["threshold"], (person.name, result)
    assert scored >= 15


def test_other_people_as_a_video_stream_do_not_match(enrolled, lfw_dir, tmp_path, capsys):
    """Many frames of another person's face: the consecutive-frames rule cannot rescue an impostor."""
    photos = sorted((lfw_dir / "George_W_Bush").glob("*.jpg"))[:6]
    for i, photo in enumerate(photos):  # six different photos: identical frames end a scan at once
        (tmp_path / f"f{i}.jpg").write_bytes(photo.read_bytes())
    code, result = verify(capsys, enrolled, tmp_path)
    assert result["decision"] == "no-match" and result["judged"] == 6


def test_failed_scans_lock_the_owner_out_until_the_lockout_ends(
    enrolled, video_frames, lfw_dir, tmp_path, capsys
):
    """The lockout through the whole attempt (faceunlock/attempt.py), as the daemon and the CLI run it:
    judged failures are counted, and once max_failures is reached even the owner's own live face is
    refused unscanned; with the lockout over, the same face matches."""
    _, rest = video_frames
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    for i, photo in enumerate(sorted((lfw_dir / "George_W_Bush").glob("*.jpg"))[:6]):
        (stranger / f"f{i}.jpg").write_bytes(photo.read_bytes())
    cfg = tmp_path / "c.toml"
    cfg.write_text("[verify]\nmax_failures = 2\nlockout_seconds = 600\n")
    for _ in range(2):
        code, result = verify(capsys, enrolled, stranger, extra=("--config", str(cfg)))
        assert result["decision"] == "no-match" and result["judged"] > 0
    code, result = verify(capsys, enrolled, rest, extra=("--config", str(cfg)))
    assert code != 0 and result["decision"] == "locked-out", result
    assert "locked out for" in result["reason"] and result["frames"] == 0
    state = enrolled / "state" / "alice.json"
    saved = json.loads(state.read_text())
    assert saved["locked_until"] > 0 and saved["lockouts"] == 1
    saved["locked_until"] = 0.0
    state.write_text(json.dumps(saved))
    code, result = verify(capsys, enrolled, rest, extra=("--config", str(cfg)))
    assert code == 0 and result["decision"] == "match", result


def test_list_remove_clear(enrolled, video_frames, tmp_path, capsys, monkeypatch):
    store = tmp_path / "s"
    first, _ = video_frames
    assert (
        main(["enroll", "--user", "bob", "--source", str(first), "--store", str(store), "--frames", "3"]) == 0
    )
    assert main(["list", "--user", "bob", "--store", str(store)]) == 0
    assert "default" in capsys.readouterr().out
    assert main(["remove", "--user", "bob", "--label", "nope", "--store", str(store), "-y"]) == EXIT_ERROR
    assert "no enrolment labelled 'nope'" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(["clear", "--user", "bob", "--store", str(store)]) == EXIT_NO_MATCH
    assert "[y/N]" in capsys.readouterr().err and (store / "bob.json").exists(), "answered n: kept"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["remove", "--user", "bob", "--label", "default", "--store", str(store)]) == EXIT_NO_MATCH
    assert (store / "bob.json").exists(), "no answer: kept"
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["clear", "--user", "bob", "--store", str(store)]) == 0
    assert "removed all enrolments of bob" in capsys.readouterr().out
    code, result = verify(capsys, store, first, user="bob")
    assert result["decision"] == "not-enrolled" and code == EXIT_ERROR


def test_enrolling_an_account_that_does_not_exist_is_refused(capsys):
    """The system store holds faces of this machine's accounts; a --store (a rig) may hold any name."""
    assert main(["enroll", "--user", "zz_not_a_user", "--source", "/nonexistent"]) == EXIT_ERROR
    assert "there is no account 'zz_not_a_user' on this machine" in capsys.readouterr().err


def test_a_missing_source_is_an_error_not_a_refusal(enrolled, capsys):
    """verify's exit status tells "not you" (1) from "something is broken" (3), in plain words."""
    code = main(["verify", "--user", "alice", "--source", "nosuch.mp4", "--store", str(enrolled)])
    captured = capsys.readouterr()
    assert code == EXIT_ERROR and code != EXIT_NO_MATCH
    assert captured.err.startswith("faceunlock: error: ") and "nosuch.mp4" in captured.err
    assert "distance -" not in captured.err + captured.out and "threshold None" not in captured.err


def test_enrol_with_no_usable_face_fails_clearly(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    store = tmp_path / "s"
    assert (
        main(["enroll", "--user", "carol", "--source", str(frames), "--store", str(store), "--frames", "10"])
        == EXIT_ERROR
    )
    err = capsys.readouterr().err
    assert "got 0 of 10 usable frames" in err and "no face found" in err
    assert not (store / "carol.json").exists()


def unchanged(store: Path):
    """The stored templates (lockout state beside them may change)."""
    return {p.name: p.read_bytes() for p in store.glob("*.json")}


def bad_source(kind: str, folder: Path) -> str:
    """Write one kind of bad source into folder and return its --source value."""
    if kind == "missing":
        return str(folder / "missing-dir")
    if kind == "no-camera":
        return "/dev/video63"
    path = folder / {"corrupt": "corrupt.jpg", "empty-video": "empty.webm", "unsupported": "x.gif"}[kind]
    path.write_bytes({"corrupt": os.urandom(3000), "empty-video": b"", "unsupported": b"GIF89a"}[kind])
    return str(path)


@pytest.mark.parametrize(
    "kind,message",
    [
        ("missing", "no such file or folder"),
        ("no-camera", "no such camera device: /dev/video63"),
        ("corrupt", "cannot decode image"),
        ("empty-video", "video file is empty"),
        ("unsupported", "unsupported source format '.gif'"),
    ],
)
def test_bad_sources_never_match_and_lose_nothing(enrolled, tmp_path, capsys, kind, message):
    before = unchanged(enrolled)
    code, result = verify(capsys, enrolled, bad_source(kind, tmp_path))
    assert code == EXIT_ERROR and result["decision"] == "error"
    assert message in result["reason"]
    assert unchanged(enrolled) == before


def test_a_corrupt_video_is_one_line_of_error_without_library_noise(enrolled, tmp_path):
    video = tmp_path / "corrupt.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(50_000))
    for command in ("verify", "enroll"):
        store = enrolled if command == "verify" else tmp_path / "new"
        cmd = [sys.executable, "-m", "faceunlock", command, "--user", "alice", "--source", str(video)]
        proc = subprocess.run([*cmd, "--store", str(store)], capture_output=True, text=True, timeout=120)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        ours = ("faceunlock: ", "Enrolling alice: ")
        assert proc.returncode == EXIT_ERROR and all(line.startswith(ours) for line in lines), proc.stderr
        assert lines[-1] == f"faceunlock: error: cannot open video file {video}: unsupported or corrupt"


def test_truncated_enrolment_file(enrolled, video_frames, tmp_path, capsys):
    store = tmp_path / "s"
    store.mkdir(mode=0o700)
    data = (enrolled / "alice.json").read_bytes()
    (store / "alice.json").write_bytes(data[: len(data) // 2])
    os.chmod(store / "alice.json", 0o600)
    code, result = verify(capsys, store, video_frames[1])
    assert code == EXIT_ERROR and result["decision"] == "error"
    assert "corrupt or truncated" in result["reason"]
    first, _ = video_frames
    assert main(["enroll", "--user", "alice", "--source", str(first), "--store", str(store)]) == EXIT_ERROR
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (store / "alice.json").read_bytes() == data[: len(data) // 2]


def test_bad_config_value(enrolled, video_frames, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[verify]\nconsecutive = 0\n")
    code, result = verify(capsys, enrolled, video_frames[1], extra=("--config", str(cfg)))
    assert code == EXIT_ERROR and result["decision"] == "error"
    assert "verify.consecutive: 0 is out of range" in result["reason"]


def test_errors_are_one_line_without_traceback(tmp_path):
    """A real process: a missing camera gives a one-line error, exit 1, and no traceback."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "faceunlock.cli",
            "enroll",
            "--user",
            "dave",
            "--source",
            "/dev/video62",
            "--store",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_ERROR
    assert "Traceback" not in proc.stderr
    assert "faceunlock: error: no such camera device: /dev/video62" in proc.stderr
    assert not (tmp_path / "s" / "dave.json").exists()


def test_camera_that_disappears_mid_scan(enrolled, video_dir, tmp_path, monkeypatch, capsys):
    """A camera that stops delivering frames mid-scan (a real decoder fed a cut-off stream) is an
    error naming the problem: no match, and nothing stored is touched."""
    from faceunlock import runtime
    from faceunlock.camera import CameraSource, FrameSource, SourceOptions

    cut = tmp_path / "cut.webm"
    data = (video_dir / "live-person-a.webm").read_bytes()
    cut.write_bytes(data[: len(data) // 30])

    def vanishing_camera(cfg, open_timeout=None):
        cam = CameraSource.__new__(CameraSource)
        FrameSource.__init__(cam, SourceOptions())
        cam.description = "camera /dev/video0"
        cam.cap = cv2.VideoCapture(str(cut))
        return cam

    monkeypatch.setattr(runtime, "open_camera", vanishing_camera)
    before = unchanged(enrolled)
    code, result = verify(capsys, enrolled, "/dev/video0")
    assert code == EXIT_ERROR and result["decision"] == "error"
    assert "camera /dev/video0 stopped delivering frames (disconnected?)" in result["reason"]
    assert unchanged(enrolled) == before


def test_a_look_of_someone_else_is_not_added_without_a_yes(
    enrolled, video_frames, lfw_dir, tmp_path, capsys, monkeypatch
):
    """Another person's face offered as a second look of alice: said, asked, and refused on no;
    a look of alice herself goes in without a question."""
    other = tmp_path / "other"
    other.mkdir()
    for photo in sorted((lfw_dir / "George_W_Bush").glob("*.jpg"))[:12]:
        (other / photo.name).write_bytes(photo.read_bytes())
    args = ["enroll", "--user", "alice", "--store", str(enrolled), "--frames", "3", "--threads", "1"]
    cfg = tmp_path / "c.toml"
    cfg.write_text("[verify]\nmin_sharpness = 0.0\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main([*args, "--label", "other", "--source", str(other), "--config", str(cfg)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "does not resemble the enrolment of alice" in err and "[y/N]" in err
    assert main(["list", "--user", "alice", "--store", str(enrolled)]) == 0
    assert "other" not in capsys.readouterr().out
    assert main([*args, "--label", "other", "--source", str(other), "--config", str(cfg), "--yes"]) == 0
    assert "other" in (enrolled / "alice.json").read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main([*args, "--label", "again", "--source", str(video_frames[0])]) == 0
    assert "[y/N]" not in capsys.readouterr().err, "alice's own face is added without a question"


def test_help_lists_a_persons_commands_first(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    headings = [text.index(h) for h in ("\nUse:", "\nAdminister:", "\nMeasure and develop:")]
    assert headings == sorted(headings)
    for command, heading in (("enroll", 0), ("doctor", 0), ("config", 1), ("daemon", 1), ("train", 2)):
        at = text.index(f"\n  {command} ")
        assert headings[heading] < at and all(at < h for h in headings[heading + 1 :]), command
    assert "usage: faceunlock [-h] [--version] [--debug] COMMAND ..." in text
