"""The decision policy on synthetic frames: consecutive frames, tracking, the scored liveness gate,
lockout."""

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from service_harness import need_root

from faceunlock.config import Config, LivenessConfig, VerifyConfig
from faceunlock.errors import StoreError
from faceunlock.liveness.card import Fusion, LivenessCard, Network
from faceunlock.liveness.cues import FrameCues
from faceunlock.lockout import Lockout
from faceunlock.pipeline import FrameResult
from faceunlock.verify import Scan, scan
from faceunlock.vision.align import TEMPLATE
from faceunlock.vision.detect import Detection, Face

ANCHOR = np.ones((1, 128), np.float32) * 0.1
# A card whose score is sigmoid(mean network log-odds): easy to steer from the test frames.
CARD = LivenessCard(
    name="test",
    networks=tuple(Network(f"n{i}", 2.7, Path("x.onnx"), "", Path("x.pth"), "") for i in range(2)),
    fusion=Fusion(features=("pad",), weights=(1.0,), mean=(0.0,), std=(1.0,), bias=0.0),
    thresholds={"strict": 0.95, "balanced": 0.9, "fast": 0.8},
    attack_below=0.1,
    min_frames=4,
    path=Path("test.json"),
)
LIVE, ATTACK, UNSURE = 5.0, -5.0, 0.0


def frame(distance=0.1, box=(100, 100, 300, 300), pad=LIVE, faces=1, sharp=100.0, frozen=False):
    emb = ANCHOR[0] + np.eye(128, dtype=np.float32)[0] * distance
    landmarks = np.array(box[:2]) + TEMPLATE * (box[2] - box[0]) / 150  # a frontal face filling the box
    face = Face(box=box, landmarks=landmarks, score=0.99)
    det = Detection(faces=[face] * faces, image_shape=(480, 640))
    live = FrameCues(pad={0: pad, 1: pad}, frozen=frozen, face_shift=(0.01, 0.0), ring_shift=(0.0, 0.0))
    return FrameResult(detection=det, face=face, chip=None, sharpness=sharp, embedding=emb, live=live)


def run(frames, window=4, consecutive=2, enabled=True, level="balanced"):
    scan = Scan(
        "u",
        ANCHOR,
        0.4,
        VerifyConfig(consecutive=consecutive, security_level=level),
        LivenessConfig(window=window, enabled=enabled),
        CARD if enabled else None,
    )
    for n, f in enumerate(frames, 1):
        if scan.feed(f):
            return scan.outcome, n, scan
    return None, len(frames), scan


def test_match_needs_the_liveness_window_and_consecutive_frames():
    assert run([frame()] * 3)[0] is None
    outcome, n, scan = run([frame()] * 20)
    assert outcome == "match" and n == 4 and scan.liveness_summary() == "pass"
    assert run([frame()] * 20, window=8)[1] == 8


def test_a_far_frame_breaks_the_streak():
    frames = [frame(), frame(0.9)] * 10
    assert run(frames, window=1)[0] is None


def test_a_different_face_position_is_a_new_track():
    a, b = frame(box=(100, 100, 300, 300)), frame(box=(400, 100, 600, 300))
    assert run([a, b] * 10, window=2)[0] is None
    assert run([a, a] * 4, window=2)[0] == "match"


def test_a_clear_attack_ends_the_scan_at_once():
    outcome, n, scan = run([frame(pad=ATTACK)] * 50)
    assert outcome == "attack" and n == CARD.min_frames
    decision = scan.decision(False, False, 0.0)
    assert decision.decision == "no-match" and decision.reason.startswith("presentation attack: score")
    assert decision.liveness == "fail" and decision.liveness_score < CARD.attack_below
    assert decision.liveness_cues == {"pad": ATTACK}


def test_doubt_waits_and_never_matches():
    outcome, n, scan = run([frame(pad=UNSURE)] * 50)
    assert outcome is None and n == 50
    decision = scan.decision(False, True, 0.0)
    assert decision.decision == "no-match" and decision.liveness == "doubt"
    assert "judged live" in decision.reason and "doubt" in decision.reason


def test_the_level_sets_the_liveness_threshold():
    borderline = 2.5  # sigmoid: 0.924, over balanced (0.9), under strict (0.95)
    assert run([frame(pad=borderline)] * 20, level="balanced")[0] == "match"
    assert run([frame(pad=borderline)] * 20, level="strict")[0] is None


