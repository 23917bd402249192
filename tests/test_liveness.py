"""The liveness gate on the real recordings and on MADE clips, through the whole policy.

Live clips enrol from their first 2 s (faceunlock/evaluation/shared_data.py) and are verified on
the rest; a replay is checked against its own person's enrolment, so only liveness stops it.
"""

import itertools

import cv2
import numpy as np
import pytest

from faceunlock.cli import main
from faceunlock.config import SECURITY_LEVELS, replace
from faceunlock.errors import EXIT_NO_MATCH
from faceunlock.evaluation import liveness as ev
from faceunlock.evaluation.shared_data import ATTACKS, LIVE
from faceunlock.verify import fusion_of, scan

LENGTHS = (8, 15, 30, 60, 150)
NO_FACE_TO_ENROL = {"live-dark-2"}
"""Backlit, near dark: the detector finds no face in its first 2 s, so it cannot be enrolled."""
KNOWN_MISSES = {
    "live-dark-1": "backlit, near dark: 1 usable enrolment frame; liveness passes, the face distance "
    "never stays under the threshold for 2 frames in a row",
    "mixed-hoan-replay": "a laptop replay the networks score near 0.5: some windows pass at balanced",
}
"""Measured failures of the bar, kept visible: each test still runs, and passing would fail it
(strict xfail) so the list must be updated when they are fixed."""


def known(names):
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[n]))
        if n in KNOWN_MISSES
        else n
        for n in sorted(names)
    ]


def real_scan(pipeline, cfg, threshold, anchors, frames, liveness=True):
    policy = cfg if liveness else replace(cfg, "liveness", enabled=False)
    return scan(pipeline, iter(frames), "t", anchors, threshold, policy.verify, 30.0, policy.liveness)


@pytest.mark.parametrize("name", known(set(LIVE) - NO_FACE_TO_ENROL))
def test_every_live_video_matches_its_own_enrolment(
    name, shared_clips, pad_pipeline, pad_cfg, match_threshold
):
    clip = shared_clips[name]
    anchors, problem = ev.anchors_from(pad_pipeline, clip.enrol(), pad_cfg, step=3)
    assert anchors is not None, problem
    decision = real_scan(pad_pipeline, pad_cfg, match_threshold, anchors, clip.frames())
    assert decision.decision == "match", decision.as_dict()
    assert decision.liveness == "pass" and decision.liveness_score >= 0.5


@pytest.mark.parametrize("name", sorted(NO_FACE_TO_ENROL))
def test_a_video_without_a_detectable_face_cannot_be_enrolled(name, shared_clips, pad_pipeline, pad_cfg):
    anchors, problem = ev.anchors_from(pad_pipeline, shared_clips[name].enrol(), pad_cfg, step=3)
    assert anchors is None and "usable enrolment frames" in problem


@pytest.mark.parametrize("name", known(ATTACKS))
def test_a_replay_never_matches_in_any_window(
    name, analysed_clip, pad_cfg, match_threshold, match_fusion, pad_pipeline
):
    item = analysed_clip(name)
    for length in LENGTHS:
        w = ev.windows(
            item,
            length,
            match_threshold,
            pad_cfg,
            pad_pipeline.live_card,
            pad_level=False,
            fusion=match_fusion,
        )
        assert w["windows"] > 0 and w["matched"] == 0, (length, w["matched"], w["windows"])


def test_the_replays_are_the_same_people_so_only_liveness_stops_them(
    analysed_clip, pad_cfg, match_threshold, match_fusion
):
    """Without liveness, windows of every replay would match: the test above is meaningful.
    (Windows of the first 150 frames of each clip; tests/liveness_fixtures.py.)"""
    off = replace(pad_cfg, "liveness", enabled=False)
    for name in ATTACKS:
        w = ev.windows(analysed_clip(name), 30, match_threshold, off, None, fusion=match_fusion)
        assert w["matched"] > 0.2 * w["windows"], (name, w)


