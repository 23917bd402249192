"""MediaPipe's face mesh on ONNX Runtime (faceunlock.vision.landmarks) on real faces.

The mesh's eyes sit on MTCNN's eye points, the face-presence probability tells faces from non-faces,
the model file is checked against its card, eye openness is a sensible ratio, and the ONNX file
matches the torch port it was exported from (and is rebuilt byte for byte by its script).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from missing import need_module, unavailable

from faceunlock.errors import ModelError
from faceunlock.networks import load_detector_nets
from faceunlock.paths import models_dir
from faceunlock.vision import landmarks as lm
from faceunlock.vision.detect import Detector

ROOT = Path(__file__).resolve().parent.parent
WHEEL = "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"


@pytest.fixture(scope="module")
def landmarker():
    return lm.FaceLandmarker(threads=1)


@pytest.fixture(scope="module")
def faces(lfw_dir):
    """(RGB photo, MTCNN face) for the first image of every 190th LFW person: 30 photos."""
    detector = Detector(min_face_size=40, nets=load_detector_nets(threads=1))
    out = []
    for person in sorted(p for p in lfw_dir.iterdir() if p.is_dir())[::190][:30]:
        rgb = cv2.cvtColor(cv2.imread(str(sorted(person.glob("*.jpg"))[0])), cv2.COLOR_BGR2RGB)
        face = detector.detect(rgb).largest()
        assert face is not None, f"no face found in {person.name}"
        out.append((rgb, face))
    return out


@pytest.fixture(scope="module")
def meshes(faces, landmarker):
    return [landmarker(rgb, face.box) for rgb, face in faces]


def test_eye_centres_on_mtcnn_eyes(faces, meshes):
    """The mean of each eye's contour lies within a few pixels of MTCNN's point for the same eye
    (faces about 100 px wide); swapped eyes or misplaced crops are off by tens of pixels."""
    errors = np.array(
        [
            np.linalg.norm(lm.eye_centres(mesh.points) - face.landmarks[:2], axis=1)
            for (_, face), mesh in zip(faces, meshes, strict=True)
        ]
    )
    assert np.median(errors) < 3.0, np.median(errors)
    assert np.mean(errors < 5.0) >= 0.9, np.sort(errors.ravel())[-6:]
    assert errors.max() < 10.0, errors.max()


def test_points_inside_the_face_box(faces, meshes):
    """The nose tip (point 1) lies inside the MTCNN box, and every point within the enlarged crop."""
    for (_, face), mesh in zip(faces, meshes, strict=True):
        x1, y1, x2, y2 = face.box
        assert x1 < mesh.points[1, 0] < x2 and y1 < mesh.points[1, 1] < y2
        cx, cy = face.center
        assert np.all(np.abs(mesh.points[:, 0] - cx) < 0.75 * face.size)
        assert np.all(np.abs(mesh.points[:, 1] - cy) < 0.75 * face.size)


def test_presence_high_on_faces_low_on_non_faces(faces, meshes, landmarker, video_dir):
    assert min(m.presence for m in meshes) > 0.9, [round(m.presence, 3) for m in meshes]
    rng = np.random.default_rng(0)
    for rgb, face in faces[:5]:
        shuffled = rgb.reshape(-1, 3)[rng.permutation(rgb.shape[0] * rgb.shape[1])].reshape(rgb.shape)
        assert landmarker(shuffled, face.box).presence < 0.05
    cap = cv2.VideoCapture(str(video_dir / "live-person-a.webm"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    for wall in ((20, 20, 140, 140), (500, 300, 620, 420)):  # corners of the room, no face
        assert landmarker(frame, wall).presence < 0.05


def test_eye_openness_on_open_eyes(meshes):
    """Open eyes in press photos: a lid gap of about a tenth to a half of the eye's width."""
    values = np.array([lm.eye_openness(m.points) for m in meshes])
    assert np.isfinite(values).all()
    assert values.min() > 0.1 and values.max() < 0.6, (values.min(), values.max())
    assert 0.2 < np.median(values) < 0.4, np.median(values)


def test_eye_openness_geometry():
    """Lid gap over corner distance, per eye by image side, from the mesh indices in LIDS."""
    points = np.zeros((lm.POINTS, 3), np.float32)
    upper, lower, c1, c2 = lm.LIDS["left"]
    points[[c1, c2, upper, lower], :2] = [(0, 0), (10, 0), (5, -2), (5, 1)]
    upper, lower, c1, c2 = lm.LIDS["right"]
    points[[c1, c2, upper, lower], :2] = [(30, 0), (50, 0), (40, -1), (40, 1)]
    assert lm.eye_openness(points) == pytest.approx((0.3, 0.1))
    assert lm.LIDS["left"] == (159, 145, 33, 133) and lm.LIDS["right"] == (386, 374, 362, 263)


