"""The presentation-attack networks at run time, on ONNX Runtime (no torch).

Each network scores one context crop of the face (see ``crops``); the output kept is the log-odds
of class 1 ("real") against the other two classes, computed in float64 from the logits.
"""

from __future__ import annotations

import numpy as np

from faceunlock.errors import ModelError
from faceunlock.liveness.card import LivenessCard, read_verified
from faceunlock.liveness.crops import context_crop


def real_log_odds(logits: np.ndarray) -> np.ndarray:
    """log P(real) - log P(not real) per row of (N, 3) logits; class 1 is real."""
    z = np.asarray(logits, dtype=np.float64)
    others = np.logaddexp(z[:, 0], z[:, 2])
    return z[:, 1] - others


class PadNetworks:
    """The card's networks, loaded once (after a sha256 check) and kept warm."""

    def __init__(self, card: LivenessCard, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.networks = card.networks
        self.sessions = []
        for net in card.networks:
            data = read_verified(net.onnx, net.onnx_sha256)
            try:
                session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own types)
                raise ModelError(f"cannot load liveness network {net.onnx}: {exc}") from None
            self.sessions.append((session, session.get_inputs()[0].name))

    def __len__(self) -> int:
        return len(self.sessions)

    def crop(self, index: int, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        return context_crop(rgb, box, self.networks[index].scale)

    def score(self, index: int, crop: np.ndarray) -> float:
        """Real-vs-attack log-odds of network `index` on one (3, 80, 80) crop."""
        session, name = self.sessions[index]
        (logits,) = session.run(None, {name: crop[None]})
        value = float(real_log_odds(logits)[0])
        if not np.isfinite(value):
            raise ModelError(f"liveness network {self.networks[index].name} gave a non-finite score")
        return value
