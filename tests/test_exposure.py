"""Face metering ([camera] exposure = face): a washed-out face makes a camera's exposure shorter, and
the camera gets its own exposure back when the source closes.

There is no camera on the test machines: the controller is driven through SimulatedCamera, a
stand-in with V4L2's exposure controls that films real frames of the shared clips in bright light
(the exposure scales the light before the 8-bit clipping), and the ioctls are checked against the
kernel's struct layout and on a real device node that has no controls (/dev/null)."""

import struct

import numpy as np
import pytest

from faceunlock import exposure as ex
from faceunlock.evaluation.lights import LIGHTS, relit
from faceunlock.evaluation.simulated_camera import APERTURE_PRIORITY, BASE_EXPOSURE, SimulatedCamera
from faceunlock.v4l2_controls import (
    CID_EXPOSURE_ABSOLUTE,
    CID_EXPOSURE_AUTO,
    EXPOSURE_MANUAL,
    FLAG_READ_ONLY,
    VIDIOC_G_CTRL,
    VIDIOC_QUERYCTRL,
    VIDIOC_S_CTRL,
    ControlRange,
    V4L2Controls,
    parse_query,
)


def iowr(nr: int, size: int) -> int:
    """The kernel's _IOWR('V', nr, size)."""
    return (3 << 30) | (size << 16) | (ord("V") << 8) | nr


def test_the_ioctls_and_struct_are_the_kernels():
    assert VIDIOC_QUERYCTRL == iowr(36, 68) and VIDIOC_G_CTRL == iowr(27, 8) and VIDIOC_S_CTRL == iowr(28, 8)
    fields = (b"Exposure Time, Absolute", 3, 2047, 2, 250, 0x10)
    raw = struct.pack("<II32siiiiI2I", CID_EXPOSURE_ABSOLUTE, 1, *fields, 0, 0)
    assert len(raw) == 68
    r = parse_query(raw)
    assert (r.name.encode(), r.minimum, r.maximum, r.step, r.default, r.flags) == fields
    assert r.writable, "inactive (in auto mode) is still settable"
    assert not ControlRange("x", 0, 1, 1, 0, FLAG_READ_ONLY).writable
    assert [r.clamp(v) for v in (0, 4.6, 100, 9999)] == [3, 5, 99, 2047], "in range, on the step grid"


def test_a_device_without_controls_is_left_alone():
    controls = V4L2Controls("/dev/null")
    try:
        assert controls.query(CID_EXPOSURE_AUTO) is None
        assert ex.ExposureControl(controls).off == "no settable exposure"
    finally:
        controls.close()
    with pytest.raises(FileNotFoundError):
        V4L2Controls("/dev/no-such-camera")


@pytest.fixture(scope="module")
def face(video_dir):
    """A frame of a real live clip and its detected face's box."""
    from faceunlock.camera import open_source
    from faceunlock.config import Config
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline

    with open_source(str(video_dir / "live-person-c.mp4")) as source:
        frame = next(f for i, f in enumerate(source.frames()) if i == 30)
    result = Pipeline(Config(), load_card(), threads=1).analyse(frame)
    assert result.face is not None
    return frame, result.face.box


def film(camera: SimulatedCamera, control: ex.ExposureControl, frame, box, n: int):
    """n frames of a still face through the camera, each metered; the last one as filmed."""
    return list(film_each(camera, control, frame, box, n))[-1]


def test_a_washed_out_face_shortens_the_exposure_until_it_is_in_range_and_the_camera_gets_it_back(face):
    frame, box = face
    mean, clipped = ex.face_light(relit(frame, LIGHTS["bright"]), box)
    assert clipped >= ex.OVER_SHARE or mean >= ex.OVER_MEAN, "the bright face is washed out"
    camera = SimulatedCamera(LIGHTS["bright"])
    control = ex.ExposureControl(camera)
    assert control.off is None
    last = film(camera, control, frame, box, 30)
    mean, clipped = ex.face_light(last, box)
    assert clipped < ex.OVER_SHARE and ex.UNDER_MEAN <= mean < ex.OVER_MEAN, (mean, clipped, camera.sets)
    assert camera.sets[0] == (CID_EXPOSURE_AUTO, EXPOSURE_MANUAL), "taken over before the first change"
    values = [v for cid, v in camera.sets if cid == CID_EXPOSURE_ABSOLUTE]
    assert 1 <= len(values) <= ex.MAX_CHANGES and max(values) < BASE_EXPOSURE, values
    assert control.active and camera.values[CID_EXPOSURE_ABSOLUTE] == control.value
    settled = len(camera.sets)
    film(camera, control, frame, box, 10)
    assert len(camera.sets) == settled, "a face in range leaves the camera alone"
    control.restore()
    assert camera.values == {CID_EXPOSURE_AUTO: APERTURE_PRIORITY, CID_EXPOSURE_ABSOLUTE: BASE_EXPOSURE}
    assert not control.active
    control.restore()
    assert len(camera.sets) == settled + 2, "given back once"