def test_a_long_live_track_cannot_vouch_for_the_frames_that_match():
    """A live stranger (far from the template) fills the track's evidence, then a picture of the
    owner (a doubtful network score) takes the same box: the whole track still scores live, its
    last frames do not, so nothing matches; the owner's own live face, all along, still does."""
    spliced = [frame(distance=0.9)] * 30 + [frame(pad=-1.0)] * 20
    outcome, _, scan = run(spliced)
    assert outcome is None and scan.liveness_summary() == "doubt"
    assert "over the last 4" in scan.verdict.reason and scan.verdict.score < CARD.threshold("balanced")
    assert run([frame(distance=0.9)] * 30 + [frame()] * 20)[0] == "match"


def test_a_live_face_elsewhere_cannot_vouch_for_a_doubtful_one():
    """Liveness evidence belongs to one tracked face: a live stranger in one place, then a doubtful
    picture of the owner in another, starts over, and the picture alone never scores live."""
    a, b = (100, 100, 300, 300), (400, 100, 600, 300)
    frames = [frame(distance=0.9, box=a)] * 10 + [frame(box=b, pad=UNSURE)] * 20
    outcome, _, scan = run(frames)
    assert outcome is None and scan.liveness_summary() == "doubt"
    assert run([frame(distance=0.9, box=a)] * 10 + [frame(box=b)] * 20)[0] == "match"


def test_only_the_face_judged_live_offers_frames_to_learn_from():
    """A doubtful near miss (its frames the scan's best), then another face judged live: the scan
    ends "pass", but the near miss was never judged live, so nothing may be learned; the same near
    miss judged live on its own track may be."""
    a, b = (100, 100, 300, 300), (400, 100, 600, 300)
    _, _, scan = run([frame(distance=0.3, box=a, pad=UNSURE)] * 8 + [frame(distance=0.95, box=b)] * 8)
    assert scan.liveness_summary() == "pass" and scan.best < 0.4
    assert scan.learnable() is None
    _, _, alone = run([frame(distance=0.95, box=b)] * 8 + [frame(distance=0.5, box=a)] * 8)
    assert alone.liveness_summary() == "pass" and alone.learnable() is not None


def test_identical_frames_are_a_still_picture():
    """Issue 14, point 6: eight copies of one live frame must not match."""
    frames = [frame()] + [frame(frozen=True)] * 7
    outcome, n, scan = run(frames, window=1, consecutive=1)
    assert outcome == "attack" and n == 3
    assert "still picture" in scan.decision(False, False, 0.0).reason


def test_liveness_off_matches_on_the_face_alone():
    outcome, n, scan = run([frame(pad=ATTACK)] * 5, enabled=False)
    assert outcome == "match" and n == 2 and scan.liveness_summary() == "off"


def test_liveness_on_needs_a_card():
    with pytest.raises(ValueError, match="no liveness model card"):
        Scan("u", ANCHOR, 0.4, VerifyConfig(), LivenessConfig(), None)


def test_policy_gates_small_blurry_and_multiple_faces():
    small = frame(box=(0, 0, 50, 50))
    blurry = frame(sharp=1.0)
    assert run([small] * 20, window=1)[0] is None
    assert run([blurry] * 20, window=1)[0] is None
    scan = Scan("u", ANCHOR, 0.4, VerifyConfig(multiple_faces="reject"), LivenessConfig(window=1), CARD)
    assert not any(scan.feed(frame(faces=2)) for _ in range(5))
    assert scan.skipped == {"multiple": 5}


def test_only_frames_that_can_decide_are_embedded():
    """Liveness needs 8 frames of the track: with 2 windows of 1 frame, the first 6 are watched and
    not embedded; with 2 windows of 3 frames, the first 2."""
    for window, skipped in ((1, 6), (3, 2)):
        fusion = {"rule": "centroid", "window": window} if window > 1 else {}
        state = Scan("u", ANCHOR, 0.4, VerifyConfig(consecutive=2), LivenessConfig(window=8), CARD, **fusion)
        wanted = []
        for _ in range(8):
            wanted.append(state.wants_embedding())
            state.feed(frame() if wanted[-1] else unembedded())
        assert wanted == [False] * skipped + [True] * (8 - skipped), window
        assert state.outcome == "match" and state.streak == 2
    off = Scan("u", ANCHOR, 0.4, VerifyConfig(), LivenessConfig(enabled=False))
    assert off.wants_embedding()


