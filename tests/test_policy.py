"""The decision policy on synthetic frames: consecutive frames, tracking, the liveness gate, lockout."""

import json

import numpy as np
import pytest

from faceunlock.config import Config, LivenessConfig, VerifyConfig
from faceunlock.lockout import Lockout
from faceunlock.pipeline import FrameResult
from faceunlock.verify import Scan
from faceunlock.vision.detect import Detection, Face

ANCHOR = np.ones((1, 128), np.float32) * 0.1


def frame(distance=0.1, box=(100, 100, 300, 300), cues=(), faces=1, sharp=100.0):
    emb = ANCHOR[0] + np.eye(128, dtype=np.float32)[0] * distance
    face = Face(box=box, landmarks=np.zeros((5, 2)), score=0.99)
    det = Detection(faces=[face] * faces, image_shape=(480, 640))
    return FrameResult(detection=det, face=face, chip=None, sharpness=sharp, embedding=emb, cues=list(cues))


def run(frames, window=8, consecutive=2, enabled=True):
    scan = Scan(
        "u",
        ANCHOR,
        0.4,
        VerifyConfig(consecutive=consecutive),
        LivenessConfig(window=window, enabled=enabled),
    )
    return any(scan.feed(f) for f in frames), scan


def test_match_needs_the_liveness_window_and_consecutive_frames():
    assert run([frame()] * 7)[0] is False
    matched, scan = run([frame()] * 8)
    assert matched and scan.liveness_summary() == "pass"


def test_a_far_frame_breaks_the_streak():
    frames = [frame(), frame(0.9)] * 10
    assert run(frames, window=1)[0] is False


def test_a_different_face_position_is_a_new_track():
    a, b = frame(box=(100, 100, 300, 300)), frame(box=(400, 100, 600, 300))
    assert run([a, b] * 10, window=2)[0] is False
    assert run([a, a] * 2, window=2)[0] is True


def test_one_attack_cue_blocks_the_whole_scan():
    frames = [frame(cues=["display-frame"])] + [frame()] * 50
    matched, scan = run(frames)
    assert not matched
    decision = scan.decision(False, False, 0.0)
    assert decision.decision == "no-match" and "presentation attack suspected" in decision.reason
    assert decision.liveness.startswith("fail: display-frame")


def test_policy_gates_small_blurry_and_multiple_faces():
    small = frame(box=(0, 0, 50, 50))
    blurry = frame(sharp=1.0)
    assert run([small] * 20, window=1)[0] is False
    assert run([blurry] * 20, window=1)[0] is False
    scan = Scan("u", ANCHOR, 0.4, VerifyConfig(multiple_faces="reject"), LivenessConfig(window=1))
    assert not any(scan.feed(frame(faces=2)) for _ in range(5))
    assert scan.skipped == {"multiple": 5}


def test_lockout_after_k_failures_then_recovery(tmp_path):
    policy = VerifyConfig(max_failures=3, lockout_seconds=60)
    guard = Lockout(tmp_path, policy)
    for _ in range(2):
        guard.record("alice", matched=False, now=1000)
        assert guard.blocked("alice", now=1000) is None
    guard.record("alice", matched=False, now=1000)
    assert "locked out for 60 more s" in guard.blocked("alice", now=1000)
    assert guard.blocked("alice", now=1061) is None
    assert oct((tmp_path / "state" / "alice.json").stat().st_mode & 0o777) == "0o600"


def test_a_match_resets_the_failure_count(tmp_path):
    guard = Lockout(tmp_path, VerifyConfig(max_failures=2))
    guard.record("bob", matched=False, now=0)
    guard.record("bob", matched=True, now=1)
    guard.record("bob", matched=False, now=2)
    assert guard.blocked("bob", now=2) is None


def test_password_recency_rule(tmp_path):
    guard = Lockout(tmp_path, VerifyConfig(password_max_age_hours=8))
    assert "password login is required" in guard.blocked("carol", now=100_000)
    guard.password_used("carol", now=100_000)
    assert guard.blocked("carol", now=100_000 + 3600) is None
    assert "password login is required" in guard.blocked("carol", now=100_000 + 9 * 3600)
    since_boot = Lockout(tmp_path, VerifyConfig(password_since_boot=True))
    assert "since boot" in since_boot.blocked("dave")


def test_corrupt_lockout_state_fails_closed(tmp_path):
    guard = Lockout(tmp_path, VerifyConfig())
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "erin.json").write_text("{not json")
    assert "unreadable" in guard.blocked("erin")
    (tmp_path / "state" / "erin.json").write_text(json.dumps({"failures": "x"}))
    assert "malformed" in guard.blocked("erin")


@pytest.mark.parametrize("bad", [{"failures": 0}, [], "x"])
def test_malformed_state_never_unblocks(tmp_path, bad):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "f.json").write_text(json.dumps(bad))
    assert Lockout(tmp_path, Config().verify).blocked("f") is not None


def test_only_judged_scans_count_toward_the_lockout(tmp_path):
    """Scans that saw no face (an empty desk, `su owner` tried again and again) never lock the owner out."""
    guard = Lockout(tmp_path, VerifyConfig(max_failures=2))
    for _ in range(10):
        guard.record("gina", matched=False, judged=False, now=0)
    assert guard.blocked("gina", now=0) is None
    guard.record("gina", matched=False, now=0)
    guard.record("gina", matched=False, now=0)
    assert "locked out" in guard.blocked("gina", now=0)


def test_repeated_lockouts_escalate_until_a_match(tmp_path):
    guard = Lockout(tmp_path, VerifyConfig(max_failures=1, lockout_seconds=60))
    now = 0.0
    for expected in (60, 120, 240, 480):
        guard.record("hal", matched=False, now=now)
        assert f"locked out for {expected} more s" in guard.blocked("hal", now=now)
        now += expected + 1
    guard.record("hal", matched=True, now=now)
    guard.record("hal", matched=False, now=now)
    assert "locked out for 60 more s" in guard.blocked("hal", now=now)


def test_lockout_is_capped_at_a_day(tmp_path):
    guard = Lockout(tmp_path, VerifyConfig(max_failures=1, lockout_seconds=3600))
    now = 0.0
    for _ in range(8):
        guard.record("ida", matched=False, now=now)
        now += 200_000
    guard.record("ida", matched=False, now=now)
    assert "locked out for 86400 more s" in guard.blocked("ida", now=now)