def test_a_face_in_range_or_dark_never_takes_the_camera_over(face):
    frame, box = face
    for light in ("as filmed", "dim"):
        camera = SimulatedCamera(LIGHTS[light])
        control = ex.ExposureControl(camera)
        film(camera, control, frame, box, 10)
        control.observe(frame, None)
        assert camera.sets == [] and not control.active, light
        control.restore()
        assert camera.sets == []


def test_the_exposure_is_never_made_longer_than_the_cameras_own(face):
    """A face made too dark by the last change is brightened, but never beyond the taken-over value."""
    frame, box = face
    camera = SimulatedCamera(LIGHTS["bright"])
    control = ex.ExposureControl(camera)
    film(camera, control, frame, box, 3)
    assert control.active
    dark = (frame * 0.2).astype(np.uint8)
    for _ in range(40):
        control.observe(dark, box)
    values = [v for cid, v in camera.sets if cid == CID_EXPOSURE_ABSOLUTE]
    assert values[-1] == BASE_EXPOSURE and max(values) == BASE_EXPOSURE, values
    assert len(values) <= ex.MAX_CHANGES


def test_a_bright_face_in_a_dark_room_is_never_darkened_into_skipped_frames(face):
    """Dark frames are skipped before they are metered, so metering must never make them."""
    frame, box = face
    x1, y1, x2, y2 = (int(v) for v in box)
    lit = np.zeros_like(frame)
    lit[y1:y2, x1:x2] = frame[y1:y2, x1:x2]
    camera = SimulatedCamera(LIGHTS["bright"])
    control = ex.ExposureControl(camera, floor=50.0)
    means = [float(shown[::4, ::4].mean()) for shown in film_each(camera, control, lit, box, 30)]
    assert means[0] > 50 and camera.sets, "the face is washed out and the room dark: metering acts"
    assert min(means) >= 50, means
    mean, clipped = ex.face_light(relit(lit, LIGHTS["bright"]), box)
    assert clipped >= ex.OVER_SHARE or mean >= ex.OVER_MEAN


def film_each(camera, control, frame, box, n: int):
    """The n frames of film() one by one."""
    for shown in camera.frames([frame] * n):
        control.observe(shown, box)
        yield shown


class Stuck(SimulatedCamera):
    """A camera that takes the settings and films as before, or refuses to be set."""

    def __init__(self, refuse: int | None = None):
        super().__init__(LIGHTS["bright"])
        self.refuse = refuse

    def set(self, cid, value):
        if cid == self.refuse:
            raise OSError(5, "Input/output error")
        super().set(cid, value)

    def query(self, cid):
        r = super().query(cid)
        return ControlRange(r.name, 1, 100_000, 1, 10_000, 0) if cid == CID_EXPOSURE_ABSOLUTE else r

    def exposure(self):
        return 1.0


def test_a_camera_that_ignores_the_changes_is_changed_a_bounded_number_of_times(face):
    frame, box = face
    camera = Stuck()
    camera.values[CID_EXPOSURE_ABSOLUTE] = 50_000
    control = ex.ExposureControl(camera)
    film(camera, control, frame, box, 100)
    values = [v for cid, v in camera.sets if cid == CID_EXPOSURE_ABSOLUTE]
    assert len(values) == ex.MAX_CHANGES and values[-1] > 1, values


def test_a_refused_change_stops_metering_and_still_gives_the_camera_back(face, caplog):
    frame, box = face
    camera = Stuck(refuse=CID_EXPOSURE_ABSOLUTE)
    control = ex.ExposureControl(camera, "camera /dev/video7")
    film(camera, control, frame, box, 10)
    assert control.off == "its exposure could not be changed: Input/output error"
    assert "camera /dev/video7: face metering stops" in caplog.text
    assert camera.sets == [(CID_EXPOSURE_AUTO, EXPOSURE_MANUAL)]
    control.restore()
    assert camera.values[CID_EXPOSURE_AUTO] == APERTURE_PRIORITY, "the mode is given back, the time not"
    assert "could not give back its exposure time 300: [Errno 5] Input/output error" in caplog.text


def test_a_camera_without_a_manual_mode_is_not_metered():
    class AutoOnly(SimulatedCamera):
        def query(self, cid):
            r = super().query(cid)
            return ControlRange(r.name, 3, 3, 1, 3, 0) if cid == CID_EXPOSURE_AUTO else r

    assert ex.ExposureControl(AutoOnly(None)).off == "no manual exposure mode"


class Face:
    def __init__(self, box):
        self.box = box


def metered_source(camera: SimulatedCamera, frames):
    """A CameraSource metered on `camera`, reading `frames` through it (no device here)."""
    from faceunlock.camera import CameraSource, FrameStats, SourceOptions

    camera.close = lambda: camera.sets.append(("closed", 0))
    source = CameraSource.__new__(CameraSource)
    source.options, source.stats, source.deadline = SourceOptions(exposure="face"), FrameStats(), None
    source.cap, source.controls, source.description = None, camera, "camera /dev/video7"
    source.exposure = ex.ExposureControl(camera, source.description, 2 * source.options.dark_threshold)
    source.raw_frames = lambda: camera.frames(frames)
    return source


