"""The embedding network's input and flip averaging, in numpy: one definition for every backend.

Chips are aligned 150x150 RGB uint8 images (N, 150, 150, 3). The network takes
``(pixel - means) / 256`` per channel as float32 (N, 3, 150, 150). With flip
averaging a chip's descriptor is the mean of its own and its mirror image's; the
chips and their mirrors go through the network as one batch.
"""

from __future__ import annotations

from collections.abc import Callable

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


def embed_batches(
    run: Callable[[np.ndarray], np.ndarray],
    chips: np.ndarray,
    means: np.ndarray,
    flip: bool = False,
    batch_size: int = 16,
) -> np.ndarray:
    """(N, 150, 150, 3) or (150, 150, 3) uint8 RGB -> (N, 128) float32 descriptors.

    run: the network, normalised (n, 3, 150, 150) float32 -> (n, 128). With flip, each batch of
    chips goes in together with its mirror images (one pass of 2n) and the halves are averaged.
    The one path from chips to descriptors, for every backend and for training's validation.
    """
    chips = check_chips(chips)
    out = np.empty((len(chips), EMBEDDING_DIM), dtype=np.float32)
    for start in range(0, len(chips), batch_size):
        batch = chips[start : start + batch_size]
        if flip:
            x = normalise(np.concatenate((batch, mirror(batch))), means)
            d = np.asarray(run(x), dtype=np.float32)
            d = flip_average(d[: len(batch)], d[len(batch) :])
        else:
            d = np.asarray(run(normalise(batch, means)), dtype=np.float32)
        if d.shape != (len(batch), EMBEDDING_DIM):
            raise ValueError(f"the network gave shape {d.shape}, expected ({len(batch)}, {EMBEDDING_DIM})")
        out[start : start + len(batch)] = d
    return out