@pytest.mark.parametrize("style", ["door", "window", "shelf"])
def test_a_live_person_between_straight_edges_matches(
    style, shared_clips, pad_pipeline, pad_cfg, match_threshold
):
    """MADE: person A (already in front of a window) with a door frame, window frame or bookshelf
    composited around the head; the display-frame veto this replaces refused such scenes."""
    from faceunlock.evaluation import made
    from faceunlock.evaluation.shared_data import face_boxes

    clip = shared_clips["live-person-a"]
    frames = list(itertools.islice(clip.frames(), 40))
    framed = list(made.framed_live(frames, face_boxes(frames), style))
    assert np.abs(framed[0].astype(int) - frames[0]).sum() > 0
    anchors, _ = ev.anchors_from(pad_pipeline, clip.enrol(), pad_cfg, step=3)
    decision = real_scan(pad_pipeline, pad_cfg, match_threshold, anchors, framed)
    assert decision.decision == "match", decision.as_dict()


def test_a_live_stranger_cannot_vouch_for_a_replay_that_takes_their_place(
    shared_clips, pad_pipeline, pad_cfg, match_threshold
):
    """Found by an audit: person C sits live in front of the camera for 3 s, building a track whose
    liveness score is high, then a phone replay of the enrolled person A takes C's place in the same
    box (zoomed to C's face size). The face of the replay matches A; the track's score over all its
    frames is still over the threshold, but not over its last frames, which the match is made of."""
    import cv2

    anchors, _ = ev.anchors_from(pad_pipeline, shared_clips["live-person-a"].enrol(), pad_cfg, step=3)
    stranger = list(itertools.islice(shared_clips["live-person-c"].frames(), 90))
    replay = list(itertools.islice(shared_clips["replay-person-a"].frames(), 50))
    c, a = pad_pipeline.analyse(stranger[-1]).face.box, pad_pipeline.analyse(replay[0]).face.box
    scale = 2.0
    shift = [(c[0] + c[2]) / 2 - scale * (a[0] + a[2]) / 2, (c[1] + c[3]) / 2 - scale * (a[1] + a[3]) / 2]
    warp = np.float32([[scale, 0, shift[0]], [0, scale, shift[1]]])
    size = stranger[0].shape[1::-1]
    in_place = [cv2.warpAffine(f, warp, size, borderMode=cv2.BORDER_REFLECT) for f in replay]
    face_alone = real_scan(pad_pipeline, pad_cfg, match_threshold, anchors, in_place, liveness=False)
    assert face_alone.decision == "match", face_alone.as_dict()
    decision = real_scan(pad_pipeline, pad_cfg, match_threshold, anchors, stranger + in_place)
    assert decision.decision == "no-match" and decision.liveness == "doubt", decision.as_dict()
    assert "over the last 8" in decision.liveness_reason, decision.liveness_reason
    assert decision.distance < match_threshold, "the replay's face did match A"


def test_a_repeated_still_frame_never_matches(shared_clips, pad_pipeline, pad_cfg, match_threshold):
    """Issue 14, point 6: eight identical copies of one live frame."""
    clip = shared_clips["live-person-a"]
    anchors, _ = ev.anchors_from(pad_pipeline, clip.enrol(), pad_cfg, step=3)
    still = next(iter(clip.frames()))
    off = real_scan(pad_pipeline, pad_cfg, match_threshold, anchors, [still] * 8, liveness=False)
    assert off.decision == "match"
    decision = real_scan(pad_pipeline, pad_cfg, match_threshold, anchors, [still] * 8)
    assert decision.decision == "no-match" and decision.liveness == "fail"
    assert "still picture" in decision.reason and decision.frames == 3


