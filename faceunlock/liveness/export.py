"""Export the MiniFASNet networks from their torch weights to ONNX (torch needed; not at run time)."""

from __future__ import annotations

from pathlib import Path

OPSET = 17
INPUT_NAME = "crop"
OUTPUT_NAME = "logits"


def export_onnx(weights: Path | str, out: Path | str, sha256: str | None = None) -> Path:
    """Write the network in `weights` (checked against sha256) as an ONNX file taking (N, 3, 80, 80)
    BGR float crops and giving (N, 3) logits; returns the path written."""
    import torch

    from faceunlock.liveness.network import INPUT_SIZE, load_minifasnet

    net = load_minifasnet(weights, sha256)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    with torch.no_grad():
        torch.onnx.export(
            net,
            (example,),
            str(out),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "n"}, OUTPUT_NAME: {0: "n"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return out


def export_card_networks(out_dir: Path | str, card=None) -> dict[str, tuple[Path, str]]:
    """Export every network of the liveness card from its torch weights into out_dir, under the
    card's ONNX file names; returns {name: (path, sha256)} for checking against the card."""
    import hashlib

    from faceunlock.liveness.card import load_liveness_card

    card = card or load_liveness_card()
    out = {}
    for net in card.networks:
        path = export_onnx(net.weights, Path(out_dir) / net.onnx.name, net.weights_sha256)
        out[net.name] = (path, hashlib.sha256(path.read_bytes()).hexdigest())
    return out
