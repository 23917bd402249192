"""The embedder at run time: aligned chips to 128-d descriptors through any backend's network."""

from __future__ import annotations

import numpy as np

from faceunlock.vision.backend import Net
from faceunlock.vision.embed_input import embed_batches


class Embedder:
    """Turns aligned 150x150 RGB uint8 chips into 128-d float32 descriptors.

    net: the network (see faceunlock.vision.backend), normalised input -> (n, 128).
    means: the per-channel input means the network was trained with.
    fingerprint: the sha256 of the weights the network came from (stored in templates).
    flip: average each chip's descriptor with its mirror image's (one batch of both).
    backend: the name of the backend the network runs on.
    source: what computes the descriptors besides the weights: the ONNX file's sha256 ("" for the
        torch port); caches of descriptors are kept apart by backend and source.
    """

    def __init__(
        self,
        net: Net,
        means: np.ndarray,
        fingerprint: str,
        flip: bool = False,
        batch_size: int = 16,
        backend: str = "onnx",
        source: str = "",
    ):
        self.net = net
        self.backend = backend
        self.source = source
        self.means = np.asarray(means, np.float32).reshape(3)
        self.fingerprint = fingerprint
        self.flip = flip
        self.batch_size = batch_size

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) or (150, 150, 3) uint8 RGB -> (N, 128) float32."""
        return embed_batches(lambda x: self.net(x)[0], chips, self.means, self.flip, self.batch_size)
