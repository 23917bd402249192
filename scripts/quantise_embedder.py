"""Quantise the shipped embedder's ONNX file to int8 and write a model folder to measure it with.

Static (QDQ, per-channel weights, activations calibrated on chips of celeba-train photos through
the project's own detect -> align; never LFW) or dynamic (weights only). The output folder holds
the shipped cards and files plus the int8 network under the default card, so

    FACEUNLOCK_MODELS=OUT faceunlock eval lfw ...    and    FACEUNLOCK_MODELS=OUT faceunlock bench ...

measure it exactly as the shipped float network.

    python scripts/quantise_embedder.py --mode static --calibration ../shared/data/celeba-train --out OUT
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np


def calibration_chips(root: Path, count: int) -> np.ndarray:
    from faceunlock.camera import read_image
    from faceunlock.networks import load_detector
    from faceunlock.vision.align import align

    detector = load_detector(20, threads=1)
    images = sorted(root.glob("*/*.jpg"))
    chips = []
    for path in images[:: max(1, len(images) // (2 * count))]:
        face = detector.detect(read_image(path)).largest()
        if face is not None:
            chips.append(align(read_image(path), face.landmarks))
        if len(chips) == count:
            break
    return np.stack(chips)


class ChipReader:
    """Calibration batches for onnxruntime.quantization: the chips and their mirrors, normalised."""

    def __init__(self, chips: np.ndarray, means: np.ndarray, name: str):
        from faceunlock.vision.embed_input import mirror, normalise

        x = np.ascontiguousarray(normalise(np.concatenate((chips, mirror(chips))), means))
        self.batches = iter([{name: x[i : i + 8]} for i in range(0, len(x), 8)])

    def get_next(self):
        return next(self.batches, None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("static", "dynamic"), default="static")
    p.add_argument("--calibration", type=Path, help="folder of identity folders (static mode)")
    p.add_argument("--count", type=int, default=200, help="calibration chips")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from faceunlock.model import DEFAULT_MODEL, load_card
    from faceunlock.networks import load_embedder
    from faceunlock.paths import models_dir

    card = load_card()
    shutil.copytree(models_dir(), args.out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.pt"))
    prepared = args.out / "prepared.onnx"
    quant_pre_process(str(card.onnx.path), str(prepared))
    target = args.out / f"{DEFAULT_MODEL}-int8-{args.mode}.onnx"
    if args.mode == "static":
        embedder = load_embedder(card, threads=1)
        chips = calibration_chips(args.calibration, args.count)
        reader = ChipReader(chips, embedder.means, embedder.net.input)
        quantize_static(
            str(prepared),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    else:
        quantize_dynamic(str(prepared), str(target), per_channel=True, weight_type=QuantType.QInt8)
    prepared.unlink()
    model = onnx.load(str(target))
    source = {p.key: p.value for p in onnx.load(str(card.onnx.path)).metadata_props}
    del model.metadata_props[:]
    for key, value in sorted(source.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(target))
    path = args.out / f"{DEFAULT_MODEL}.json"
    raw = json.loads(path.read_text())
    raw["weights"]["file"] = str(card.weights)
    raw["onnx"] = {"file": target.name, "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
    path.write_text(json.dumps(raw, indent=1) + "\n")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and {path}")


if __name__ == "__main__":
    main()
