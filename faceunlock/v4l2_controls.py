"""A V4L2 device's integer and menu controls: their range, their value, and setting them.

Three ioctls (VIDIOC_QUERYCTRL, VIDIOC_G_CTRL, VIDIOC_S_CTRL) on a descriptor of our own, which
works while another descriptor (OpenCV's) streams from the same device, as v4l2-ctl does.
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass

VIDIOC_QUERYCTRL = 0xC0445624
VIDIOC_G_CTRL = 0xC008561B
VIDIOC_S_CTRL = 0xC008561C
QUERYCTRL_SIZE = 68
CID_EXPOSURE_AUTO = 0x009A0901
CID_EXPOSURE_ABSOLUTE = 0x009A0902
EXPOSURE_MANUAL = 1
FLAG_DISABLED = 0x0001
FLAG_READ_ONLY = 0x0004


@dataclass(frozen=True)
class ControlRange:
    """What VIDIOC_QUERYCTRL says of one control."""

    name: str
    minimum: int
    maximum: int
    step: int
    default: int
    flags: int

    @property
    def writable(self) -> bool:
        return not self.flags & (FLAG_DISABLED | FLAG_READ_ONLY)

    def clamp(self, value: float) -> int:
        """The nearest value the control accepts: in range, on its step grid."""
        step = max(1, self.step)
        v = min(max(int(round(value)), self.minimum), self.maximum)
        return self.minimum + (v - self.minimum) // step * step


def pack_query(cid: int) -> bytearray:
    return bytearray(struct.pack("<I", cid) + bytes(QUERYCTRL_SIZE - 4))


def parse_query(buf: bytes) -> ControlRange:
    """A struct v4l2_queryctrl: id, type, name[32], minimum, maximum, step, default, flags."""
    name = buf[8:40].split(b"\0", 1)[0].decode(errors="replace")
    minimum, maximum, step, default, flags = struct.unpack_from("<iiiiI", buf, 40)
    return ControlRange(name, minimum, maximum, step, default, flags)


class V4L2Controls:
    """The controls of one device node, on a descriptor opened for them; close() when done."""

    def __init__(self, device: str):
        self.device = device
        self.fd = os.open(device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def query(self, cid: int) -> ControlRange | None:
        """The control's range; None when the device has no such control."""
        buf = pack_query(cid)
        try:
            fcntl.ioctl(self.fd, VIDIOC_QUERYCTRL, buf)
        except OSError:
            return None
        return parse_query(bytes(buf))

    def get(self, cid: int) -> int:
        buf = bytearray(struct.pack("<Ii", cid, 0))
        fcntl.ioctl(self.fd, VIDIOC_G_CTRL, buf)
        return struct.unpack("<Ii", buf)[1]

    def set(self, cid: int, value: int) -> None:
        fcntl.ioctl(self.fd, VIDIOC_S_CTRL, bytearray(struct.pack("<Ii", cid, int(value))))

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