def test_crop_maps_back_to_the_frame():
    """A point drawn in the frame lands where to_frame maps its crop position."""
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[140:143, 210:213] = 255  # a 3x3 dot centred on (211, 141)
    box = (150.0, 90.0, 270.0, 230.0)
    crop = lm.face_crop(frame, box)[0]
    v, u = np.unravel_index(np.argmax(cv2.GaussianBlur(crop, (0, 0), 2)), crop.shape)
    back = lm.to_frame(np.array([[u + 0.5, v + 0.5, 0.0]], np.float32), lm.crop_matrix(box))[0]
    assert np.hypot(back[0] - 211, back[1] - 141) < 1.5 * lm.crop_matrix(box)[0, 0]


def _card_copy(tmp_path: Path) -> lm.LandmarkCard:
    card = lm.load_landmark_card()
    shutil.copy(card.path, tmp_path / card.path.name)
    shutil.copy(card.onnx, tmp_path / card.onnx.name)
    return lm.load_landmark_card(folder=tmp_path)


def test_tampered_model_is_refused(tmp_path):
    card = _card_copy(tmp_path)
    data = bytearray(card.onnx.read_bytes())
    data[len(data) // 2] ^= 1
    card.onnx.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        lm.FaceLandmarker(card)


def test_missing_model_and_card_are_refused(tmp_path):
    card = _card_copy(tmp_path)
    card.onnx.unlink()
    with pytest.raises(ModelError, match=card.onnx.name):
        lm.FaceLandmarker(card)
    with pytest.raises(ModelError, match="not found"):
        lm.load_landmark_card(folder=tmp_path / "none")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / f"{lm.CARD}.json").write_text('{"name": "x"}')
    with pytest.raises(ModelError, match="malformed"):
        lm.load_landmark_card(folder=tmp_path / "bad")


def test_card_names_the_licence_and_origin():
    card = json.loads((models_dir() / f"{lm.CARD}.json").read_text())
    licence = (models_dir() / card["licence"]["file"]).read_text()
    assert card["licence"]["name"] == "Apache-2.0" and "Apache License" in licence
    assert "Version 2.0" in licence
    assert card["origin"]["path_in_wheel"] == MEMBER and card["origin"]["wheel"] == WHEEL


@pytest.fixture(scope="module")
def wheel() -> Path:
    """$FACEUNLOCK_MEDIAPIPE_WHEEL, else the copy scripts/setup.sh fetches into the cache."""
    cache = Path(os.environ.get("FACEUNLOCK_CACHE", Path.home() / ".cache" / "faceunlock"))
    path = Path(os.environ.get("FACEUNLOCK_MEDIAPIPE_WHEEL", cache / "mediapipe" / WHEEL))
    if not path.is_file():
        unavailable(f"the mediapipe wheel is missing: {path} (scripts/setup.sh fetches it)")
    return path


def test_onnx_matches_torch_port(faces, landmarker, wheel):
    """The torch port, built from the .tflite inside the wheel, and the ONNX file agree on real crops."""
    need_module("torch", "the torch port")
    need_module("tflite", "reading the .tflite: pip install tflite")
    import torch

    from faceunlock.vision.landmark_net import LandmarkNet, read_tflite

    with zipfile.ZipFile(wheel) as archive:
        tflite = archive.read(MEMBER)
    assert hashlib.sha256(tflite).hexdigest() == landmarker.card.source_sha256
    net = LandmarkNet(read_tflite(tflite)).eval()
    crops = np.stack([lm.face_crop(rgb, face.box) for rgb, face in faces[:10]])
    points, logits = landmarker.run(crops)
    with torch.no_grad():
        ref_points, ref_logits = (t.numpy() for t in net(torch.from_numpy(crops)))
    assert np.abs(points.reshape(len(crops), -1) - ref_points).max() < 1e-2
    assert np.abs(logits - ref_logits.ravel()).max() < 1e-3


def test_export_is_reproducible(tmp_path, wheel):
    """scripts/export_face_landmark.py rebuilds the card's ONNX file byte for byte."""
    for name in ("torch", "onnx", "tflite"):
        need_module(name, "the export")
    script = ROOT / "scripts" / "export_face_landmark.py"
    cmd = [sys.executable, str(script), "--wheel", str(wheel), "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = lm.load_landmark_card()
    written = tmp_path / card.onnx.name
    assert hashlib.sha256(written.read_bytes()).hexdigest() == card.onnx_sha256
