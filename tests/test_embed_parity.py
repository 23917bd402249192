"""The torch port against dlib's own compute_face_descriptor on real face chips.

dlib is a test-only dependency: it makes the chips (its detector, 5-point landmarks and
get_face_chip) and the reference descriptors.
"""

import cv2
import numpy as np
import pytest
import torch
from missing import unavailable

from faceunlock.vision.embed import (
    default_weights_path,
    load_face_resnet,
    save_state,
    torch_embedder,
    weights_sha256,
)

N_PEOPLE = 16
VIDEO = "live-person-a.webm"
VIDEO_FRAMES = (0, 40, 80, 120)
TOLERANCE = 1e-4


def _missing(msg: str):
    unavailable(msg)


@pytest.fixture(scope="module")
def dlib():
    try:
        import dlib
    except ImportError as e:
        _missing(f"dlib is needed for the parity test: {e}")
    return dlib


@pytest.fixture(scope="module")
def weights():
    try:
        return default_weights_path()
    except FileNotFoundError as e:
        _missing(str(e))


@pytest.fixture(scope="module")
def chipper(dlib, weights):
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(weights.parent / "shape_predictor_5_face_landmarks.dat"))

    def chip(rgb: np.ndarray, upsample: int) -> np.ndarray | None:
        faces = detector(rgb, upsample)
        if not faces:
            return None
        cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
        face = min(faces, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        return dlib.get_face_chip(rgb, predictor(rgb, face), size=150, padding=0.25)

    return chip


@pytest.fixture(scope="module")
def chips(chipper, lfw_dir, video_dir):
    """~16 LFW chips of different people, then a few webcam frames."""
    out = []
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())
    for person in people[:: len(people) // N_PEOPLE][:N_PEOPLE]:
        image = sorted(person.glob("*.jpg"))[0]
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        chip = chipper(rgb, 1)
        if chip is not None:
            out.append(chip)
    assert len(out) >= N_PEOPLE - 2, "too few LFW faces detected"

    cap = cv2.VideoCapture(str(video_dir / VIDEO))
    n_video = 0
    try:
        for index in range(max(VIDEO_FRAMES) + 1):
            ok, frame = cap.read()
            assert ok, f"could not read frame {index} of {VIDEO}"
            if index in VIDEO_FRAMES:
                chip = chipper(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), 0)
                if chip is not None:
                    out.append(chip)
                    n_video += 1
    finally:
        cap.release()
    assert n_video >= len(VIDEO_FRAMES) - 1, "too few faces found in the video"
    return np.stack(out)


@pytest.fixture(scope="module")
def reference(dlib, weights, chips):
    facerec = dlib.face_recognition_model_v1(str(weights))
    return np.array([facerec.compute_face_descriptor(c) for c in chips], dtype=np.float32)


@pytest.fixture(scope="module")
def embedder():
    return torch_embedder(threads=2)


def test_matches_dlib(embedder, chips, reference):
    ours = embedder.embed(chips)
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float32
    diff = np.abs(ours - reference).max()
    assert diff <= TOLERANCE, f"max per-element difference to dlib {diff:.3g}"


def test_batch_equals_single(embedder, chips):
    batch = embedder.embed(chips)
    single = np.concatenate([embedder.embed(c) for c in chips[:4]])
    np.testing.assert_allclose(single, batch[:4], atol=1e-5)


def test_flip_is_close_but_different(chips):
    plain = torch_embedder(threads=2).embed(chips)
    flipped = torch_embedder(flip=True, threads=2).embed(chips)
    dist = np.linalg.norm(plain - flipped, axis=1)
    assert (dist > 1e-3).all()
    assert (dist < 0.3).all(), f"flip moved descriptors by up to {dist.max():.3f}"


def test_fingerprint_and_means(embedder, weights):
    assert embedder.fingerprint == weights_sha256(weights)
    assert len(embedder.fingerprint) == 64
    np.testing.assert_allclose(embedder.means, (122.782, 117.001, 104.298), atol=1e-4)


def test_rejects_bad_chips(embedder):
    with pytest.raises(ValueError, match="uint8"):
        embedder.embed(np.zeros((150, 150, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="150"):
        embedder.embed(np.zeros((1, 160, 160, 3), dtype=np.uint8))


def test_state_dict_round_trip(embedder, chips, tmp_path):
    path = tmp_path / "port.pt"
    save_state(embedder.net.module, path)
    reloaded = load_face_resnet(path)
    torch.testing.assert_close(reloaded.state_dict(), embedder.net.module.state_dict())
    again = torch_embedder(path, threads=2).embed(chips[:2])
    np.testing.assert_array_equal(again, embedder.embed(chips[:2]))


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install face-recognition-models"):
        default_weights_path()
