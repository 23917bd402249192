"""IR mode (`[liveness] ir = true`): a colour frame is not from the IR camera, and a face that is
dark in an IR frame is an image on a screen; either ends the scan as an attack.

Real faces (../shared/data/nuaa-live). The grey frames stand in for an IR camera's frames; a
screen, which emits no near-infrared, is the same face with its light taken away.
"""

import json

import cv2
import numpy as np
import pytest

from faceunlock.cli import main
from faceunlock.config import Config, LivenessConfig
from faceunlock.errors import EXIT_NO_MATCH
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline
from faceunlock.vision.ir_cues import ir_cues, is_grey

IR = "[liveness]\nir = true\n"


def grey(bgr: np.ndarray, gain: float = 1.0) -> np.ndarray:
    g = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) * gain
    return cv2.cvtColor(np.clip(g, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def person(nuaa_dir):
    return sorted(p for p in nuaa_dir.iterdir() if p.is_dir())[0]


def frames_of(folder, count=12):
    return [cv2.imread(str(p)) for p in sorted(folder.iterdir())[:count]]


def test_the_cues_on_real_faces(person):
    cfg = Config()
    on = LivenessConfig(ir=True)
    pipeline = Pipeline(cfg, load_card(), threads=1)
    bgr = frames_of(person / "live-1", 1)[0]
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    chip = pipeline.analyse(rgb).chip
    assert chip is not None
    assert not is_grey(rgb) and ir_cues(rgb, chip, on) == ["not-ir"]
    assert ir_cues(rgb, chip, cfg.liveness) == [], "IR cues only in IR mode"
    lit = grey(bgr)
    lit_chip = pipeline.analyse(cv2.cvtColor(lit, cv2.COLOR_BGR2RGB)).chip
    assert is_grey(lit) and ir_cues(lit, lit_chip, on) == [], "a lit face in a grey frame passes"
    dark = grey(bgr, 0.35)
    dark_chip = pipeline.analyse(cv2.cvtColor(dark, cv2.COLOR_BGR2RGB)).chip
    assert dark_chip is not None and float(dark_chip.mean()) < on.ir_min_face_level
    assert ir_cues(dark, dark_chip, on) == ["ir-dark-face"]


@pytest.mark.parametrize(
    ("kind", "gain", "cue"), [("colour", None, "not-ir"), ("screen", 0.35, "ir-dark-face")]
)
def test_an_ir_cue_refuses_the_enrolled_owner(person, tmp_path, capsys, kind, gain, cue):
    store, shown = tmp_path / "store", tmp_path / kind
    shown.mkdir()
    for k, bgr in enumerate(frames_of(person / "live-1", 40)):
        cv2.imwrite(str(shown / f"f{k:03d}.png"), bgr if gain is None else grey(bgr, gain))
    config = tmp_path / "ir.toml"
    config.write_text(IR)
    enrol = ["enroll", "--user", "owner", "--source", str(person / "enrol"), "--frames", "10"]
    assert main([*enrol, "--store", str(store), "--threads", "1"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    verify = ["verify", "--user", "owner", "--source", str(shown), "--store", str(store), "--json"]
    assert main([*verify, "--config", str(config), "--threads", "1"]) == EXIT_NO_MATCH
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] != "match" and cue in out["reason"], out
    assert main([*verify, "--threads", "1"]) == 0, "without IR mode the same frames of the owner match"
