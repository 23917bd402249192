"""The liveness model card (models/minifasnet.json): the networks, their files and sha256, the crop
scales, the fusion weights and the score thresholds per security level. Importable without torch."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from faceunlock.errors import ModelError
from faceunlock.paths import models_dir

DEFAULT_CARD = "minifasnet"
LEVELS = ("strict", "balanced", "fast")


@dataclass(frozen=True)
class Network:
    """One presentation-attack network: its crop scale, ONNX file (run time) and torch weights."""

    name: str
    scale: float
    onnx: Path
    onnx_sha256: str
    weights: Path
    weights_sha256: str


@dataclass(frozen=True)
class Fusion:
    """Logistic fusion of window features into a score: sigmoid(bias + sum w_i (x_i - mean_i) / std_i)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    bias: float


@dataclass(frozen=True)
class LivenessCard:
    name: str
    networks: tuple[Network, ...]
    fusion: Fusion
    thresholds: dict[str, float]
    attack_below: float
    min_frames: int
    path: Path

    def threshold(self, level: str) -> float:
        try:
            return self.thresholds[level]
        except KeyError:
            raise ModelError(f"liveness card {self.name} has no threshold for level {level!r}") from None


def read_verified(path: Path, sha256: str) -> bytes:
    """The file's bytes, read once, after checking them against the card's sha256."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read liveness model file {path}: {exc.strerror or exc}") from None
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise ModelError(f"liveness model file {path} has sha256 {found}, but the card expects {sha256}")
    return data


def load_liveness_card(name: str = DEFAULT_CARD, folder: Path | None = None) -> LivenessCard:
    """Read and check models/<name>.json (the files themselves are checked when they are loaded)."""
    folder = folder or models_dir()
    path = folder / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
        networks = tuple(
            Network(
                name=n["name"],
                scale=float(n["scale"]),
                onnx=folder / n["onnx"]["file"],
                onnx_sha256=n["onnx"]["sha256"],
                weights=folder / n["weights"]["file"],
                weights_sha256=n["weights"]["sha256"],
            )
            for n in raw["networks"]
        )
        f = raw["fusion"]
        fusion = Fusion(
            features=tuple(f["features"]),
            weights=tuple(float(x) for x in f["weights"]),
            mean=tuple(float(x) for x in f["mean"]),
            std=tuple(float(x) for x in f["std"]),
            bias=float(f["bias"]),
        )
        thresholds = {level: float(raw["thresholds"][level]) for level in LEVELS}
        card = LivenessCard(
            name=raw["name"],
            networks=networks,
            fusion=fusion,
            thresholds=thresholds,
            attack_below=float(raw["thresholds"]["attack_below"]),
            min_frames=int(raw["fusion"]["min_frames"]),
            path=path,
        )
    except FileNotFoundError:
        raise ModelError(f"liveness model card not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"liveness model card {path} is malformed: {exc!r}") from None
    n = len(fusion.features)
    if not networks or not (len(fusion.weights) == len(fusion.mean) == len(fusion.std) == n):
        raise ModelError(f"liveness model card {path}: networks or fusion vectors are empty or uneven")
    if not all(s > 0 for s in fusion.std) or card.min_frames < 1:
        raise ModelError(f"liveness model card {path}: fusion std must be > 0 and min_frames >= 1")
    levels = [card.attack_below] + [thresholds[k] for k in reversed(LEVELS)]
    if not all(0 <= a <= b <= 1 for a, b in zip(levels, levels[1:], strict=False)):
        raise ModelError(
            f"liveness model card {path}: need 0 <= attack_below <= fast <= balanced <= strict <= 1"
        )
    return card
