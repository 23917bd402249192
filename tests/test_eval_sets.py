"""`faceunlock eval sets` on real faces: CelebA identities held out from calibration, and live video clips.

Embeddings are cached in one folder for the whole test session, so each image is detected and embedded
once however many tests read it.
"""

import json

import numpy as np
import pytest
import torch

from faceunlock.cli import main
from faceunlock.evaluation.sets import split_of
from faceunlock.model import load_card

IDENTITIES = 20
CLIPS = ("live-person-a.webm", "live-person-c.mp4", "more/live-arun.mp4", "more/live-kevin.mp4")


@pytest.fixture(scope="session")
def sets_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("sets-cache")


@pytest.fixture(scope="session")
def celeba_report(celeba_dir, tmp_path_factory):
    """A folder of links to the first IDENTITIES 'report' identities of celeba-train with >= 8 photos."""
    people = [
        p
        for p in sorted(celeba_dir.iterdir())
        if split_of(p.name) == "report" and len(list(p.iterdir())) >= 8
    ]
    out = tmp_path_factory.mktemp("celeba-report")
    for person in people[:IDENTITIES]:
        (out / person.name).symlink_to(person)
    return out


@pytest.fixture(scope="session")
def clips(video_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("clips")
    (out / "more").mkdir()
    for clip in CLIPS:
        (out / clip).symlink_to(video_dir / clip)
    return out


def run_sets(args, out):
    threads = torch.get_num_threads()
    try:
        code = main(["eval", "sets", *args, "--threads", "1", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return json.loads(out.read_text())


def test_celeba_identities_held_out(celeba_report, sets_cache, tmp_path, capsys):
    args = ["--root", str(celeba_report), "--cache", str(sets_cache), "--rule", "centroid"]
    result = run_sets([*args, "--plots", str(tmp_path)], tmp_path / "sets.json")
    assert set(result) == {"attempt", "rule", "enrol", "probe"}
    assert (result["rule"], result["enrol"], result["probe"]) == ("centroid", 5, 3)
    attempt = result["attempt"]
    assert set(attempt) == {"auc", "eer", "tar_at_far", "attempts", "levels"}
    assert set(attempt["levels"]) == {"strict", "balanced", "fast"}
    counts = attempt["attempts"]
    assert counts["genuine"] >= 2 * IDENTITIES
    # every identity's images in groups of 3 against every other enrolment
    assert counts["impostor"] >= (IDENTITIES - 1) * counts["genuine"]
    # measured: AUC 0.99999, TAR 100% at FAR 1e-3; a broken stage or rule falls far below
    assert attempt["auc"] > 0.999 and attempt["tar_at_far"]["1e-3"] >= 0.97, attempt
    balanced = attempt["levels"]["balanced"]
    assert balanced["threshold"] == load_card().attempt.threshold("balanced", "centroid")
    assert balanced["frr"] <= 0.05 and balanced["far"] <= 1e-3, balanced
    out = capsys.readouterr().out
    assert "impostor attempts are all its images in groups of M" in out and "nearest-max" in out
    assert (tmp_path / "roc-rules.png").stat().st_size > 1000


def test_same_seed_same_draw_other_seed_other_draw(celeba_report, sets_cache, tmp_path):
    args = ["--root", str(celeba_report), "--cache", str(sets_cache), "--rule", "nearest-mean"]
    a = run_sets([*args, "--seed", "3"], tmp_path / "a.json")
    b = run_sets([*args, "--seed", "3"], tmp_path / "b.json")
    c = run_sets([*args, "--seed", "4"], tmp_path / "c.json")
    assert a == b and a != c


def test_live_video_the_owner_matches_and_nobody_else_does(clips, sets_cache, tmp_path):
    """Every clip is one person: at the shipped rule's balanced threshold all genuine attempts match and no
    attempt of one person's frames against another person's enrolment does."""
    card = load_card()
    args = ["--root", str(clips), "--kind", "video", "--cache", str(sets_cache), "--step", "10"]
    result = run_sets(args, tmp_path / "video.json")
    assert result["rule"] == card.attempt.rule
    attempt = result["attempt"]
    assert attempt["attempts"]["genuine"] >= 30 and attempt["attempts"]["impostor"] >= 100
    balanced = attempt["levels"]["balanced"]
    assert balanced["threshold"] == card.attempt.threshold("balanced")
    assert balanced["far"] == 0.0 and balanced["frr"] == 0.0, balanced
    assert np.isclose(attempt["auc"], 1.0)