def test_a_still_frame_with_fresh_noise_never_matches(shared_clips, pad_pipeline, pad_cfg, match_threshold):
    """MADE: no two frames identical, so only the face's missing micro-motion gives it away."""
    from faceunlock.evaluation import made

    clip = shared_clips["live-person-a"]
    anchors, _ = ev.anchors_from(pad_pipeline, clip.enrol(), pad_cfg, step=3)
    still = next(iter(clip.frames()))
    frames = list(made.noisy_still(still, 30, seed=0))
    off = real_scan(pad_pipeline, pad_cfg, match_threshold, anchors, frames, liveness=False)
    assert off.decision == "match"
    decision = real_scan(pad_pipeline, pad_cfg, match_threshold, anchors, frames)
    assert decision.decision == "no-match" and decision.liveness in ("fail", "doubt"), decision.as_dict()
    assert decision.liveness_cues["stillness"] > 0.5


def test_a_folder_of_one_repeated_frame_does_not_unlock_through_the_cli(shared_clips, tmp_path, capsys):
    clip = shared_clips["live-person-a"]
    enrol, still = tmp_path / "enrol", tmp_path / "still"
    enrol.mkdir()
    still.mkdir()
    for i, rgb in enumerate(list(clip.enrol())[::3]):
        cv2.imwrite(str(enrol / f"{i:03d}.png"), rgb[..., ::-1])
    frame = next(iter(clip.frames()))
    for i in range(8):
        cv2.imwrite(str(still / f"{i:03d}.png"), frame[..., ::-1])
    store = tmp_path / "store"
    assert (
        main(["enroll", "--user", "alice", "--source", str(enrol), "--store", str(store), "--threads", "1"])
        == 0
    )
    capsys.readouterr()
    code = main(
        ["verify", "--user", "alice", "--source", str(still), "--store", str(store), "--threads", "1"]
    )
    out = capsys.readouterr().out
    assert code == EXIT_NO_MATCH and out.startswith("not accepted: this looks like a photo or a screen"), out


def test_the_run_time_measures_only_the_cues_the_card_uses_and_scores_the_same(
    shared_clips, pad_pipeline, pad_cfg
):
    """The scan skips the cues the fitted fusion dropped (ring flow, glare, moire, flicker) and its
    window features are those of a pipeline that measures everything (as fitting does)."""
    from faceunlock.liveness.score import Evidence
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline

    everything = Pipeline(pad_cfg, load_card(), threads=1, all_cues=True)
    frames = list(itertools.islice(shared_clips["live-person-a"].frames(), 40))
    features, ring = {}, {}
    for name, pipeline in (("card", pad_pipeline), ("all", everything)):
        evidence, previous, shifts = Evidence(), None, []
        for k, rgb in enumerate(frames):
            r = pipeline.analyse(rgb, previous=previous, networks=pipeline.networks_for(k))
            evidence.add(r.live, k % 2, previous is not None)
            shifts.append(r.live.ring_shift)
            previous = r
        features[name], ring[name] = evidence.features(), shifts
    used = pad_pipeline.live_card.fusion.features
    assert "ring_shift" not in pad_pipeline.cues and "coupling" not in used
    assert pad_pipeline.landmarker is None and "blink" not in used, "no face mesh unless the card uses it"
    assert features["all"]["blink"] is not None and features["card"]["blink"] is None
    assert all(s is None for s in ring["card"]) and sum(s is not None for s in ring["all"]) > 30
    assert features["all"]["coupling"] is not None and features["card"]["coupling"] is None
    for name in used:
        assert features["card"][name] is not None
        assert features["card"][name] == features["all"][name], name


def test_a_card_naming_an_unknown_feature_is_refused():
    from faceunlock.errors import ModelError
    from faceunlock.liveness.score import cues_for

    assert cues_for(("pad", "stillness")) == {"face_shift"}
    assert cues_for(("pad", "blink")) == {"eyes"}
    with pytest.raises(ModelError, match="unknown liveness feature.*heartbeat"):
        cues_for(("pad", "heartbeat"))