def test_a_frame_without_an_embedding_counts_for_the_track_but_is_not_fused():
    state = Scan("u", ANCHOR, 0.4, VerifyConfig(consecutive=3), LivenessConfig(window=1), CARD)
    for f in (frame(), unembedded(), frame()):
        state.feed(f)
    assert state.track == 3 and state.fused.windows == 2 and state.embedded == 2


def unembedded():
    f = frame()
    f.embedding = None
    return f


class FakePipeline:
    """Analyses a stream of prepared frames; counts the embeddings asked for."""

    card = None
    live_card = CARD

    class Embedder:
        def __init__(self):
            self.calls = 0

        def embed(self, chip):
            self.calls += 1
            return frame().embedding[None]

    def __init__(self):
        self.embedder = self.Embedder()
        self.previous = []

    def analyse(self, rgb, previous=None, networks=None, embed=True):
        self.previous.append(previous)
        return frame() if embed else unembedded()


def test_a_scan_embeds_two_frames_for_a_match_and_one_for_a_short_report():
    pipeline = FakePipeline()
    decision = scan(
        pipeline, [None] * 20, "u", ANCHOR, 0.4, VerifyConfig(), liveness=LivenessConfig(window=8)
    )
    assert decision.decision == "match" and decision.frames == 8
    assert pipeline.embedder.calls == 0, "the scan's own frames carry their embeddings"
    assert pipeline.previous[0] is None and all(p is not None for p in pipeline.previous[1:]), "a stream"
    short = FakePipeline()
    live = LivenessConfig(window=8)
    decision = scan(short, [None] * 3, "u", ANCHOR, 0.4, VerifyConfig(), liveness=live)
    assert decision.decision == "no-match" and decision.distance == pytest.approx(0.1)
    assert short.embedder.calls == 1 and "before the face could be judged" in decision.reason


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


LOCKED = {"failures": 0, "locked_until": 4e9, "password_at": 1.0}


