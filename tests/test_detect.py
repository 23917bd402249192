"""The MTCNN cascade on real faces: boxes, landmark geometry, minimum face size, bad input."""

import cv2
import numpy as np
import pytest

from faceunlock.camera import read_image
from faceunlock.vision.detect import Detector


@pytest.fixture(scope="module")
def detector():
    return Detector(min_face_size=20, threads=2)


@pytest.fixture(scope="module")
def lfw_sample(lfw_dir):
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())[::190][:30]
    return [sorted(p.glob("*.jpg"))[0] for p in people]


def central(detection):
    h, w = detection.image_shape
    return min(
        detection.faces, key=lambda f: np.hypot(f.center[0] - w / 2, f.center[1] - h / 2), default=None
    )


def test_finds_the_central_face_with_sane_landmarks(detector, lfw_sample):
    found = 0
    for path in lfw_sample:
        det = detector.detect(read_image(path))
        face = central(det)
        if face is None or np.hypot(face.center[0] - 125, face.center[1] - 125) > 30:
            continue
        found += 1
        x1, y1, x2, y2 = face.box
        lm = face.landmarks
        assert lm.shape == (5, 2) and face.score > 0.9
        assert np.all((lm[:, 0] > x1 - 2) & (lm[:, 0] < x2 + 2) & (lm[:, 1] > y1 - 2) & (lm[:, 1] < y2 + 2))
        left_eye, right_eye, nose, mouth_l, mouth_r = lm
        assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0], path.name
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1]), path.name
    assert found >= len(lfw_sample) - 1


def test_faces_are_sorted_largest_first(detector, lfw_dir):
    img = read_image(sorted(lfw_dir.glob("*/*.jpg"))[0])
    canvas = np.zeros((400, 700, 3), np.uint8)
    canvas[50:300, 20:270] = img
    canvas[100:225, 400:525] = cv2.resize(img, (125, 125))
    det = detector.detect(canvas)
    assert det.multiple
    sizes = [f.size for f in det.faces]
    assert sizes == sorted(sizes, reverse=True)
    assert det.largest().center[0] < 300


def test_webcam_frame_has_one_large_face(detector, video_dir):
    cap = cv2.VideoCapture(str(video_dir / "live-person-a.webm"))
    ok, frame = cap.read()
    assert ok
    det = Detector(min_face_size=60, threads=2, nets=detector.nets).detect(
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    )
    assert len(det.faces) == 1 and det.faces[0].size > 80


def test_min_face_size_is_respected(detector, lfw_sample):
    img = read_image(lfw_sample[0])
    small = cv2.resize(img, (100, 100), interpolation=cv2.INTER_AREA)
    assert detector.detect(small).faces, "a ~45 px face is found with min_face_size=20"
    strict = Detector(min_face_size=80, nets=detector.nets)
    assert not strict.detect(small).faces, "and not with min_face_size=80"


def test_blank_images_have_no_face(detector):
    assert detector.detect(np.zeros((240, 320, 3), np.uint8)).faces == []
    assert detector.detect(np.full((240, 320, 3), 255, np.uint8)).faces == []


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((0, 10, 3), np.uint8), "img"],
)
def test_invalid_input_is_a_clear_error(detector, bad):
    with pytest.raises(ValueError):
        detector.detect(bad)
