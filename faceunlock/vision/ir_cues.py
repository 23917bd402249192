"""IR-camera liveness cues (only with `[liveness] ir = true`).

ir-dark-face: in IR mode, skin reflects the emitter's near-infrared light while a phone or monitor
    screen emits none, so a face whose chip is dark in an IR frame is a replayed image.
not-ir: in IR mode, a colour frame means the source is not the IR camera.

Either cue ends the scan as an attack. The scored liveness of ordinary RGB cameras is in
faceunlock.liveness.
"""

from __future__ import annotations

import numpy as np

from faceunlock.config import LivenessConfig


def is_grey(rgb: np.ndarray) -> bool:
    small = rgb[::8, ::8].astype(np.int16)
    return (
        int(np.abs(small[..., 0] - small[..., 1]).max()) <= 8
        and int(np.abs(small[..., 1] - small[..., 2]).max()) <= 8
    )


def ir_cues(rgb: np.ndarray, chip: np.ndarray, cfg: LivenessConfig) -> list[str]:
    """The IR presentation-attack cues that fire on this frame's face (empty: none, or not IR mode)."""
    if not (cfg.enabled and cfg.ir):
        return []
    if not is_grey(rgb):
        return ["not-ir"]
    if float(chip.mean()) < cfg.ir_min_face_level:
        return ["ir-dark-face"]
    return []
