"""The networks of the model cards, loaded on an inference backend: the detector and the embedder.

``onnx`` (default) loads the ONNX files the cards name, after checking their sha256 and that each
was exported from the weights the card fingerprints; it needs onnxruntime, never torch. ``torch``
loads the PyTorch ports from the weights themselves (training, export, ``eval --backend torch``).
Every failure is a ModelError: nothing half-loaded is ever used.
"""

from __future__ import annotations

import numpy as np

from faceunlock.errors import ModelError
from faceunlock.model import MTCNN_NETS, ModelCard, OnnxFile, load_detector_card
from faceunlock.vision.backend import DEFAULT_BACKEND, OnnxNet, check_backend, file_sha256
from faceunlock.vision.detect import Detector, MTCNNNets
from faceunlock.vision.embedder import Embedder

SOURCE_KEY = "source_sha256"
MEANS_KEY = "means"


def onnx_net(
    onnx: OnnxFile | None, source_sha256: str, what: str, threads: int | None, one_shot: bool = False
) -> OnnxNet:
    """An ONNX file checked against its card, and against the weights the card fingerprints."""
    if onnx is None:
        raise ModelError(
            f"{what} has no ONNX file in its card: run `faceunlock export`, or use --backend torch"
        )
    net = OnnxNet(onnx.path, onnx.sha256, threads, one_shot)
    if net.metadata.get(SOURCE_KEY) != source_sha256:
        raise ModelError(
            f"{onnx.path} was exported from weights {net.metadata.get(SOURCE_KEY)!r}, "
            f"but the card's weights are {source_sha256}"
        )
    return net


def load_detector_nets(
    backend: str = DEFAULT_BACKEND, threads: int | None = None, one_shot: bool = False
) -> MTCNNNets:
    """P-, R- and O-Net of models/mtcnn.json on the backend."""
    cards = load_detector_card()
    if check_backend(backend) == "onnx":
        nets = (onnx_net(cards[n].onnx, cards[n].sha256, f"MTCNN {n}", threads, one_shot) for n in MTCNN_NETS)
        return MTCNNNets(*nets)
    from faceunlock.vision.mtcnn_nets import torch_mtcnn_nets

    for n in MTCNN_NETS:
        if cards[n].weights is None:
            raise ModelError("the MTCNN weights are not installed: pip install --no-deps facenet-pytorch")
        if file_sha256(cards[n].weights) != cards[n].sha256:
            raise ModelError(f"MTCNN weights {cards[n].weights} do not have the sha256 in the card")
    return MTCNNNets(*torch_mtcnn_nets(cards["pnet"].weights.parent, threads))


def load_detector(
    min_face_size: float = 40,
    max_side: int | None = None,
    backend: str = DEFAULT_BACKEND,
    threads: int | None = None,
    one_shot: bool = False,
) -> Detector:
    nets = load_detector_nets(backend, threads, one_shot)
    return Detector(min_face_size=min_face_size, max_side=max_side, nets=nets, backend=backend)


def load_embedder(
    card: ModelCard,
    backend: str = DEFAULT_BACKEND,
    threads: int | None = None,
    flip: bool | None = None,
    one_shot: bool = False,
) -> Embedder:
    """The card's embedding network on the backend; flip: the card's flip averaging unless given."""
    flip = card.flip if flip is None else flip
    if check_backend(backend) == "onnx":
        net = onnx_net(card.onnx, card.sha256, f"model {card.name}", threads, one_shot)
        try:
            means = np.array([float(v) for v in net.metadata[MEANS_KEY].split(",")], np.float32)
        except (KeyError, ValueError):
            raise ModelError(f"{card.onnx.path} does not record the network's 3 input means") from None
        if means.shape != (3,):
            raise ModelError(f"{card.onnx.path} records {means.size} input means, not 3")
        return Embedder(net, means, card.sha256, flip, backend=backend, source=card.onnx.sha256)
    if card.quantised:
        raise ModelError(
            f"model {card.name} is an int8 ONNX network: it runs on the onnx backend only "
            "(the torch port is the float network it was quantised from)"
        )
    from faceunlock.vision.embed import torch_embedding_net

    found = file_sha256(card.weights) if card.weights.is_file() else "missing"
    if found != card.sha256:
        raise ModelError(
            f"weights {card.weights} have sha256 {found}, but model card {card.name} expects {card.sha256}"
        )
    net, means = torch_embedding_net(card.weights, threads)
    return Embedder(net, means, card.sha256, flip, backend=backend)
