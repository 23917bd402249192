"""The model card: which weights to load, how to use them, and the calibrated thresholds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from faceunlock.errors import ModelError
from faceunlock.paths import installed_package, models_dir

DEFAULT_MODEL = "dlib-resnet-ft1"


@dataclass(frozen=True)
class ModelCard:
    """What the verifier needs from models/<name>.json."""

    name: str
    weights: Path
    sha256: str
    flip: bool
    thresholds: dict[str, float]

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


def load_card(name: str = DEFAULT_MODEL) -> ModelCard:
    """Read and check a model card."""
    path = models_dir() / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
        spec = raw["weights"]
        thresholds = {k: float(v) for k, v in raw["thresholds"].items()}
        card = ModelCard(
            name=raw["name"],
            weights=resolve_weights(spec, path.parent),
            sha256=spec["sha256"],
            flip=bool(raw["input"].get("flip_average", False)),
            thresholds=thresholds,
        )
    except FileNotFoundError:
        raise ModelError(f"model card not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"model card {path} is malformed: {exc!r}") from None
    if not all(0 < t < 4 for t in thresholds.values()):
        raise ModelError(f"model card {path} has thresholds out of range: {thresholds}")
    return card
