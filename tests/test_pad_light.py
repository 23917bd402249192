"""Fitting the liveness networks to other exposure (faceunlock/training/pad_light.py), on real
webcam frames."""

import numpy as np
import pytest
import torch

from faceunlock.camera import open_source
from faceunlock.liveness.card import load_liveness_card
from faceunlock.liveness.network import load_minifasnet
from faceunlock.training.pad_crops import region
from faceunlock.training.pad_light import FRONT, LightRange, as_input, distil, real_log_odds, relight
from faceunlock.vision.detect import Detector


def frames_with_faces(path, every=20, most=8):
    detector = Detector(min_face_size=40, max_side=640, threads=1)
    out = []
    with open_source(str(path)) as source:
        for k, rgb in enumerate(source.frames()):
            if k % every:
                continue
            face = detector.detect(rgb).largest()
            if face is not None:
                out.append((rgb, face.box))
            if len(out) == most:
                break
    assert out, f"no face found in {path}"
    return out


@pytest.fixture(scope="module")
def person_c(video_dir):
    """Held-out clips (report split): person C live and that person's screen replay."""
    return {
        "live": frames_with_faces(video_dir / "live-person-c.mp4"),
        "replay": frames_with_faces(video_dir / "replay-person-c.mp4"),
    }


def test_relight_stays_in_8_bits_and_is_seeded():
    crops = np.random.default_rng(1).integers(0, 256, (40, 80, 80, 3), dtype=np.uint8)
    a = relight(crops, np.random.default_rng(7))
    b = relight(crops, np.random.default_rng(7))
    assert a.dtype == np.uint8 and a.shape == crops.shape
    assert np.array_equal(a, b)
    brighter = np.array([x.mean() > c.mean() + 5 for x, c in zip(a, crops, strict=True)])
    assert 0 < brighter.sum() < len(crops)
    none = LightRange(bright_share=0, dim_share=0, contrast_share=0, gamma_share=0, cast_share=0)
    assert np.array_equal(relight(crops, np.random.default_rng(7), none), crops)


def test_distillation_brings_a_relit_crop_to_the_teachers_answer_as_filmed(person_c):
    """A few steps on real crops shrink the gap between the student's answer on bright crops and
    the teacher's on the same crops as filmed; only the front layers move, and the student still
    tells person C from that person's screen replay as filmed (it was fitted on these crops: this
    checks the fit, not how it generalises)."""
    spec = load_liveness_card().networks[0]
    teacher = load_minifasnet(spec.weights, spec.weights_sha256)
    crops = np.stack([region(rgb, box, spec.scale) for rgb, box in person_c["live"] + person_c["replay"]])
    lit = relight(crops, np.random.default_rng(3), LightRange(bright_share=1.0, bright=(1.8, 2.2)))

    def odds(net, x):
        with torch.no_grad():
            return real_log_odds(net(as_input(x))).clamp(-8, 8).numpy()

    def gap(net):
        return float(np.abs(odds(net, lit) - odds(teacher, crops)).mean())

    student = distil(teacher, crops, steps=40, batch=16, lr=1e-3)
    assert gap(student) < 0.7 * gap(teacher)
    assert all(not p.requires_grad for p in student.parameters())
    before, after = dict(teacher.named_parameters()), dict(student.named_parameters())
    moved = {name.split(".")[0] for name in after if not torch.equal(after[name], before[name])}
    assert moved and moved <= set(FRONT), moved
    as_filmed = odds(student, crops)
    live = len(person_c["live"])
    assert np.median(as_filmed[:live]) > 2 and np.median(as_filmed[live:]) < -2
