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

DEFAULT_MODEL = "dlib-resnet-ft1-int8"
"""The run-time embedder: the int8 quantisation of FLOAT_MODEL, with its own calibrated thresholds."""
FLOAT_MODEL = "dlib-resnet-ft1"
"""The float network with torch weights: training, export, the torch backend and the parity tests."""
LEVELS = ("strict", "balanced", "fast")
DETECTOR_CARD = "mtcnn"
MTCNN_NETS = ("pnet", "rnet", "onet")


def default_model(backend: str) -> str:
    """The card a command uses when none is named: the torch backend runs the float network."""
    return FLOAT_MODEL if backend == "torch" else DEFAULT_MODEL


@dataclass(frozen=True)
class AttemptThresholds:
    """Attempt-level thresholds (card ``attempt``): one per fusion rule and level, for attempts of
    ``probe`` frames against ``enrol`` anchors; ``rule`` is the one the verifier uses."""

    rule: str
    enrol: int
    probe: int
    thresholds: dict[str, dict[str, float]]

    def threshold(self, level: str, rule: str | None = None) -> float:
        rule = rule or self.rule
        try:
            return self.thresholds[rule][level]
        except KeyError:
            raise ModelError(f"no attempt threshold for rule {rule!r} at level {level!r}") from None


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
    attempt: AttemptThresholds | None = None
    onnx: OnnxFile | None = None
    quantised: bool = False
    """The ONNX file is an int8 quantisation of the weights: it runs on the onnx backend only."""

    @property
    def embedding_id(self) -> str:
        """What else, besides the weights, shapes an embedding: stored in templates and checked."""
        from hashlib import sha256

        from faceunlock.vision.align import TEMPLATE

        template = sha256(TEMPLATE.tobytes()).hexdigest()[:12]
        return f"{self.name};flip={int(self.flip)};align={template}"

    def scan_threshold(self, level: str) -> float:
        """What a scan's fused windows are compared with: the shipped rule's attempt-level threshold,
        or the per-pair one for a card without an attempt section."""
        return self.attempt.threshold(level) if self.attempt else self.threshold(level)

    def threshold(self, level: str) -> float:
        """The per-pair threshold: one image against one image."""
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


def read_attempt(raw: dict | None, path: Path) -> AttemptThresholds | None:
    """The card's attempt section, checked: a known shipped rule, every level for every rule, sane values."""
    if raw is None:
        return None
    from faceunlock.fusion import RULES

    rule, enrol, probe = raw["rule"], raw["enrol"], raw["probe"]
    thresholds = {r: {lv: float(t) for lv, t in levels.items()} for r, levels in raw["thresholds"].items()}
    problems = []
    if rule not in RULES or rule not in thresholds:
        problems.append(f"shipped rule {rule!r} is unknown or has no thresholds")
    for r, levels in thresholds.items():
        if r not in RULES:
            problems.append(f"unknown rule {r!r}")
        if sorted(levels) != sorted(LEVELS) or not all(0 < t < 4 for t in levels.values()):
            problems.append(f"rule {r!r} needs thresholds in (0, 4) for exactly {', '.join(LEVELS)}")
        elif not levels["strict"] <= levels["balanced"] <= levels["fast"]:
            problems.append(f"rule {r!r}: thresholds must grow from strict to fast")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100 for v in (enrol, probe)):
        problems.append(f"enrol and probe must be counts from 1 to 100, not {enrol!r}, {probe!r}")
    if problems:
        raise ModelError(f"model card {path} has a bad attempt section: {'; '.join(problems)}")
    return AttemptThresholds(rule=rule, enrol=enrol, probe=probe, thresholds=thresholds)


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
            attempt=read_attempt(raw.get("attempt"), path),
            onnx=onnx_file(raw.get("onnx"), path.parent),
            quantised="quantisation" in raw,
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
