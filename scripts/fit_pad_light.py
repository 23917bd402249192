"""Fit each liveness network of the card to read faces the same under other exposure (FITTING clips only).

    .venv/bin/python scripts/fit_pad_light.py --out DIR [--data ../shared/data] \
        [--crops cache/pad-crops.npz] [--steps 400] [--seed 0] \
        [--family broad] [--layers all] [--anchor 0.3] [--photos 6]

DIR becomes a copy of the models folder whose liveness card points at the students
(faceunlock/training/pad_light.py: <onnx stem>-lit.pth, exported to ONNX), with the command, date
and sha256s; the teachers are the card's own networks. The shipped models folder is never written.
The fusion and thresholds are not touched: measure the copy with `FACEUNLOCK_MODELS=DIR faceunlock
eval liveness` and `eval sessions --lights [--attacks]`, and re-derive its thresholds with
`FACEUNLOCK_MODELS=DIR scripts/fit_liveness.py --card DIR/minifasnet.json --features pad,stillness`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np

from faceunlock.evaluation.sets import split_of
from faceunlock.evaluation.shared_data import FIT, made_clips, recorded_clips
from faceunlock.liveness.export import export_onnx
from faceunlock.liveness.network import file_sha256, load_minifasnet
from faceunlock.paths import models_dir
from faceunlock.training.pad_crops import gather, photo_crops
from faceunlock.training.pad_light import BROAD, FRONT, LightRange, distil

EVERY, MOST = 4, 60
"""Every 4th frame of each fitting clip, at most 60 frames a clip."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("FACEUNLOCK_DATA", "../shared/data"))
    p.add_argument("--crops", default="cache/pad-crops.npz")
    p.add_argument("--out", required=True, help="folder for the copy of the models (must not exist)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--family", choices=("exposure", "broad"), default="exposure", help="light changes")
    p.add_argument("--layers", choices=("front", "all"), default="front", help="layers fitted")
    p.add_argument("--anchor", type=float, default=0.0, help="pull towards the published weights")
    p.add_argument(
        "--photos", type=int, default=0, help="also this many photos of each CelebA 'calibrate' identity"
    )
    args = p.parse_args()
    family = BROAD if args.family == "broad" else LightRange()
    layers = FRONT if args.layers == "front" else None
    import torch

    torch.set_num_threads(1)
    folder = Path(args.out)
    if folder.exists():
        p.error(f"--out {folder} exists: give a new folder")
    shutil.copytree(models_dir(), folder)
    card_path = folder / "minifasnet.json"
    raw = json.loads(card_path.read_text())
    scales = tuple(float(n["scale"]) for n in raw["networks"])
    data = Path(args.data)
    clips = recorded_clips(data, FIT) + made_clips(data, FIT)
    crops, names = gather(clips, scales, EVERY, MOST, Path(args.crops))
    print(f"{len(names)} crops from {len(set(names))} fitting clips")
    if args.photos:
        root = data / "celeba-train"
        people = sorted(d for d in root.iterdir() if d.is_dir() and split_of(d.name) == "calibrate")
        extra = photo_crops([f for d in people for f in sorted(d.glob("*.jpg"))[: args.photos]], scales)
        crops = {s: np.concatenate([crops[s], e]) for s, e in zip(scales, extra, strict=True)}
        print(f"and {len(extra[0])} crops of CelebA photos")
    for net in raw["networks"]:
        teacher_file = folder / net["weights"]["file"]
        teacher = load_minifasnet(teacher_file, net["weights"]["sha256"])
        start = time.monotonic()

        def log(step: int, loss: float, name=net["name"], start=start) -> None:
            if (step + 1) % 50 == 0:
                print(
                    f"{name}: step {step + 1}, loss {loss:.4f}, {time.monotonic() - start:.0f} s", flush=True
                )

        student = distil(
            teacher,
            crops[float(net["scale"])],
            args.steps,
            seed=args.seed,
            family=family,
            anchor=args.anchor,
            trainable=layers,
            log=log,
        )
        stem = Path(net["onnx"]["file"]).stem
        weights = folder / f"{stem}-lit.pth"
        torch.save({"module." + k: v for k, v in student.state_dict().items()}, weights)
        onnx = export_onnx(weights, folder / f"{stem}-lit.onnx")
        net["weights"] = {"file": weights.name, "sha256": file_sha256(weights)}
        net["onnx"] = {"file": onnx.name, "sha256": file_sha256(onnx)}
        net["light_fit"] = {
            "command": f"python scripts/fit_pad_light.py --out DIR --steps {args.steps} --seed {args.seed} "
            f"--family {args.family} --layers {args.layers} --anchor {args.anchor} --photos {args.photos}",
            "date": date.today().isoformat(),
            "teacher": teacher_file.name,
            "crops": len(crops[float(net["scale"])]),
            "clips": len(set(names)),
            "split": "faceunlock/evaluation/shared_data.py (role 'fit'); nothing from the 'report' role",
            "lights": repr(family),
            "fitted_layers": list(layers) if layers else "all",
            "method": "faceunlock/training/pad_light.py: label-free distillation, the student's answer "
            "on a relit crop matched to the teacher's on the crop as filmed",
        }
        print(f"wrote {weights} and {onnx}")
    card_path.write_text(json.dumps(raw, indent=1) + "\n")
    print(f"wrote {card_path}")


if __name__ == "__main__":
    main()
