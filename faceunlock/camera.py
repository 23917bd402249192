"""Frame sources: a V4L2 camera, a video file, an image file or a folder of images.

Every source yields RGB uint8 frames, skips fully black and too-dark frames (IR
emitters strobe) while counting them, and never blocks its caller for longer
than its open or read timeout: blocking OpenCV calls run on a worker thread that
is abandoned when it overruns.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceunlock.config import AUTO_CAMERA, device_path
from faceunlock.errors import CameraError
from faceunlock.exposure import ExposureControl
from faceunlock.v4l2_controls import V4L2Controls

log = logging.getLogger("faceunlock.camera")

MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 64 * 1024 * 1024
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
"""FFmpeg quiet (AV_LOG_QUIET): a corrupt video is reported once, in our words, not as its log lines."""

import cv2  # noqa: E402  (the environment above must be set before OpenCV loads)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm", ".ppm", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".webm", ".mp4", ".mkv", ".avi", ".mov", ".m4v", ".ogv", ".mjpeg", ".y4m"}
BLACK_LEVEL = 2
VIDIOC_QUERYCAP = 0x80685600
V4L2_CAP_VIDEO_CAPTURE = 0x1
V4L2_CAP_DEVICE_CAPS = 0x80000000


class SourceNotFound(CameraError):
    """The device, file or folder does not exist."""


class SourceBusy(CameraError):
    """The camera is held by another program."""


class SourceUnreadable(CameraError):
    """The file or device exists but yields no decodable frame."""


class UnsupportedSource(CameraError):
    """The path is of a kind or format that is not a frame source."""


class SourceTimeout(CameraError):
    """Opening or reading took longer than its timeout."""


@dataclass
class FrameStats:
    """What a source delivered and what it skipped."""

    read: int = 0
    delivered: int = 0
    black: int = 0
    dark: int = 0
    undecodable: int = 0


@dataclass(frozen=True)
class SourceOptions:
    """Filtering and timeouts shared by every source."""

    dark_threshold: float = 25.0
    open_timeout: float = 5.0
    read_timeout: float = 2.0
    exposure: str = "camera"
    """A camera's exposure: "face" meters on the face (faceunlock.exposure), "camera" leaves it be."""


