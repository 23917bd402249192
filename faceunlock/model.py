"""The model cards: which files to load, their sha256, how to use them, and the calibrated thresholds.

models/<name>.json describes the embedder: its torch weights (whose sha256 is the fingerprint stored
in every template), their ONNX export (run time) and the thresholds. models/mtcnn.json describes the
detector's three networks the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from faceunlock.errors import ModelError
from faceunlock.paths import installed_package, models_dir

DEFAULT_MODEL = "dlib-resnet-ft1"
DETECTOR_CARD = "mtcnn"
MTCNN_NETS = ("pnet", "rnet", "onet")


@dataclass(frozen=True)
class OnnxFile:
    """An ONNX export shipped beside its card, and the sha256 it must have."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class ModelCard:
    """What the verifier needs from models/<name>.json."""

    name: str
    weights: Path
    sha256: str
    flip: bool
    thresholds: dict[str, float]
    onnx: OnnxFile | None = None

    @property
    def embedding_id(self) -> str:
        """What else, besides the weights, shapes an embedding: stored in templates and checked."""
        from hashlib import sha256

        from faceunlock.vision.align import TEMPLATE

        template = sha256(TEMPLATE.tobytes()).hexdigest()[:12]
        return f"{self.name};flip={int(self.flip)};align={template}"

    def threshold(self, level: str) -> float:
        try:
            return self.thresholds[level]
        except KeyError:
            raise ModelError(f"model {self.name} has no threshold for security level {level!r}") from None


def resolve_weights(spec: dict, card_dir: Path) -> Path:
    """A weights file named either by package (read from site-packages by path) or relative path."""
    if "package" in spec:
        try:
            return installed_package(spec["package"]) / spec["file"]
        except FileNotFoundError:
            raise ModelError(f"package {spec['package']!r} with the model weights is not installed") from None
    return card_dir / spec["file"]


def onnx_file(raw: dict | None, card_dir: Path) -> OnnxFile | None:
    if raw is None:
        return None
    if not isinstance(raw["sha256"], str) or len(raw["sha256"]) != 64:
        raise ValueError(f"onnx sha256 must be 64 hex digits, got {raw['sha256']!r}")
    return OnnxFile(card_dir / raw["file"], raw["sha256"])


def read_card(name: str) -> tuple[Path, dict]:
    path = models_dir() / f"{name}.json"
    try:
        return path, json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"model card not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model card {path} is malformed: {exc!r}") from None


def load_card(name: str = DEFAULT_MODEL) -> ModelCard:
    """Read and check a model card."""
    path, raw = read_card(name)
    try:
        spec = raw["weights"]
        thresholds = {k: float(v) for k, v in raw["thresholds"].items()}
        card = ModelCard(
            name=raw["name"],
            weights=resolve_weights(spec, path.parent),
            sha256=spec["sha256"],
            flip=bool(raw["input"].get("flip_average", False)),
            thresholds=thresholds,
            onnx=onnx_file(raw.get("onnx"), path.parent),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"model card {path} is malformed: {exc!r}") from None
    if not all(0 < t < 4 for t in thresholds.values()):
        raise ModelError(f"model card {path} has thresholds out of range: {thresholds}")
    return card


@dataclass(frozen=True)
class NetCard:
    """One network of the detector: its torch weights (None: their package is not installed; only
    export and the torch backend need them) and their ONNX export."""

    name: str
    weights: Path | None
    sha256: str
    onnx: OnnxFile | None


def load_detector_card(name: str = DETECTOR_CARD) -> dict[str, NetCard]:
    """Read models/mtcnn.json: P-, R- and O-Net, each with its weights and ONNX file."""
    path, raw = read_card(name)
    try:
        nets = {}
        for net in MTCNN_NETS:
            spec = raw["networks"][net]
            weights = spec["weights"]
            try:
                found = resolve_weights(weights, path.parent)
            except ModelError:
                found = None
            nets[net] = NetCard(
                name=net,
                weights=found,
                sha256=weights["sha256"],
                onnx=onnx_file(spec.get("onnx"), path.parent),
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"model card {path} is malformed: {exc!r}") from None
    return nets
