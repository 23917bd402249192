"""What a V4L2 capture device says about itself: driver, card name, and the pixel formats it offers.

Two ioctls (VIDIOC_QUERYCAP, VIDIOC_ENUM_FMT) on a non-blocking descriptor; nothing is captured.
Whether the camera is infrared is judged from the formats: IR cameras offer only grey formats.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass, field

VIDIOC_QUERYCAP = 0x80685600
VIDIOC_ENUM_FMT = 0xC0405602
BUF_TYPE_VIDEO_CAPTURE = 1
CAP_VIDEO_CAPTURE = 0x1
CAP_DEVICE_CAPS = 0x80000000
MAX_FORMATS = 64
GREY_FORMATS = {"GREY", "Y4", "Y6", "Y10", "Y12", "Y14", "Y16", "Y8I", "Y12I", "Y10B", "Y10P", "Z16"}
"""Single-channel (luma, IR or depth) pixel formats, fourcc codes without trailing blanks."""


@dataclass
class DeviceInfo:
    driver: str
    card: str
    capture: bool
    formats: list[str] = field(default_factory=list)

    @property
    def infrared(self) -> bool:
        """Only grey formats: the usual sign of a Windows-Hello-style IR camera."""
        return bool(self.formats) and all(f in GREY_FORMATS for f in self.formats)


def fourcc(code: int) -> str:
    return code.to_bytes(4, "little").decode("ascii", errors="replace").strip()


def text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def parse_capability(buf: bytes) -> tuple[str, str, bool]:
    """(driver, card, can capture video) from a struct v4l2_capability."""
    caps, device_caps = struct.unpack_from("<II", buf, 84)
    if caps & CAP_DEVICE_CAPS:
        caps = device_caps
    return text(buf[0:16]), text(buf[16:48]), bool(caps & CAP_VIDEO_CAPTURE)


def parse_format(buf: bytes) -> str:
    """The fourcc of a struct v4l2_fmtdesc."""
    return fourcc(struct.unpack_from("<I", buf, 44)[0])


def query(device: str) -> DeviceInfo:
    """Ask a device node for its identity and capture formats; raises OSError when it cannot be asked."""
    fd = os.open(device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        cap = bytearray(104)
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, cap)
        driver, card, capture = parse_capability(bytes(cap))
        info = DeviceInfo(driver, card, capture)
        for index in range(MAX_FORMATS):
            desc = bytearray(struct.pack("<II", index, BUF_TYPE_VIDEO_CAPTURE) + bytes(56))
            try:
                fcntl.ioctl(fd, VIDIOC_ENUM_FMT, desc)
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    break
                raise
            info.formats.append(parse_format(bytes(desc)))
        return info
    finally:
        os.close(fd)
