"""A stand-in camera for measuring face metering (faceunlock.exposure) on recorded clips.

It films a clip's frames under a light change of faceunlock.evaluation.lights.LIGHTS, and offers
V4L2-like exposure controls (auto mode at first, an absolute exposure in 100 µs units). Setting a
shorter exposure scales the light before the 8-bit clipping, as a sensor gathering less light
would, and takes effect `latency` frames later, as a webcam applies a change a frame or two late.
The camera's noise and the clip's own clipping stay as filmed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from faceunlock.evaluation.lights import relit
from faceunlock.v4l2_controls import CID_EXPOSURE_ABSOLUTE, CID_EXPOSURE_AUTO, ControlRange

BASE_EXPOSURE = 300
APERTURE_PRIORITY = 3
RANGES = {
    CID_EXPOSURE_AUTO: ControlRange("Auto Exposure", 0, 3, 1, APERTURE_PRIORITY, 0),
    CID_EXPOSURE_ABSOLUTE: ControlRange("Exposure Time, Absolute", 3, 2047, 1, 250, 0),
}


class SimulatedCamera:
    """Exposure controls (the faceunlock.exposure.Controls protocol) and the frames they give."""

    def __init__(self, change, latency: int = 2):
        self.change = change
        self.latency = latency
        self.values = {CID_EXPOSURE_AUTO: APERTURE_PRIORITY, CID_EXPOSURE_ABSOLUTE: BASE_EXPOSURE}
        self.sets: list[tuple[int, int]] = []

    def query(self, cid: int) -> ControlRange | None:
        return RANGES.get(cid)

    def get(self, cid: int) -> int:
        return self.values[cid]

    def set(self, cid: int, value: int) -> None:
        self.values[cid] = int(value)
        self.sets.append((cid, int(value)))

    def exposure(self) -> float:
        """The light gathered now against the camera's own auto-exposure (1.0)."""
        if self.values[CID_EXPOSURE_AUTO] == APERTURE_PRIORITY:
            return 1.0
        return self.values[CID_EXPOSURE_ABSOLUTE] / BASE_EXPOSURE

    def frames(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The frames as this camera films them, each under the exposure set `latency` frames before."""
        gain, contrast, cast = self.change or (1.0, 1.0, (1.0, 1.0, 1.0))
        history: list[float] = []
        for frame in frames:
            history.append(self.exposure())
            applied = history[max(0, len(history) - 1 - self.latency)]
            yield relit(frame, (gain * applied, contrast, cast))