@pytest.mark.parametrize(
    "bad",
    [
        {"failures": 0},
        [],
        "x",
        {**LOCKED, "locked_until": float("nan")},
        {**LOCKED, "locked_until": -1.0},
        {**LOCKED, "failures": float("nan")},
        {**LOCKED, "failures": True},
        {**LOCKED, "password_at": float("inf")},
    ],
)
def test_malformed_state_never_unblocks(tmp_path, bad):
    """Also values json reads but no count or time can be: NaN (never over now), infinite, negative."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "f.json").write_text(json.dumps(bad))
    why = Lockout(tmp_path, Config().verify).blocked("f")
    assert why is not None and "malformed" in why
    assert "malformed" not in (Lockout(tmp_path, Config().verify).blocked("g") or "")


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


def fused_scan(window=3, consecutive=1, rule="centroid"):
    """A scan with liveness off: these tests are about the fused windows alone."""
    return Scan(
        "u",
        ANCHOR,
        0.4,
        VerifyConfig(consecutive=consecutive),
        LivenessConfig(enabled=False),
        rule=rule,
        window=window,
    )


def test_a_fused_window_decides_not_any_single_frame():
    """Centroid of three frames: one far frame among near ones is outvoted, two are not."""
    scan = fused_scan()
    assert [scan.feed(f) for f in (frame(0.1), frame(0.9), frame(0.1))] == [False, False, True]
    scan = fused_scan()
    assert not any(scan.feed(f) for f in (frame(0.1), frame(0.9), frame(0.9)))
    assert scan.best == pytest.approx((0.1 + 0.9 + 0.9) / 3, abs=1e-4)
    assert "best fused score" in scan.decision(False, False, 0.0).reason


def test_windows_in_a_row_of_one_track():
    scan = fused_scan(consecutive=2)
    frames = [frame(0.1)] * 3 + [frame(0.9)] * 3 + [frame(0.1)] * 3
    assert not any(scan.feed(f) for f in frames)
    assert any(scan.feed(f) for f in [frame(0.1)] * 3)
    scan = fused_scan(consecutive=2)
    a, b = frame(0.1, box=(100, 100, 300, 300)), frame(0.1, box=(400, 100, 600, 300))
    assert not any(scan.feed(f) for f in [a, a, b, b, a, a, b, b])


def test_low_quality_frames_are_watched_but_never_fused():
    turned = frame(0.1)
    marks = turned.face.landmarks.copy()
    marks[2, 0] += 60  # the nose far off the eyes' midpoint: a head turned well away
    turned.face = Face(box=turned.face.box, landmarks=marks, score=0.99)
    scan = fused_scan()
    assert not any(scan.feed(turned) for _ in range(10))
    decision = scan.decision(False, False, 0.0)
    assert decision.judged == 10 and "fewer than 3 quality frames" in decision.reason
    assert "10 of low quality" in decision.reason


def test_a_password_login_clears_the_lockout(tmp_path):
    guard = Lockout(tmp_path, VerifyConfig(max_failures=1, lockout_seconds=600))
    guard.record("jo", matched=False, now=time.time())
    assert "locked out" in guard.blocked("jo")
    guard.password_used("jo")
    assert guard.blocked("jo") is None
    guard.record("jo", matched=False, now=time.time())
    assert "locked out for 600 more s" in guard.blocked("jo"), "the escalation starts over too"


@pytest.mark.parametrize("lockouts", ["3", 3.0, True, -1, 65, None])
def test_a_bad_lockouts_count_fails_closed(tmp_path, lockouts):
    (tmp_path / "state").mkdir()
    state = {"failures": 0, "locked_until": 0.0, "password_at": time.time(), "lockouts": lockouts}
    (tmp_path / "state" / "kim.json").write_text(json.dumps(state))
    assert "malformed (lockouts)" in Lockout(tmp_path, VerifyConfig()).blocked("kim")


def test_lockout_state_is_read_without_following_links_or_blocking(tmp_path):
    """The state folder belongs to the daemon's user, and root reads it too (doctor, password-used):
    a FIFO there must not hang root, and a link must not make root read another file."""
    (tmp_path / "state").mkdir()
    os.mkfifo(tmp_path / "state" / "lee.json")
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"failures": 0, "locked_until": 0.0, "password_at": 0.0}))
    (tmp_path / "state" / "max.json").symlink_to(secret)
    guard = Lockout(tmp_path, VerifyConfig())
    answers = {}
    reader = threading.Thread(
        target=lambda: answers.update(lee=guard.blocked("lee"), max=guard.blocked("max"))
    )
    reader.daemon = True
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading the lockout state blocked"
    assert "unreadable" in answers["lee"] and "not a regular file" in answers["lee"]
    assert "unreadable" in answers["max"]


def test_root_never_chowns_or_writes_through_a_link_the_daemon_planted(tmp_path, monkeypatch):
    """`faceunlock password-used` runs as root from PAM and writes into <store>/state, which the
    daemon's user owns. A compromised daemon swaps the folder root just made for a link to a folder
    of root's (here: the moment after mkdir). Root must then neither chown that folder nor write
    into it."""
    need_root()
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    os.chown(store, 65534, 65534)
    victim = tmp_path / "root-only"
    victim.mkdir(mode=0o700)
    real_mkdir = os.mkdir

    def mkdir_then_swap(path, mode=0o777, *, dir_fd=None):
        real_mkdir(path, mode, dir_fd=dir_fd)
        if os.path.basename(path) == "state":
            os.rename(path, f"{path}.moved", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.symlink(victim, path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    with pytest.raises(StoreError, match="cannot write lockout state"):
        Lockout(store, VerifyConfig()).password_used("alice")
    monkeypatch.undo()
    assert victim.stat().st_uid == 0 and oct(victim.stat().st_mode & 0o777) == "0o700"
    assert list(victim.iterdir()) == []


def test_root_hands_the_state_folder_and_file_to_the_daemons_user(tmp_path):
    need_root()
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    os.chown(store, 65534, 65534)
    Lockout(store, VerifyConfig()).password_used("alice")
    folder, state = store / "state", store / "state" / "alice.json"
    assert (folder.stat().st_uid, oct(folder.stat().st_mode & 0o777)) == (65534, "0o700")
    assert (state.stat().st_uid, oct(state.stat().st_mode & 0o777)) == (65534, "0o600")
