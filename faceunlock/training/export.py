"""`faceunlock export`: the ONNX files the run time loads, written from the torch models (needs torch, onnx).

Each file carries, as ONNX metadata, the sha256 of the torch weights it was exported from
(``source_sha256``, checked at load against the card) and, for the embedder, its input means.
After writing, the cards record each file's sha256 (``onnx``), so the run time can check the
bytes it loads.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceunlock.atomic import atomic_file
from faceunlock.errors import ModelError
from faceunlock.model import DETECTOR_CARD, MTCNN_NETS, load_card, load_detector_card, read_card
from faceunlock.networks import MEANS_KEY, SOURCE_KEY
from faceunlock.vision.backend import file_sha256

OPSET = 17

MTCNN_IO = {
    "pnet": ((1, 3, 64, 80), ["prob", "reg"], {"image": {0: "n", 2: "h", 3: "w"}}),
    "rnet": ((1, 3, 24, 24), ["prob", "reg"], {"image": {0: "n"}}),
    "onet": ((1, 3, 48, 48), ["prob", "reg", "landmarks"], {"image": {0: "n"}}),
}
"""Example input shape, output names and dynamic axes of each MTCNN network (input name: image)."""


def export_onnx(
    module: nn.Module,
    shape: tuple[int, ...],
    out: Path,
    input_name: str,
    output_names: list[str],
    dynamic_axes: dict,
    metadata: dict[str, str],
) -> str:
    """Export module (eval mode) to out with the given I/O names and metadata; returns the file's sha256."""
    import onnx

    module = module.eval()
    example = torch.zeros(shape)
    axes = dict(dynamic_axes)
    batch_only = {0: "n"}
    for name in output_names:
        axes.setdefault(name, batch_only)
    with torch.no_grad():
        program = _exported_bytes(module, example, input_name, output_names, axes)
    model = onnx.load_from_string(program)
    for key, value in sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out, 0o644) as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def _exported_bytes(module, example, input_name, output_names, axes) -> bytes:
    """The traced export. The ResNet's shortcut padding reads shapes in Python; the tracer warns and
    keeps them as constants, which holds because the input size is fixed (150x150)."""
    import io
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=[input_name],
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def export_embedder(card_name: str, out_dir: Path) -> tuple[Path, str]:
    """The card's embedding network as <out_dir>/<card>.onnx: normalised chips in, descriptors out."""
    from faceunlock.vision.embed import load_face_resnet

    card = load_card(card_name)
    if card.quantised:
        raise ModelError(
            f"model {card.name} is an int8 quantisation: export its float source and quantise it with "
            "scripts/quantise_embedder.py"
        )
    if file_sha256(card.weights) != card.sha256:
        raise ModelError(f"weights {card.weights} do not have the sha256 of card {card.name}")
    model = load_face_resnet(card.weights)
    means = ",".join(repr(float(m)) for m in model.means.numpy().astype(np.float64))
    out = out_dir / f"{card.name}.onnx"
    metadata = {SOURCE_KEY: card.sha256, MEANS_KEY: means}
    sha = export_onnx(model, (1, 3, 150, 150), out, "chips", ["descriptors"], {"chips": {0: "n"}}, metadata)
    return out, sha


def export_detector(out_dir: Path) -> dict[str, tuple[Path, str]]:
    """P-, R- and O-Net as <out_dir>/mtcnn-<net>.onnx, from the weights models/mtcnn.json names."""
    from faceunlock.vision.mtcnn_nets import load_mtcnn_nets

    cards = load_detector_card()
    for net in cards.values():
        if net.weights is None:
            raise ModelError("the MTCNN weights are not installed: pip install --no-deps facenet-pytorch")
        if file_sha256(net.weights) != net.sha256:
            raise ModelError(f"MTCNN weights {net.weights} do not have the sha256 in the card")
    modules = load_mtcnn_nets(cards["pnet"].weights.parent)
    written = {}
    for name, module in zip(MTCNN_NETS, modules, strict=True):
        shape, outputs, axes = MTCNN_IO[name]
        out = out_dir / f"mtcnn-{name}.onnx"
        sha = export_onnx(module, shape, out, "image", outputs, axes, {SOURCE_KEY: cards[name].sha256})
        written[name] = (out, sha)
    return written


def record(card_name: str, entries: dict[str | None, tuple[Path, str]]) -> Path:
    """Write the files' names and sha256 into the card's onnx entries (None: the card's own)."""
    path, raw = read_card(card_name)
    for net, (file, sha) in entries.items():
        target = raw if net is None else raw["networks"][net]
        target["onnx"] = {"file": file.name, "sha256": sha}
    with atomic_file(path, 0o644) as fh:
        fh.write((json.dumps(raw, indent=1, ensure_ascii=False) + "\n").encode())
    return path


def export_all(card_name: str, out_dir: Path, write_cards: bool) -> dict[str, tuple[Path, str]]:
    """Export the embedder of card_name and the detector; record the sha256 in the cards if asked."""
    embedder = export_embedder(card_name, out_dir)
    detector = export_detector(out_dir)
    if write_cards:
        record(card_name, {None: embedder})
        record(DETECTOR_CARD, dict(detector))
    return {card_name: embedder, **{f"mtcnn-{k}": v for k, v in detector.items()}}
