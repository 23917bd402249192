"""The sharpness gate tells blur from dim light, on real faces: a face at a third of the light stays
sharp, a blurred one does not, and a face in normal light reads as before, however flat (a print's
softness is not forgiven)."""

import cv2
import numpy as np
import pytest

from faceunlock.config import VerifyConfig
from faceunlock.evaluation.lights import LIGHTS, relit
from faceunlock.evaluation.shared_data import LIVE, frame_at
from faceunlock.networks import load_detector_nets
from faceunlock.vision.align import MAX_LIGHT_GAIN, REFERENCE_LEVEL, align, sharpness
from faceunlock.vision.detect import Detector

MIN_SHARPNESS = VerifyConfig().min_sharpness


def grey_mean(chip: np.ndarray) -> float:
    return float(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY).mean())


def plain(chip: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@pytest.fixture(scope="module")
def frames(video_dir):
    """Frame 30 of each live clip of the shared videos, with its face's landmarks, where the face is
    found whole in the frame (the chip's black border outside the frame would count as detail)."""
    detector = Detector(min_face_size=40, nets=load_detector_nets(threads=1))
    out = []
    for file, *_ in LIVE.values():
        rgb = frame_at(video_dir / file, 30)
        face = detector.detect(rgb).largest()
        if face is not None and (align(rgb, face.landmarks).max(axis=2) == 0).mean() < 0.01:
            out.append((rgb, face.landmarks))
    assert len(out) >= 10
    return out


def test_dim_faces_stay_sharp(frames):
    plain_fails = 0
    for rgb, marks in frames:
        assert sharpness(align(rgb, marks)) >= MIN_SHARPNESS
        dim = align(relit(rgb, LIGHTS["dim"]), marks)
        assert sharpness(dim) >= MIN_SHARPNESS
        plain_fails += plain(dim) < MIN_SHARPNESS
    assert plain_fails, "no face here would have been skipped as blurry by the plain measure"


def test_blur_still_reads_as_blur_in_any_light(frames):
    for rgb, marks in frames:
        for light in ("as filmed", "dim"):
            blurred = cv2.GaussianBlur(align(relit(rgb, LIGHTS[light]), marks), (0, 0), 3)
            assert sharpness(blurred) < MIN_SHARPNESS, light


def test_normal_light_reads_as_the_plain_laplacian_variance_however_flat(frames):
    checked = 0
    for rgb, marks in frames:
        for light in ("as filmed", "flat, low contrast"):
            chip = align(relit(rgb, LIGHTS[light]), marks)
            if grey_mean(chip) >= REFERENCE_LEVEL:
                assert sharpness(chip) == pytest.approx(plain(chip))
                checked += 1
    assert checked >= len(frames)


def test_the_compensation_is_bounded():
    """A near-black chip (noise on dark grey) gains at most MAX_LIGHT_GAIN squared."""
    noise = np.random.default_rng(0).normal(10, 2, (150, 150, 3)).clip(0, 255).astype(np.uint8)
    assert sharpness(noise) == pytest.approx(plain(noise) * MAX_LIGHT_GAIN**2)
