"""Light changes for measuring the owner in other light: applied to recorded frames, with clipping."""

from __future__ import annotations

import numpy as np

LIGHTS = {
    "as filmed": None,
    "dim": (0.35, 1.0, (1.0, 1.0, 1.0)),
    "bright": (1.8, 1.0, (1.0, 1.0, 1.0)),
    "warm lamp": (0.8, 1.0, (1.15, 1.0, 0.7)),
    "flat, low contrast": (1.0, 0.45, (1.0, 1.0, 1.0)),
}
"""Light changes applied to the scanned frames only (the enrolment stays as filmed): a gain, a
contrast factor about mid-grey, and a colour cast (R, G, B). The camera's own noise and 8-bit
clipping stay in, as a real camera in that light would give."""


def relit(rgb: np.ndarray, change) -> np.ndarray:
    """The frame under another light (see LIGHTS)."""
    if change is None:
        return rgb
    gain, contrast, cast = change
    x = rgb.astype(np.float32) * gain * np.asarray(cast, np.float32)
    x = (x - 128.0) * contrast + 128.0
    return np.clip(x, 0, 255).astype(np.uint8)