def test_closing_a_metered_camera_gives_its_exposure_back(face):
    """CameraSource.close, on a source whose capture is already gone."""
    frame, box = face
    camera = SimulatedCamera(LIGHTS["bright"])
    source = metered_source(camera, [frame] * 3)
    for shown in source.frames():
        source.meter(shown, Face(box))
    assert source.exposure.active
    source.close()
    assert camera.values == {CID_EXPOSURE_AUTO: APERTURE_PRIORITY, CID_EXPOSURE_ABSOLUTE: BASE_EXPOSURE}
    assert camera.sets[-1] == ("closed", 0) and source.exposure is None


def test_a_stale_exposure_that_turns_every_frame_dark_is_given_back(face, caplog):
    """A camera that reports a stale, tiny exposure in auto mode: the first change leaves only dark
    frames, which are skipped before they are metered. After DARK_RUN of them the camera gets its
    own exposure back, and the scan sees the face again."""
    frame, box = face
    camera = SimulatedCamera(LIGHTS["bright"])
    camera.values[CID_EXPOSURE_ABSOLUTE] = 5
    source = metered_source(camera, [frame] * 30)
    delivered = []
    for shown in source.frames():
        delivered.append(shown)
        source.meter(shown, Face(box))
    skipped = source.stats.dark + source.stats.black
    assert skipped == ex.DARK_RUN + camera.latency, source.stats
    assert source.exposure.off == f"{ex.DARK_RUN} dark frames in a row after shortening its exposure"
    assert camera.values[CID_EXPOSURE_AUTO] == APERTURE_PRIORITY and not source.exposure.active
    assert len(delivered) == 30 - skipped and delivered[-1].mean() > 100, "frames as the camera gives them"
    assert "camera /dev/video7: face metering stops: 4 dark frames" in caplog.text


def test_the_exposure_setting_is_checked():
    from faceunlock.config import Config, from_dict
    from faceunlock.errors import ConfigError

    assert Config().camera.exposure == "face"
    with pytest.raises(ConfigError, match="camera.exposure: 'sunny' is not one of face, camera"):
        from_dict({"camera": {"exposure": "sunny"}})


def test_doctor_says_when_a_camera_cannot_be_metered():
    from faceunlock.exposure import why_not_metered
    from faceunlock.service.doctor import metering

    assert why_not_metered("/dev/null") == "no settable exposure"
    assert why_not_metered("/dev/no-such-camera").startswith("its controls cannot be opened: No such file")
    finding = metering("/dev/null")
    assert finding.status == "info" and "no face metering (no settable exposure)" in finding.message


def test_a_scan_in_bright_light_is_doubted_and_matches_when_metered(data_dir):
    """A held-out live clip that liveness doubts in bright light (gain 1.8) matches through a
    simulated camera metered on the face: the scan tells the camera where the face is."""
    from faceunlock.config import Config
    from faceunlock.enroll import capture
    from faceunlock.evaluation.liveness import ENROL_FRAMES
    from faceunlock.evaluation.sessions import scan_at_each_level
    from faceunlock.evaluation.shared_data import recorded_clips
    from faceunlock.model import load_card
    from faceunlock.pipeline import Pipeline

    clip = next(c for c in recorded_clips(data_dir, "report") if c.name == "live-kevin")
    cfg, card = Config(), load_card()
    pipeline = Pipeline(cfg, card, threads=1)
    anchors = capture(pipeline, clip.enrol(), ENROL_FRAMES, cfg.verify, cfg.enroll.timeout)
    stretch = list(clip.frames())[:25]
    bright = [relit(f, LIGHTS["bright"]) for f in stretch]
    plain = scan_at_each_level(pipeline, cfg, card, bright, clip.name, anchors)["balanced"]
    assert (plain.decision, plain.liveness) == ("no-match", "doubt")
    metered = scan_at_each_level(pipeline, cfg, card, stretch, clip.name, anchors, LIGHTS["bright"])[
        "balanced"
    ]
    assert metered.decision == "match", (metered.reason, metered.liveness)


def test_an_exposure_read_out_of_range_is_taken_as_the_controls_default(face):
    frame, box = face
    camera = SimulatedCamera(LIGHTS["bright"])
    camera.values[CID_EXPOSURE_ABSOLUTE] = 0
    control = ex.ExposureControl(camera)
    film(camera, control, frame, box, 1)
    default = camera.query(CID_EXPOSURE_ABSOLUTE).default
    assert control.original == (APERTURE_PRIORITY, default) and camera.sets[1][1] < default
    control.restore()
    assert camera.values[CID_EXPOSURE_ABSOLUTE] == default
