"""The MTCNN cascade on real faces: boxes, landmark geometry, minimum face size, bad input."""

import cv2
import numpy as np
import pytest

from faceunlock.networks import load_detector_nets
from faceunlock.vision.detect import Detection, Detector, Face


def read_rgb(path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, f"cannot read {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def nets():
    """The run-time nets: ONNX Runtime, one thread."""
    return load_detector_nets(threads=1)


@pytest.fixture(scope="module")
def detector(nets):
    return Detector(min_face_size=40, nets=nets)


@pytest.fixture(scope="module")
def lfw_sample(lfw_dir):
    """The first image of every 190th person, in sorted order: 30 images, 250x250."""
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())[::190][:30]
    return [sorted(p.glob("*.jpg"))[0] for p in people]


@pytest.fixture(scope="module")
def webcam_frame(video_dir):
    cap = cv2.VideoCapture(str(video_dir / "live-person-a.webm"))
    try:
        for _ in range(30):  # skip the camera's first second
            ok, frame = cap.read()
            assert ok, "the recording is shorter than 30 frames"
    finally:
        cap.release()
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def central(detection: Detection) -> Face | None:
    h, w = detection.image_shape
    return min(
        detection.faces,
        key=lambda f: np.hypot(f.center[0] - w / 2, f.center[1] - h / 2),
        default=None,
    )


def test_finds_the_central_lfw_face_with_sane_landmarks(detector, lfw_sample):
    assert len(lfw_sample) == 30
    missed = []
    for path in lfw_sample:
        det = detector.detect(read_rgb(path))
        assert det.image_shape == (250, 250)
        face = central(det)
        if face is None or np.hypot(face.center[0] - 125, face.center[1] - 125) > 30:
            missed.append(path.name)
            continue
        x1, y1, x2, y2 = face.box
        marks = face.landmarks
        assert marks.shape == (5, 2) and marks.dtype == np.float32
        assert face.score > 0.9 and 60 < face.size < 200, path.name
        assert np.all((marks[:, 0] >= x1) & (marks[:, 0] <= x2)), path.name
        assert np.all((marks[:, 1] >= y1) & (marks[:, 1] <= y2)), path.name
        left_eye, right_eye, nose, mouth_left, mouth_right = marks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0], path.name
        assert max(left_eye[1], right_eye[1]) < nose[1], path.name
        assert nose[1] < min(mouth_left[1], mouth_right[1]), path.name
    assert len(missed) <= 1, missed


def test_webcam_frame_has_one_large_face(detector, webcam_frame):
    assert webcam_frame.shape == (480, 640, 3)
    det = detector.detect(webcam_frame)
    assert det.image_shape == (480, 640)
    assert len(det.faces) == 1 and not det.multiple
    assert det.largest() is det.faces[0]
    assert det.faces[0].size > 80 and det.faces[0].score > 0.9


def test_faces_are_sorted_largest_first(detector, lfw_sample):
    img = read_rgb(lfw_sample[0])
    canvas = np.zeros((400, 700, 3), np.uint8)
    canvas[50:300, 20:270] = img
    canvas[100:225, 400:525] = cv2.resize(img, (125, 125), interpolation=cv2.INTER_AREA)
    det = detector.detect(canvas)
    assert det.multiple
    areas = [f.area for f in det.faces]
    assert areas == sorted(areas, reverse=True)
    assert det.largest().center[0] < 270  # the full-size copy, on the left


def test_blank_and_tiny_images_have_no_face(detector):
    for value in (0, 255):
        det = detector.detect(np.full((240, 320, 3), value, np.uint8))
        assert det.faces == [] and det.largest() is None and not det.multiple
    for tiny in [(1, 1, 3), (5, 300, 3)]:  # too small for even one pyramid level
        assert detector.detect(np.zeros(tiny, np.uint8)).faces == []


def test_min_face_size_is_respected(nets, lfw_sample):
    """Shrunk to 60x60, the faces are about 30 px: found at 20, not reported at 40."""
    loose = Detector(min_face_size=20, nets=nets)
    strict = Detector(min_face_size=40, nets=nets)
    found = 0
    for path in lfw_sample[:8]:
        small = cv2.resize(read_rgb(path), (60, 60), interpolation=cv2.INTER_AREA)
        faces = loose.detect(small).faces
        found += any(20 <= f.size < 40 for f in faces)
        assert all(f.size >= 20 for f in faces)
        assert strict.detect(small).faces == []
    assert found >= 7


def test_max_side_maps_results_back_to_the_input(nets, detector, webcam_frame):
    full = detector.detect(webcam_frame).faces[0]
    det = Detector(min_face_size=40, max_side=320, nets=nets).detect(webcam_frame)
    assert det.image_shape == (480, 640) and len(det.faces) == 1
    half = det.faces[0]
    tolerance = 0.06 * full.size
    assert np.abs(np.subtract(half.box, full.box)).max() < tolerance
    assert np.abs(half.landmarks - full.landmarks).max() < tolerance


def test_detect_many_agrees_with_detect(detector, lfw_sample, webcam_frame):
    images = [read_rgb(p) for p in lfw_sample[:3]] + [webcam_frame]
    for one, many in zip([detector.detect(im) for im in images], detector.detect_many(images), strict=True):
        assert one.image_shape == many.image_shape
        assert len(one.faces) == len(many.faces)
        for a, b in zip(one.faces, many.faces, strict=True):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((10, 10, 3), bool),
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((10, 0, 3), np.uint8),
        [[[0, 0, 0]]],
        None,
    ],
    ids=["gray", "rgba", "float", "bool", "no-rows", "no-columns", "list", "none"],
)
def test_invalid_input_is_a_clear_error(detector, bad):
    with pytest.raises(ValueError, match="image"):
        detector.detect(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_face_size": 0},
        {"thresholds": (0.6, 0.7)},
        {"thresholds": (0.6, 0.7, 1.5)},
        {"scale_factor": 1.0},
        {"threads": 0},
        {"max_side": 8},
    ],
)
def test_bad_settings_are_refused(nets, kwargs):
    with pytest.raises(ValueError):
        Detector(nets=nets, **kwargs)


def test_face_helpers():
    face = Face(box=(10, 20, 50, 80), landmarks=np.zeros((5, 2)), score=0.99)
    assert (face.width, face.height, face.size, face.area) == (40, 60, 60, 2400)
    assert face.center == (30, 50)
    assert face.landmarks.dtype == np.float32 and not face.landmarks.flags.writeable
    det = Detection(faces=[face], image_shape=(100, 100))
    assert det.largest() is face and not det.multiple and not det.crowded
    behind = Face(box=(70, 20, 90, 40), landmarks=np.zeros((5, 2)), score=0.9)
    beside = Face(box=(60, 20, 100, 65), landmarks=np.zeros((5, 2)), score=0.9)
    assert (
        Detection([face, behind], (100, 100)).multiple and not Detection([face, behind], (100, 100)).crowded
    )
    assert Detection([face, beside], (100, 100)).crowded, "45 of 60 pixels: of similar size"
