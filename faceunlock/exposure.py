"""Keep the face out of over-exposure on a camera whose exposure can be set, then give the camera back.

A camera's auto-exposure meters the whole picture. In bright, even light, or with sunlight on the
face, the face comes out washed out (clipped to white), and the liveness networks read a
washed-out face as a screen: the owner is doubted. When a scan's face is washed out, this takes
the exposure over (manual mode) and shortens it step by step until the face itself is in range,
as a phone meters on the face. It never lengthens the exposure beyond what the camera had, and
when the source closes the camera gets back its own mode and value.

It only ever changes how much light the sensor gathers: every frame is still judged by the same
detector, match and liveness checks, so it cannot let anything in by itself.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from faceunlock.v4l2_controls import CID_EXPOSURE_ABSOLUTE, CID_EXPOSURE_AUTO, EXPOSURE_MANUAL, ControlRange

log = logging.getLogger("faceunlock.exposure")

CLIPPED = 250
"""A pixel with a channel at or over this is clipped."""
OVER_SHARE = 0.08
OVER_MEAN = 190.0
"""A face is washed out when this share of its pixels is clipped, or its mean grey level is over this."""
UNDER_MEAN = 80.0
TARGET_MEAN = 135.0
STRONG_CLIP = 0.25
"""Over this clipped share the mean says little: the exposure is at least halved."""
SETTLE_FRAMES = 2
"""Frames left alone after a change, while the camera applies it."""
MAX_CHANGES = 8
DARK_RUN = 4
"""Frames skipped as dark in a row, the exposure ours, after which the camera is given back (a
value read in auto mode can be stale, and too short an exposure gives frames that are never
metered). IR emitters strobe, but never leave this many dark frames in a row."""


class Controls(Protocol):
    def query(self, cid: int) -> ControlRange | None: ...
    def get(self, cid: int) -> int: ...
    def set(self, cid: int, value: int) -> None: ...


def face_light(rgb: np.ndarray, box) -> tuple[float, float] | None:
    """(mean grey level, clipped share) of the middle of a face box (skin, not hair or background);
    None when too little of it is in the frame."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * 0.3, (y2 - y1) * 0.35
    xa, xb = int(max(0, cx - hw)), int(min(w, cx + hw))
    ya, yb = int(max(0, cy - hh)), int(min(h, cy + hh))
    if xb - xa < 4 or yb - ya < 4:
        return None
    patch = rgb[ya:yb, xa:xb]
    return float(patch.mean()), float((patch.max(axis=2) >= CLIPPED).mean())


def step_factor(mean: float, clipped: float) -> float | None:
    """How much to scale the exposure for a face of this light: < 1 washed out, > 1 too dark after
    a change, None when it is in range."""
    if clipped >= OVER_SHARE or mean >= OVER_MEAN:
        factor = min(max(TARGET_MEAN / max(mean, 1.0), 0.4), 0.9)
        return min(factor, 0.5) if clipped >= STRONG_CLIP else factor
    if mean < UNDER_MEAN:
        return min(TARGET_MEAN / max(mean, 1.0), 1.5)
    return None


class ExposureControl:
    """Face metering on one camera's controls (faceunlock.v4l2_controls.V4L2Controls or a stand-in)."""

    def __init__(self, controls: Controls, name: str = "camera", floor: float = 50.0):
        """floor: the frame's mean grey level is never pushed under this (the camera source passes
        twice its dark-frame threshold: dark frames are skipped unseen, so metering could not
        bring them back)."""
        self.controls = controls
        self.name = name
        self.floor = floor
        self.original: tuple[int, int] | None = None
        self.value = 0
        self.ceiling = 0
        self.changes = 0
        self.wait = 0
        self.dark_run = 0
        self.off: str | None = None
        mode = controls.query(CID_EXPOSURE_AUTO)
        self.range = controls.query(CID_EXPOSURE_ABSOLUTE)
        if mode is None or self.range is None or not (mode.writable and self.range.writable):
            self.off = "no settable exposure"
        elif not mode.minimum <= EXPOSURE_MANUAL <= mode.maximum:
            self.off = "no manual exposure mode"

    @property
    def active(self) -> bool:
        """The exposure is ours now (to be given back)."""
        return self.original is not None

    def meter(self, rgb: np.ndarray, face) -> None:
        """One frame and the face that counts in it (a detected Face, or None), as a scan tells a
        source (faceunlock.camera.FrameSource.meter)."""
        self.observe(rgb, None if face is None else face.box)

    def observe(self, rgb: np.ndarray, box) -> None:
        """One frame and the box of the face that counts in it (None: no face)."""
        self.dark_run = 0
        if self.off or box is None:
            return
        if self.wait:
            self.wait -= 1
            return
        light = face_light(rgb, box)
        if light is None:
            return
        factor = step_factor(*light)
        if factor is not None and factor < 1:
            factor = min(1.0, max(factor, self.floor / max(float(rgb[::4, ::4].mean()), 1.0)))
        if factor is None or factor == 1 or (factor > 1 and not self.active) or self.changes >= MAX_CHANGES:
            return
        try:
            self.change(factor)
        except OSError as exc:
            self.off = f"its exposure could not be changed: {exc.strerror or exc}"
            log.warning("%s: face metering stops: %s", self.name, self.off)

    def change(self, factor: float) -> None:
        if not self.active:
            mode = self.controls.get(CID_EXPOSURE_AUTO)
            try:
                value = self.controls.get(CID_EXPOSURE_ABSOLUTE)
            except OSError:
                value = self.range.default
            if not max(1, self.range.minimum) <= value <= self.range.maximum:
                value = self.range.default
            self.original = (mode, value)
            self.value = self.ceiling = value
            if mode != EXPOSURE_MANUAL:
                self.controls.set(CID_EXPOSURE_AUTO, EXPOSURE_MANUAL)
            log.info("%s: face washed out; exposure taken over at %d", self.name, value)
        new = min(self.range.clamp(self.value * factor), self.ceiling)
        if new == self.value:
            return
        self.controls.set(CID_EXPOSURE_ABSOLUTE, new)
        self.value = new
        self.changes += 1
        self.wait = SETTLE_FRAMES

    def dark_frame(self) -> None:
        """A frame was skipped as dark. Several in a row while the exposure is ours: the camera gets
        its own back, and metering stops for this source."""
        if not self.active:
            return
        self.dark_run += 1
        if self.dark_run >= DARK_RUN:
            self.off = f"{DARK_RUN} dark frames in a row after shortening its exposure"
            log.warning("%s: face metering stops: %s", self.name, self.off)
            self.restore()

    def restore(self) -> None:
        """Give the camera back its own exposure mode and value; failures are logged, never raised."""
        if self.original is None:
            return
        mode, value = self.original
        self.original = None
        for cid, v, what in ((CID_EXPOSURE_ABSOLUTE, value, "time"), (CID_EXPOSURE_AUTO, mode, "mode")):
            try:
                self.controls.set(cid, v)
            except OSError as exc:
                log.warning("%s: could not give back its exposure %s %d: %s", self.name, what, v, exc)


def why_not_metered(device: str) -> str | None:
    """Why face metering cannot work on a device node (None: it can); nothing is changed."""
    from faceunlock.v4l2_controls import V4L2Controls

    try:
        controls = V4L2Controls(device)
    except OSError as exc:
        return f"its controls cannot be opened: {exc.strerror or exc}"
    try:
        return ExposureControl(controls).off
    finally:
        controls.close()
