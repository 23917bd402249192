"""The embedding network's input and flip averaging, in numpy: one definition for every backend.

Chips are aligned 150x150 RGB uint8 images (N, 150, 150, 3). The network takes
``(pixel - means) / 256`` per channel as float32 (N, 3, 150, 150). With flip
averaging a chip's descriptor is the mean of its own and its mirror image's.
"""

from __future__ import annotations

import numpy as np

from faceunlock.vision.align import CHIP_SIZE

EMBEDDING_DIM = 128


def check_chips(chips: np.ndarray) -> np.ndarray:
    """(N, 150, 150, 3) or one (150, 150, 3) uint8 RGB chip -> (N, 150, 150, 3); ValueError otherwise."""
    chips = np.asarray(chips)
    if chips.ndim == 3:
        chips = chips[None]
    if chips.dtype != np.uint8 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ValueError(
            f"chips must be uint8 (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) RGB, got {chips.dtype} {chips.shape}"
        )
    return chips


def normalise(chips: np.ndarray, means: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) chips -> float32 (N, 3, H, W), (pixel - means) / 256.

    The result is a view in channels-last memory order (N, H, W, C underneath);
    ``np.ascontiguousarray`` gives plain NCHW where a backend needs it.
    """
    x = chips.astype(np.float32) - np.asarray(means, np.float32)
    x /= np.float32(256.0)
    return x.transpose(0, 3, 1, 2)


def mirror(chips: np.ndarray) -> np.ndarray:
    """Chips (N, H, W, 3) flipped left to right: the other half of a flip-averaged pair."""
    return chips[:, :, ::-1]


def flip_average(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The flip-averaged descriptors of chips, from theirs and their mirror images'."""
    return (plain + mirrored) / np.float32(2.0)
