"""Fusion rules and frame quality: each rule's definition, its failure modes, the card's attempt section."""

import json

import numpy as np
import pytest

from faceunlock.errors import ModelError
from faceunlock.fusion import RULES, fuse, fuse_batch
from faceunlock.model import load_card
from faceunlock.quality import FLOOR, factors, frame_quality, pose
from faceunlock.vision.align import TEMPLATE

RNG = np.random.default_rng(0)
ANCHORS = RNG.normal(size=(5, 128))
FRAMES = RNG.normal(size=(4, 128))


def brute_nearest():
    return np.array([min(np.linalg.norm(f - a) for a in ANCHORS) for f in FRAMES])


def test_each_rule_matches_its_definition():
    d = brute_nearest()
    w = np.array([1.0, 2.0, 3.0, 4.0])
    expected = {
        "nearest-min": d.min(),
        "nearest-max": d.max(),
        "nearest-mean": d.mean(),
        "nearest-trimmed": np.sort(d)[1:3].mean(),
        "centroid": np.linalg.norm(FRAMES.mean(0) - ANCHORS.mean(0)),
        "nearest-wmean": (d * w).sum() / w.sum(),
        "centroid-weighted": np.linalg.norm((FRAMES * w[:, None]).sum(0) / w.sum() - ANCHORS.mean(0)),
    }
    assert set(expected) == set(RULES)
    for rule, value in expected.items():
        assert fuse(rule, ANCHORS, FRAMES, w) == pytest.approx(value, rel=1e-9), rule


def test_trimmed_mean_of_three_frames_is_the_median():
    assert fuse("nearest-trimmed", ANCHORS, FRAMES[:3]) == pytest.approx(np.median(brute_nearest()[:3]))


def test_equal_weights_give_the_unweighted_rules():
    ones = np.ones(len(FRAMES))
    assert fuse("nearest-wmean", ANCHORS, FRAMES, ones) == pytest.approx(
        fuse("nearest-mean", ANCHORS, FRAMES)
    )
    assert fuse("centroid-weighted", ANCHORS, FRAMES, ones) == pytest.approx(
        fuse("centroid", ANCHORS, FRAMES)
    )


def test_batch_is_the_single_attempt_rule_row_by_row():
    probes = RNG.normal(size=(6, 3, 128))
    weights = RNG.uniform(0.1, 1, size=(6, 3))
    for rule in RULES:
        batch = fuse_batch(rule, ANCHORS, probes, weights)
        single = [fuse(rule, ANCHORS, p, w) for p, w in zip(probes, weights, strict=True)]
        np.testing.assert_allclose(batch, single, rtol=1e-9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("centroid", np.zeros((0, 128)), FRAMES), "no enrolled anchors"),
        (("centroid", ANCHORS, np.zeros((0, 128))), "do not fit"),
        (("centroid", ANCHORS, np.zeros((2, 64))), "do not fit"),
        (("nearest-wmean", ANCHORS, FRAMES), "needs a quality weight"),
        (("nearest-wmean", ANCHORS, FRAMES, np.array([1, 1, 0, 1.0])), "positive and finite"),
        (("centroid", ANCHORS, np.full((2, 128), np.nan)), "not finite"),
        (("best-guess", ANCHORS, FRAMES), "unknown fusion rule"),
    ],
)
def test_bad_input_is_an_error_never_a_score(args, message):
    with pytest.raises(ValueError, match=message):
        fuse(*args)


def test_pose_and_quality_of_the_template_face():
    p = pose(TEMPLATE)
    assert abs(p.yaw) < 0.01 and abs(p.pitch - 0.59) < 0.01 and abs(p.roll) < 0.01
    assert frame_quality(150, 200, TEMPLATE, 1.0) == pytest.approx(1.0, abs=1e-3)


def test_quality_falls_with_a_turned_small_blurred_or_doubtful_face():
    turned = TEMPLATE.copy()
    turned[2, 0] += 20  # nose 20 px right of the eyes' midpoint: a head turned by about a third
    good = frame_quality(150, 200, TEMPLATE, 1.0)
    assert frame_quality(150, 200, turned, 1.0) < 0.5 * good
    assert frame_quality(40, 200, TEMPLATE, 1.0) < 0.5 * good
    assert frame_quality(150, 10, TEMPLATE, 1.0) < 0.5 * good
    assert frame_quality(150, 200, TEMPLATE, 0.85) < 0.5 * good
    collapsed = np.zeros((5, 2))
    assert factors(150, 200, collapsed, 1.0)["pose"] == FLOOR


def test_the_shipped_card_carries_valid_attempt_thresholds():
    card = load_card()
    assert card.attempt is not None and card.attempt.rule in RULES
    assert card.attempt.enrol >= 1 and card.attempt.probe >= 1
    levels = card.attempt.thresholds[card.attempt.rule]
    assert levels["strict"] <= levels["balanced"] <= levels["fast"]
    assert card.attempt.threshold("balanced") == levels["balanced"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.update(rule="vote"), "shipped rule 'vote'"),
        (
            lambda a: a["thresholds"].update(vote={"strict": 0.1, "balanced": 0.2, "fast": 0.3}),
            "unknown rule",
        ),
        (lambda a: a["thresholds"][a["rule"]].pop("fast"), "exactly strict"),
        (lambda a: a["thresholds"][a["rule"]].update(strict=9.0), "in \\(0, 4\\)"),
        (lambda a: a["thresholds"][a["rule"]].update(strict=0.39, fast=0.1), "grow from strict"),
        (lambda a: a.update(probe=0), "enrol and probe"),
        (lambda a: a.pop("probe"), "malformed"),
    ],
)
def test_a_bad_attempt_section_is_refused(tmp_path, monkeypatch, edit, message):
    shipped = load_card()
    raw = json.loads((shipped.weights.parent / f"{shipped.name}.json").read_text())
    edit(raw["attempt"])
    raw["weights"]["file"] = str(shipped.weights)
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    monkeypatch.setenv("FACEUNLOCK_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match=message):
        load_card("bad")