def run_with_timeout(fn: Callable, timeout: float, what: str):
    """Run fn() on a daemon thread; raise SourceTimeout if it overruns timeout seconds."""
    box: queue.Queue = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            box.put((False, exc))

    threading.Thread(target=work, name=f"faceunlock-{what}", daemon=True).start()
    try:
        ok, value = box.get(timeout=timeout)
    except queue.Empty:
        raise SourceTimeout(f"{what} did not finish within {timeout:g} s") from None
    if not ok:
        raise value
    return value


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """Convert an OpenCV frame (BGR, BGRA, gray, or 16-bit) to RGB uint8."""
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        raise SourceUnreadable(f"unsupported pixel type {frame.dtype}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    raise SourceUnreadable(f"unsupported frame shape {frame.shape}")


def classify_brightness(rgb: np.ndarray, dark_threshold: float) -> str:
    """Return 'black', 'dark' or 'ok' for a frame, judged on its grey level."""
    small = rgb[::4, ::4]
    if int(small.max()) <= BLACK_LEVEL:
        return "black"
    if float(small.mean()) < dark_threshold:
        return "dark"
    return "ok"


def read_image(path: Path) -> np.ndarray:
    """Decode one image file to RGB, with clear errors for empty, huge or corrupt files."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SourceNotFound(f"no such image file: {path}") from None
    if size == 0:
        raise SourceUnreadable(f"image file is empty (0 bytes): {path}")
    if size > MAX_IMAGE_BYTES:
        raise SourceUnreadable(f"image file is too large ({size} bytes, limit {MAX_IMAGE_BYTES}): {path}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SourceUnreadable(f"cannot read image file {path}: {exc.strerror}") from None
    if path.suffix.lower() in (".jpg", ".jpeg") and b"\xff\xd9" not in data[-1024:].tobytes():
        raise SourceUnreadable(f"cannot decode image {path}: truncated JPEG (no end marker)")
    try:
        frame = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        frame = None
    if frame is None or frame.size == 0:
        raise SourceUnreadable(
            f"cannot decode image {path}: corrupt, truncated, or over {MAX_IMAGE_PIXELS} pixels"
        )
    return to_rgb(frame)


class FrameSource:
    """Base class: iterate frames() for filtered RGB frames; call close() when done."""

    description = "source"

    def __init__(self, options: SourceOptions):
        self.options = options
        self.stats = FrameStats()
        self.deadline: float | None = None

    def raw_frames(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def expired(self) -> bool:
        """The caller's deadline (time.monotonic()) has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def read_budget(self) -> float:
        """Seconds one read may block: the read timeout, cut short by the deadline."""
        if self.deadline is None:
            return self.options.read_timeout
        return max(0.01, min(self.options.read_timeout, self.deadline - time.monotonic()))

    def frames(self, deadline: float | None = None) -> Iterator[np.ndarray]:
        """Yield usable frames, skipping and counting black and dark ones, until the source ends.

        With a deadline (time.monotonic()), the stream also ends when it passes, whether or not
        frames arrive and whether or not they are usable: a covered lens never holds a scan open.
        """
        self.deadline = deadline
        raw = self.raw_frames()
        while not self.expired():
            try:
                rgb = next(raw)
            except StopIteration:
                return
            except SourceTimeout:
                if self.expired():
                    return
                raise
            self.stats.read += 1
            kind = classify_brightness(rgb, self.options.dark_threshold)
            if kind == "black":
                self.stats.black += 1
                self.dark_frame()
            elif kind == "dark":
                self.stats.dark += 1
                self.dark_frame()
            else:
                self.stats.delivered += 1
                yield rgb

    def meter(self, rgb: np.ndarray, face) -> None:
        """Told, after a frame is analysed, where the face that counts is (None: no face); a camera
        that meters on the face uses it, other sources ignore it."""

    def dark_frame(self) -> None:
        """Told that a frame was skipped as black or dark."""

    def close(self) -> None:
        """Release the underlying device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageSource(FrameSource):
    """A single image file, delivered once."""

    def __init__(self, path: Path, options: SourceOptions):
        super().__init__(options)
        self.path = path
        self.description = f"image {path}"
        self.frame = read_image(path)

    def raw_frames(self) -> Iterator[np.ndarray]:
        yield self.frame


class FolderSource(FrameSource):
    """Image files in a folder, in name order; undecodable files are skipped and counted."""

    def __init__(self, path: Path, options: SourceOptions):
        super().__init__(options)
        self.path = path
        self.description = f"folder {path}"
        try:
            entries = sorted(path.iterdir())
        except PermissionError:
            raise SourceUnreadable(f"cannot list folder {path}: permission denied") from None
        self.files = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        if not self.files:
            raise SourceUnreadable(f"folder has no image files ({', '.join(sorted(IMAGE_SUFFIXES))}): {path}")

    def raw_frames(self) -> Iterator[np.ndarray]:
        for path in self.files:
            try:
                yield read_image(path)
            except CameraError:
                self.stats.undecodable += 1
        if self.stats.undecodable == len(self.files):
            raise SourceUnreadable(f"no image in folder {self.path} could be decoded")


class CaptureSource(FrameSource):
    """An OpenCV VideoCapture (video file or V4L2 device), opened and read under timeouts."""

    def __init__(self, target, options: SourceOptions, description: str, api: int):
        super().__init__(options)
        self.description = description
        self.cap = None

        cap = run_with_timeout(
            lambda: cv2.VideoCapture(target, api), options.open_timeout, f"opening {description}"
        )
        if not cap.isOpened():
            cap.release()
            raise self.open_failure()
        self.cap = cap

    def open_failure(self) -> CameraError:
        return SourceUnreadable(f"cannot open {self.description}: unsupported or corrupt")

    def read_one(self) -> np.ndarray | None:
        """Read one raw frame under the read timeout; None at the end of the stream."""
        ok, frame = run_with_timeout(self.cap.read, self.read_budget(), f"reading {self.description}")
        if not ok or frame is None:
            return None
        return to_rgb(frame)

    def raw_frames(self) -> Iterator[np.ndarray]:
        while self.cap is not None:
            frame = self.read_one()
            if frame is None:
                self.end_of_stream()
                return
            yield frame

    def end_of_stream(self) -> None:
        if self.stats.read == 0:
            raise SourceUnreadable(f"{self.description} has no frames")

    def close(self) -> None:
        cap, self.cap = self.cap, None
        if cap is not None:
            cap.release()


class VideoFileSource(CaptureSource):
    """A video file, played once from the start."""

    def __init__(self, path: Path, options: SourceOptions):
        if path.is_file() and path.stat().st_size == 0:
            raise SourceUnreadable(f"video file is empty (0 bytes): {path}")
        super().__init__(str(path), options, f"video file {path}", cv2.CAP_FFMPEG)


class CameraSource(CaptureSource):
    """A V4L2 capture device such as /dev/video0."""

    exposure: ExposureControl | None = None
    controls: V4L2Controls | None = None
    """Face metering and the controls it sets, when [camera] exposure = face and the device allows."""

    def __init__(self, device: Path, options: SourceOptions):
        probe_device(device)
        super().__init__(str(device), options, f"camera {device}", cv2.CAP_V4L2)
        if options.exposure == "face":
            self.start_metering(device)

    def start_metering(self, device: Path) -> None:
        """Face metering when the device lets its exposure be set; a camera without is used as is."""
        try:
            self.controls = V4L2Controls(str(device))
        except OSError as exc:
            log.info("%s: no face metering: %s", self.description, exc.strerror or exc)
            return
        exposure = ExposureControl(self.controls, self.description, 2 * self.options.dark_threshold)
        if exposure.off:
            log.info("%s: no face metering: %s", self.description, exposure.off)
            self.controls.close()
            self.controls = None
            return
        self.exposure = exposure

    def meter(self, rgb: np.ndarray, face) -> None:
        if self.exposure is not None:
            self.exposure.meter(rgb, face)

    def dark_frame(self) -> None:
        if self.exposure is not None:
            self.exposure.dark_frame()

    def close(self) -> None:
        """Give the camera back its exposure, then release it."""
        exposure, controls, self.exposure, self.controls = self.exposure, self.controls, None, None
        if exposure is not None:
            exposure.restore()
        if controls is not None:
            controls.close()
        super().close()

    def open_failure(self) -> CameraError:
        return SourceBusy(f"{self.description} could not be started: busy or not a capture device")

    def end_of_stream(self) -> None:
        if self.stats.read == 0:
            raise SourceBusy(f"{self.description} opened but gave no frame: busy or not streaming")
        raise SourceUnreadable(f"{self.description} stopped delivering frames (disconnected?)")


def probe_device(device: Path) -> None:
    """Check a device node exists, is a character device, and can be opened now."""
    try:
        mode = os.stat(device).st_mode
    except FileNotFoundError:
        raise SourceNotFound(f"no such camera device: {device}") from None
    if not stat.S_ISCHR(mode):
        raise UnsupportedSource(f"{device} is not a character device")
    try:
        fd = os.open(device, os.O_RDWR | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise SourceBusy(f"camera {device} is busy (held by another program)") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise SourceUnreadable(f"permission denied opening camera {device}") from None
        if exc.errno in (errno.ENODEV, errno.ENXIO, errno.ENOENT):
            raise SourceNotFound(f"camera {device} is gone (no such device)") from None
        raise SourceUnreadable(f"cannot open camera {device}: {exc.strerror}") from None
    try:
        caps = bytearray(104)
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, caps)
    except OSError:
        raise UnsupportedSource(f"{device} is not a V4L2 video device") from None
    finally:
        os.close(fd)
    capabilities = int.from_bytes(caps[84:88], "little")
    if capabilities & V4L2_CAP_DEVICE_CAPS:
        capabilities = int.from_bytes(caps[88:92], "little")
    if not capabilities & V4L2_CAP_VIDEO_CAPTURE:
        raise UnsupportedSource(f"{device} is a V4L2 device that cannot capture video")


def open_source(spec: str, options: SourceOptions | None = None) -> FrameSource:
    """Open a frame source from --source: auto, /dev/videoN, a camera index, a video, an image or a
    folder."""
    options = options or SourceOptions()
    spec = str(spec).strip()
    if not spec:
        raise UnsupportedSource("empty source")
    if spec == AUTO_CAMERA:
        spec = os.path.realpath(device_path(spec))
    if spec.isdigit():
        return CameraSource(Path(f"/dev/video{int(spec)}"), options)
    path = Path(spec)
    if spec.startswith("/dev/"):
        return CameraSource(path, options)
    if not path.exists():
        raise SourceNotFound(f"no such file or folder: {path}")
    if path.is_dir():
        return FolderSource(path, options)
    suffix = path.suffix.lower()
    if stat.S_ISFIFO(path.stat().st_mode) and suffix in VIDEO_SUFFIXES:
        return VideoFileSource(path, options)
    if not path.is_file():
        raise UnsupportedSource(f"{path} is not a regular file, folder or camera device")
    if suffix in IMAGE_SUFFIXES:
        return ImageSource(path, options)
    if suffix in VIDEO_SUFFIXES:
        return VideoFileSource(path, options)
    raise UnsupportedSource(
        f"unsupported source format '{suffix or path.name}': expected an image "
        f"({', '.join(sorted(IMAGE_SUFFIXES))}) or a video ({', '.join(sorted(VIDEO_SUFFIXES))})"
    )
