"""Quantise the float embedder's ONNX file to int8 and write it with its model card.

Static quantisation (QDQ, per-channel int8 weights in 7 bits, so that x86 CPUs without VNNI,
whose uint8 x int8 instructions sum pairs into saturating int16, compute the same products as
those with it; uint8 activations whose ranges are the
min/max seen on calibration chips: celeba-train photos through the project's own detect -> align,
each with its mirror image; never LFW). With the pinned onnxruntime, on the machine that made the
shipped file, the output is that file byte for byte; elsewhere the activation ranges can differ in
their last bits (tests/test_onnx_parity.py rebuilds it and compares).

The card written is the float card's, renamed, with the int8 file and how it was made; its
thresholds are the float card's until recalibrated, which the three commands in the card's
``quantisation.recalibrate`` do (LFW per-pair thresholds, then the attempt-level ones).

    python scripts/quantise_embedder.py --calibration ../shared/data/celeba-train [--out models]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

SOURCE = "dlib-resnet-ft1"
COUNT = 400


def calibration_chips(root: Path, count: int) -> np.ndarray:
    """`count` aligned chips from photos spread evenly over the sorted identity folders."""
    from faceunlock.camera import read_image
    from faceunlock.networks import load_detector
    from faceunlock.vision.align import align

    detector = load_detector(20, threads=1)
    images = sorted(root.glob("*/*.jpg"))
    chips = []
    for path in images[:: max(1, len(images) // (2 * count))]:
        rgb = read_image(path)
        face = detector.detect(rgb).largest()
        if face is not None:
            chips.append(align(rgb, face.landmarks))
        if len(chips) == count:
            break
    if len(chips) < count:
        raise ValueError(f"only {len(chips)} faces found under {root}; calibration needs {count}")
    return np.stack(chips)


class ChipReader:
    """Calibration batches for onnxruntime.quantization: the chips and their mirrors, normalised."""

    def __init__(self, chips: np.ndarray, means: np.ndarray, name: str):
        from faceunlock.vision.embed_input import mirror, normalise

        x = np.ascontiguousarray(normalise(np.concatenate((chips, mirror(chips))), means))
        self.batches = iter([{name: x[i : i + 8]} for i in range(0, len(x), 8)])

    def get_next(self):
        return next(self.batches, None)


def quantise(source_onnx: Path, chips: np.ndarray, means: np.ndarray, input_name: str, target: Path) -> None:
    """The int8 QDQ network of source_onnx, calibrated on chips, with the source's metadata."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source_onnx), str(prepared))
        quantize_static(
            str(prepared),
            str(target),
            ChipReader(chips, means, input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            reduce_range=True,
        )
    model = onnx.load(str(target))
    del model.metadata_props[:]
    for prop in sorted(onnx.load(str(source_onnx)).metadata_props, key=lambda p: p.key):
        entry = model.metadata_props.add()
        entry.key, entry.value = prop.key, prop.value
    onnx.save(model, str(target))


def int8_card(source: dict, name: str, target: Path, count: int) -> dict:
    import onnxruntime

    card = {k: v for k, v in source.items() if k not in ("attempt", "metrics")}
    card["name"] = name
    card["architecture"] = f"{source['architecture']}; int8 (static, QDQ) quantisation of {source['name']}"
    card["onnx"] = {"file": target.name, "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
    card["quantisation"] = {
        "source": {"card": source["name"], "onnx_sha256": source["onnx"]["sha256"]},
        "scheme": "static, QDQ; weights int8 per output channel in 7 bits ([-64, 63]: uint8 x int8 "
        "products cannot saturate on x86 CPUs without VNNI); activations uint8, per tensor",
        "calibration": f"{count} celeba-train photos (every n-th of the sorted files) through MTCNN + "
        "alignment, each chip and its mirror; activation ranges: min/max",
        "onnxruntime": onnxruntime.__version__,
        "runs_on": "onnx backend only (the torch port is the float network)",
        "command": "python scripts/quantise_embedder.py --calibration ../shared/data/celeba-train",
        "recalibrate": [
            f"faceunlock eval lfw --model {name} --root ../shared/data/lfw/lfw-deepfunneled "
            "--pairs ../shared/data/lfw/pairs.txt --cache cache/ --json lfw-int8.json",
            f"python scripts/model_card.py --recalibrate {name} --view2 lfw-int8.json --out-dir models",
            f"python scripts/attempt_card.py --data ../shared/data --cache cache/ --model {name} --write",
        ],
    }
    return card


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibration", type=Path, required=True, help="folder of identity folders of photos")
    p.add_argument("--count", type=int, default=COUNT, help="calibration chips")
    p.add_argument("--source", default=SOURCE, help="the float model card")
    p.add_argument("--out", type=Path, default=Path("models"), help="where the file and card go")
    args = p.parse_args()

    from faceunlock.model import load_card, read_card
    from faceunlock.networks import load_embedder

    card = load_card(args.source)
    embedder = load_embedder(card, threads=1)
    name = f"{card.name}-int8"
    target = args.out / f"{name}.onnx"
    args.out.mkdir(parents=True, exist_ok=True)
    chips = calibration_chips(args.calibration, args.count)
    quantise(card.onnx.path, chips, embedder.means, embedder.net.input, target)
    _, source = read_card(args.source)
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(int8_card(source, name, target, args.count), indent=1) + "\n")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and {path}; recalibrate it next")


if __name__ == "__main__":
    main()
