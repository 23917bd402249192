"""Inference backends: a network is a callable from one numpy batch to a tuple of numpy outputs.

``onnx`` (the default at run time) runs the exported ``.onnx`` files on ONNX Runtime's CPU
provider; ``torch`` runs the PyTorch ports (``faceunlock.vision.torch_net``), for training,
export and ``eval --backend torch``. Both take and give float32 numpy arrays, so the code around
the networks (the MTCNN cascade, the embedder, the liveness score) is the same for either.

Every file is read once, checked against the sha256 its card records, and only those checked
bytes are handed to ONNX Runtime: a mismatch is a ModelError, and nothing loads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceunlock.errors import ModelError

BACKENDS = ("onnx", "torch")
DEFAULT_BACKEND = "onnx"
DEFAULT_THREADS = 2
"""Without an explicit count, at most this many threads: under CPU contention more are slower."""

Net = Callable[[np.ndarray], tuple[np.ndarray, ...]]
"""One network: float32 input batch -> its outputs, in the order the card names them."""


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ModelError(f"unknown inference backend {name!r}; known: {', '.join(BACKENDS)}")
    return name


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_verified(path: Path, sha256: str) -> bytes:
    """The file's bytes, read once, after checking them against the card's sha256 (ModelError if not)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path} (run `faceunlock export` to write it)") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise ModelError(f"model file {path} has sha256 {found}, but its card expects {sha256}")
    return data


def thread_count(threads: int | None) -> int:
    if threads is None:
        return DEFAULT_THREADS
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return int(threads)


class OnnxNet:
    """One ONNX file on ONNX Runtime's CPU provider, with its own intra-op thread count.

    ``metadata`` holds the file's custom metadata (e.g. the embedder's input means).
    one_shot: skip the layout optimisations (blocked NCHWc convolutions) that make loading slower
    and every run faster: for a command that runs the network a few times and exits.
    No memory arena: buffers go back to the heap after each run instead of staying reserved for the
    largest input seen (the detector's pyramid), which keeps an idle daemon small.
    """

    def __init__(self, path: Path, sha256: str, threads: int | None = None, one_shot: bool = False):
        import onnxruntime as ort

        data = read_verified(path, sha256)
        options = ort.SessionOptions()
        options.intra_op_num_threads = thread_count(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_cpu_mem_arena = False
        level = "ORT_ENABLE_EXTENDED" if one_shot else "ORT_ENABLE_ALL"
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        # Idle pool threads sleep instead of spinning: the CPU is shared with the desktop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own exception types)
            raise ModelError(f"cannot load {path} with onnxruntime: {exc}") from None
        self.path = Path(path)
        self.input = self.session.get_inputs()[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)}))