FACE_ALONE_FROM = {
    **dict.fromkeys(
        ("Aaron_Peirsol", "Abdullah_Gul", "Adam_Sandler", "Adel_Al-Jubeir", "Adrien_Brody", "Ahmed_Chalabi"),
        "strict",
    ),
    **dict.fromkeys(("Ai_Sugiyama", "Aicha_El_Ouafi"), "balanced"),
    **dict.fromkeys(("Abdoulaye_Wade", "Abid_Hamid_Mahmud_Al-Tikriti", "Akbar_Hashemi_Rafsanjani"), "fast"),
}
"""Held-out MADE prints (simulated hand-held prints of the first 15 LFW people with 3 photos,
faceunlock/evaluation/shared_data.py), each scanned against an enrolment from the person's other
photos, and the strictest level from which the face alone matches in at least half of the 8-frame
windows (measured 2026-12-07; the thresholds grow with the level, so it matches at every looser
one too; the other LFW people's photos are too unlike the printed one). A print is tested at those
levels, where only liveness can stop it."""
PRINT_MISSES = {
    ("Adam_Sandler", "strict"): True,
    ("Adam_Sandler", "balanced"): True,
    ("Adam_Sandler", "fast"): True,
    ("Adrien_Brody", "strict"): False,
    ("Adrien_Brody", "balanced"): True,
    ("Adrien_Brody", "fast"): True,
    ("Abdoulaye_Wade", "fast"): True,
}
"""Measured 2026-12-07 over every 8-frame window: these prints are let in at these levels (Adam
Sandler 38 / 83 / 83 of 83 windows at strict / balanced / fast, Adrien Brody 4 / 83 / 83,
Abdoulaye Wade 83 at fast alone; models/README.md). Strict xfail (True) where many windows get in;
Adrien Brody at strict is a few windows near the threshold, so it may pass."""


def print_cases() -> list:
    cases = []
    for k, level in enumerate(SECURITY_LEVELS):
        people = [p for p, start in FACE_ALONE_FROM.items() if SECURITY_LEVELS.index(start) <= k]
        for person in people:
            strict = PRINT_MISSES.get((person, level))
            reason = f"the simulated print of {person} is let in at {level}"
            marks = () if strict is None else pytest.mark.xfail(strict=strict, reason=reason)
            cases.append(pytest.param(person, level, marks=marks, id=f"{person}-{level}"))
    return cases


@pytest.fixture(scope="module")
def analysed_print(data_dir, pad_pipeline, pad_cfg):
    """analysed_print(person): the held-out MADE print of the person, enrolled and analysed once."""
    from faceunlock.evaluation.shared_data import REPORT, made_clips

    clips = {c.person: c for c in made_clips(data_dir, REPORT, prints=15) if c.label == "made-print"}
    done = {}

    def get(person):
        if person not in done:
            done[person] = ev.prepare(pad_pipeline, clips[person], pad_cfg)
        return done[person]

    return get


@pytest.mark.parametrize("person, level", print_cases())
def test_a_printed_photo_never_matches_at_any_level(person, level, analysed_print, pad_cfg, pad_pipeline):
    """Every 8-frame window of a simulated print of the enrolled person, at each security level with
    its own face and liveness thresholds: the face alone lets most windows in, liveness none."""
    from faceunlock.model import load_card

    card = load_card()
    cfg = replace(pad_cfg, "verify", security_level=level)
    item = analysed_print(person)
    assert item.anchors is not None
    threshold, fusion = card.scan_threshold(level), fusion_of(card)
    off = replace(cfg, "liveness", enabled=False)
    face_alone = ev.windows(item, 8, threshold, off, None, pad_level=False, fusion=fusion)
    assert face_alone["matched"] >= face_alone["windows"] / 2 > 0, face_alone
    w = ev.windows(item, 8, threshold, cfg, pad_pipeline.live_card, pad_level=False, fusion=fusion)
    assert w["matched"] == 0, (w["matched"], w["windows"])
