"""Following a face between full detections: O-Net alone on last frame's box, on real recordings."""

import cv2
import numpy as np
import pytest

from faceunlock.networks import load_detector
from faceunlock.vision.detect import Detection, Face
from faceunlock.vision.track import TrackPolicy, locate, moved_too_far


@pytest.fixture(scope="module")
def detector():
    return load_detector(40, threads=1)


def read(video_dir, name: str, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video_dir / name))
    frames = []
    try:
        while len(frames) < count:
            ok, frame = cap.read()
            assert ok, f"{name} has fewer than {count} frames"
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return frames


@pytest.mark.parametrize("name", ["live-person-a.webm", "live-person-c.mp4"])
def test_followed_landmarks_stay_near_full_detection(detector, video_dir, name):
    """person-c's face fills the frame's width: its square leaves the frame and is padded."""
    frames = read(video_dir, name, 60)
    previous, age, ages, gaps = None, 0, [], []
    for rgb in frames:
        detection, age = locate(detector, rgb, previous, age, TrackPolicy(redetect_every=5))
        ages.append(age)
        full = detector.detect(rgb)
        if age and full.faces:
            a, b = full.faces[0], detection.faces[0]
            gaps.append(np.abs(a.landmarks - b.landmarks).max() / a.size)
        previous = detection
    assert ages[:6] == [0, 1, 2, 3, 4, 0], "a full detection every 5 frames"
    assert len(gaps) >= 40
    assert np.median(gaps) < 0.03 and max(gaps) < 0.1, (np.median(gaps), max(gaps))


def test_a_lost_face_means_a_full_detection(detector, video_dir):
    rgb = read(video_dir, "live-person-a.webm", 30)[-1]
    found = detector.detect(rgb)
    assert len(found.faces) == 1
    assert detector.refine(np.zeros_like(rgb), found.faces[0].box) is None
    blank = np.full_like(rgb, 90)
    detection, age = locate(detector, blank, found, 0, TrackPolicy())
    assert age == 0 and detection.faces == []


def test_no_following_from_several_faces_or_after_k_frames(detector, video_dir):
    rgb = read(video_dir, "live-person-a.webm", 30)[-1]
    one = detector.detect(rgb)
    two = Detection(faces=one.faces * 2, image_shape=one.image_shape)
    assert locate(detector, rgb, one, 0, TrackPolicy())[1] == 1
    assert locate(detector, rgb, two, 0, TrackPolicy())[1] == 0
    assert locate(detector, rgb, one, 4, TrackPolicy(redetect_every=5))[1] == 0


def test_moving_too_far_is_caught():
    def face(x, size=100.0):
        return Face(box=(x, 0.0, x + size, size), landmarks=np.zeros((5, 2)), score=1.0)

    policy = TrackPolicy(max_shift=0.25, max_scale=0.25)
    assert not moved_too_far(face(0), face(20), policy)
    assert moved_too_far(face(0), face(30), policy)
    assert moved_too_far(face(0), face(0, 130), policy)
    assert moved_too_far(face(0), face(0, 75), policy)
    assert not moved_too_far(face(0), face(0, 115), policy)
