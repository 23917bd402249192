"""Guided enrolment: head pose from landmarks, the checks and plain-words hints, a small diverse anchor
set, and a real guided enrolment from a video in which a person turns and tilts their head."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceunlock import config
from faceunlock.cli import main
from faceunlock.errors import EXIT_ERROR, EnrollError
from faceunlock.guided import HINTS, GuidedEnrolment, which_pose
from faceunlock.pipeline import FrameResult
from faceunlock.vision.detect import Detection, Face
from faceunlock.vision.pose import Pose, estimate_pose

FRONTAL = np.array([[40, 50], [80, 50], [60, 72], [45, 95], [75, 95]], np.float32)


def turned(yaw: float = 0.0, pitch: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Landmarks with the nose moved by yaw eye distances and pitch eye-to-mouth distances, then rolled."""
    points = FRONTAL.copy()
    points[2] += [yaw * 40, pitch * 45]
    centre = points.mean(axis=0)
    t = np.radians(roll_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (points - centre) @ rot.T + centre


def test_pose_reads_the_nose_against_eyes_and_mouth():
    straight = estimate_pose(FRONTAL)
    assert abs(straight.yaw) < 1e-6 and abs(straight.pitch - 22 / 45) < 1e-6 and abs(straight.roll) < 1e-6
    assert estimate_pose(turned(yaw=0.3)).yaw == pytest.approx(0.3, abs=1e-5)
    assert estimate_pose(turned(yaw=-0.3)).yaw == pytest.approx(-0.3, abs=1e-5)
    assert estimate_pose(turned(pitch=0.2)).pitch == pytest.approx(straight.pitch + 0.2, abs=1e-5)
    rolled = estimate_pose(turned(yaw=0.3, roll_deg=20))
    assert rolled.yaw == pytest.approx(0.3, abs=1e-4) and rolled.roll == pytest.approx(20, abs=1e-3)
    assert estimate_pose(np.zeros((5, 2))) is None
    assert estimate_pose(np.full((5, 2), np.nan)) is None


def test_which_pose_is_judged_against_the_persons_straight_pose():
    assert which_pose(Pose(0.02, 0.5, 0), None) == "straight"
    assert which_pose(Pose(0.3, 0.5, 0), None) == "left"
    assert which_pose(Pose(-0.3, 0.5, 0), None) == "right"
    assert which_pose(Pose(0.0, 0.25, 0), None) is None, "a tilt cannot be told before the straight capture"
    ref = Pose(0.05, 0.55, 0)
    assert which_pose(Pose(0.05, 0.40, 0), ref) == "up"
    assert which_pose(Pose(0.05, 0.70, 0), ref) == "down"
    assert which_pose(Pose(0.05, 0.58, 0), ref) == "straight"
    assert which_pose(Pose(1.2, 0.55, 0), ref) is None, "turned too far"


def result(
    landmarks=FRONTAL,
    faces: int = 1,
    size: float = 160,
    sharp: float = 80.0,
    light: int = 120,
    cues=(),
    emb=None,
    behind: float = 1.0,
):
    """A FrameResult as the pipeline makes it, for one synthetic face (and faces - 1 others, behind
    times its size)."""
    lm = np.asarray(landmarks, np.float32) * (size / 100)
    face = Face((0, 0, size, size * 1.2), lm, 0.99)
    other = size * behind
    others = [Face((400, 0, 400 + other, other), lm, 0.9)] * (faces - 1)
    r = FrameResult(detection=Detection([face, *others], (480, 640)))
    if faces:
        r.face, r.sharpness, r.cues = face, sharp, list(cues)
        r.chip = np.full((150, 150, 3), light, np.uint8)
        r.embedding = np.random.default_rng(0).normal(size=128).astype(np.float32) if emb is None else emb
    else:
        r.detection = Detection([], (480, 640))
    return r


def guided(**enroll) -> GuidedEnrolment:
    cfg = config.Config()
    return GuidedEnrolment(
        cfg.verify, config.replace(cfg, "enroll", **enroll).enroll, cfg.liveness, clock=lambda: 0
    )


@pytest.mark.parametrize(
    "kwargs,hint",
    [
        ({"faces": 0}, "no face found: look at the camera"),
        ({"faces": 2}, "only one face in front, please"),
        ({"faces": 2, "behind": 0.95}, "only one face in front, please"),
        ({"size": 50}, "move closer"),
        ({"size": 420}, "move back a little"),
        ({"sharp": 2.0}, "hold still"),
        ({"light": 20}, "more light, please"),
        ({"light": 240}, "too bright: turn away from the light"),
    ],
)
def test_each_check_says_what_to_change(kwargs, hint):
    state = guided()
    step = state.feed(result(**kwargs), 480)
    assert step.hint == hint and not step.accepted
    assert step.quality.problem in HINTS and HINTS[step.quality.problem] == hint


def test_a_smaller_face_behind_is_ignored():
    """A colleague far behind (a face under 70% of the enrolling person's size) is no reason to
    refuse: the dominant face is enrolled, the other is never looked at."""
    state = guided()
    steps = [state.feed(result(faces=3, behind=0.4), 480) for _ in range(12)]
    assert not any("only one face" in s.hint for s in steps), [s.hint for s in steps]
    assert "multiple" not in state.report()["problems"] and state.report()["captures"]


def test_with_multiple_faces_rejected_a_face_behind_stops_the_guided_enrolment_too():
    """`[verify] multiple_faces = "reject"` holds for the guided flow as for a plain enrolment and a
    scan: any second face, however small, is a reason to wait."""
    cfg = config.Config()
    strict = config.replace(cfg, "verify", multiple_faces="reject").verify
    state = GuidedEnrolment(strict, cfg.enroll, cfg.liveness, clock=lambda: 0)
    steps = [state.feed(result(faces=3, behind=0.4), 480) for _ in range(12)]
    assert all(s.hint == "only one face in front, please" and not s.accepted for s in steps)


def test_a_presentation_attack_cue_stops_captures_on_that_face():
    state = guided()
    steps = [state.feed(result(cues=["display-frame"] if i == 3 else ()), 480) for i in range(20)]
    assert steps[3].hint == "no photos or screens, please"
    assert not any(s.accepted for s in steps), "a cue is sticky for the tracked face"
    assert steps[-1].quality.liveness.startswith("fail")


def test_poses_are_asked_in_order_and_a_small_diverse_set_is_kept():
    rng = np.random.default_rng(1)
    state = guided(per_pose=2)
    plan = [("straight", turned()), ("left", turned(yaw=0.3)), ("right", turned(yaw=-0.3))]
    plan += [("up", turned(pitch=-0.15)), ("down", turned(pitch=0.15))]
    asked = []
    for _name, landmarks in plan:
        for _ in range(40):
            step = state.feed(result(landmarks, emb=rng.normal(size=128).astype(np.float32)), 480)
            asked.append(step.pose)
            if state.finished:
                break
    assert list(dict.fromkeys(asked)) == ["straight", "left", "right", "up", "down"]
    assert state.finished and step.hint == "done: all poses captured"
    anchors = state.result()
    assert anchors.shape == (10, 128)
    report = state.report()
    assert report["captured"] == ["straight", "left", "right", "up", "down"] and report["missing"] == []
    kept = [c for c in report["captures"] if c["kept"]]
    assert len(kept) == 10 and all(c["liveness"] == "pass" for c in kept)
    assert {"face_size", "sharpness", "light", "yaw", "pitch", "frame"} <= set(kept[0])
    assert report["problems"] == {"watching": 7}, "only the liveness window, at the start"


def test_kept_anchors_are_the_most_different_candidates():
    state = guided(per_pose=2, poses=["straight"], min_poses=1)
    base = np.zeros(128, np.float32)
    for i in range(40):
        emb = base.copy()
        emb[0] = 1.0 if i == 13 else 0.01 * i  # candidates: frames 7, 10, 13, ... (gap 3)
        state.feed(result(emb=emb), 480)
    anchors = state.result()
    assert anchors.shape == (2, 128)
    assert 1.0 in anchors[:, 0], "the outlier candidate is kept as the second, most different anchor"


def test_too_few_poses_fail_naming_what_to_do():
    state = guided(min_poses=3)
    for _ in range(30):
        state.feed(result(), 480)
    with pytest.raises(EnrollError) as err:
        state.result()
    text = str(err.value)
    assert "captured 1 of 5 poses (straight)" in text
    assert (
        "left (turn your head a little to the left)" in text and "down (tilt your head down a little)" in text
    )


def test_a_pose_not_seen_in_time_is_skipped_in_the_prompt():
    now = [0.0]
    cfg = config.Config()
    state = GuidedEnrolment(cfg.verify, cfg.enroll, cfg.liveness, clock=lambda: now[0])
    for _ in range(40):
        step = state.feed(result(), 480)
    assert step.pose == "left"
    now[0] = cfg.enroll.pose_timeout + 1
    assert state.feed(result(), 480).pose == "right"
    assert state.skipped == ["left"]


SEGMENTS = {"straight": 20, "left": 100, "right": 260, "down": 370, "up": 450}
"""live-person-c.mp4: first frame of 24 in a row where the person holds each pose (by the landmarks)."""


@pytest.fixture(scope="module")
def person_c(video_dir, tmp_path_factory):
    """Frames of live-person-c.mp4: 24 per pose for enrolment, and frames 520-579 held out."""
    root = tmp_path_factory.mktemp("person-c")
    enrol, held_out = root / "enrol", root / "held-out"
    enrol.mkdir()
    held_out.mkdir()
    wanted = {i: enrol for start in SEGMENTS.values() for i in range(start, start + 24)}
    wanted.update({i: held_out for i in range(520, 580)})
    cap = cv2.VideoCapture(str(video_dir / "live-person-c.mp4"))
    i = 0
    while i <= max(wanted):
        ok, frame = cap.read()
        assert ok, f"live-person-c.mp4 ended at frame {i}"
        if i in wanted:
            cv2.imwrite(str(wanted[i] / f"frame{i:04d}.png"), frame)
        i += 1
    return enrol, held_out


def test_guided_enrolment_from_a_real_video_reports_every_capture(person_c, tmp_path, capsys):
    enrol, held_out = person_c
    store = tmp_path / "store"
    cfg = tmp_path / "c.toml"
    cfg.write_text("[enroll]\nper_pose = 1\nmin_poses = 5\n")
    args = ["enroll", "--user", "carl", "--source", str(enrol), "--store", str(store), "--json"]
    assert main([*args, "--config", str(cfg), "--threads", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["enrolled"] and report["mode"] == "guided" and report["anchors"] == 5
    assert report["captured"] == ["straight", "left", "right", "up", "down"]
    kept = [c for c in report["captures"] if c["kept"]]
    assert sorted(c["pose"] for c in kept) == sorted(SEGMENTS)
    for c in kept:
        assert c["problem"] is None and c["liveness"] == "pass" and c["faces"] == 1
        assert c["face_size"] >= 80 and c["sharpness"] >= 15 and 35 <= c["light"] <= 215
    verify = ["verify", "--user", "carl", "--source", str(held_out), "--store", str(store), "--json"]
    assert main([*verify, "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "match"


def test_guided_enrolment_failure_is_reported_in_json(person_c, tmp_path, capsys):
    """The held-out frames look straight only: a guided enrolment asks for the turns it did not see."""
    _, held_out = person_c
    store = tmp_path / "store"
    args = ["enroll", "--user", "carl", "--source", str(held_out), "--store", str(store), "--json"]
    assert main([*args, "--threads", "1"]) == EXIT_ERROR
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not report["enrolled"] and "left" in report["missing"]
    assert "turn your head a little to the left" in report["error"]
    assert not Path(store / "carl.json").exists()
