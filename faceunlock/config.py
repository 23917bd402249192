"""The one typed configuration, read from TOML and validated key by key.

Every key has a type and an allowed range or set of choices; an unknown key, a
wrong type or an out-of-range value raises ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceunlock.errors import ConfigError
from faceunlock.paths import CONFIG_PATH, SNAPSHOT_DIR, STATE_DIR

DEFAULT_PATH = CONFIG_PATH
SECURITY_LEVELS = ("strict", "balanced", "fast")


def opt(default, lo=None, hi=None, choices=None, doc=""):
    """A config field with its allowed range or choices."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices, "doc": doc})


@dataclass(frozen=True)
class CameraConfig:
    source: str = opt("/dev/video0", doc="V4L2 device, camera index, video, image or folder")
    dark_threshold: float = opt(25.0, 0.0, 254.0, doc="skip frames whose mean grey level is below this")
    open_timeout: float = opt(5.0, 0.1, 60.0, doc="seconds allowed to open the camera")
    read_timeout: float = opt(2.0, 0.05, 30.0, doc="seconds allowed for one frame")


@dataclass(frozen=True)
class DetectorConfig:
    min_face_size: int = opt(40, 12, 2000, doc="smallest face, in pixels, the detector looks for")
    max_side: int = opt(640, 0, 8192, doc="downscale frames whose long side exceeds this (0: never)")


@dataclass(frozen=True)
class VerifyConfig:
    security_level: str = opt("balanced", choices=SECURITY_LEVELS, doc="threshold from the model card")
    timeout: float = opt(5.0, 0.2, 120.0, doc="seconds a scan may take")
    consecutive: int = opt(2, 1, 30, doc="matching frames of the same tracked face needed")
    min_face_size: int = opt(80, 20, 2000, doc="faces smaller than this are not judged")
    min_sharpness: float = opt(15.0, 0.0, 10000.0, doc="variance of the chip's Laplacian")
    multiple_faces: str = opt("largest", choices=("largest", "reject"), doc="policy with several faces")
    max_failures: int = opt(5, 1, 100, doc="failed scans in a row before a lockout")
    lockout_seconds: float = opt(60.0, 0.0, 86400.0, doc="how long everything falls through after that")
    password_max_age_hours: float = opt(0.0, 0.0, 8760.0, doc="need a password login this recent (0: off)")
    password_since_boot: bool = opt(False, doc="require a password login since the last boot")


@dataclass(frozen=True)
class LivenessConfig:
    enabled: bool = opt(True, doc="presentation-attack cues gate every match")
    window: int = opt(8, 1, 300, doc="frames of one tracked face watched cue-free before a match counts")
    frame_reach: float = opt(1.2, 0.2, 5.0, doc="display-frame cue: how far from the face (face sizes)")
    frame_cover: float = opt(0.5, 0.1, 1.0, doc="display-frame cue: edge overlap with the face extent")
    ir: bool = opt(False, doc="IR camera: grey frames, and a face dark in IR is a screen")
    ir_min_face_level: float = opt(40.0, 0.0, 255.0, doc="IR mode: darkest mean grey level of a real face")


@dataclass(frozen=True)
class AuditConfig:
    snapshots: bool = opt(False, doc="keep a JPEG of the best frame of failed attempts")
    snapshot_dir: str = opt(str(SNAPSHOT_DIR), doc="where snapshots go (mode 0700)")
    snapshot_max_mb: float = opt(20.0, 0.1, 10000.0, doc="oldest snapshots are deleted above this")


@dataclass(frozen=True)
class EnrollConfig:
    frames: int = opt(10, 1, 200, doc="good frames captured per enrolment")
    timeout: float = opt(30.0, 1.0, 600.0, doc="seconds an enrolment may take")


@dataclass(frozen=True)
class StoreConfig:
    path: str = opt(str(STATE_DIR), doc="directory of template files (mode 0700)")


@dataclass(frozen=True)
class DaemonConfig:
    auto_unlock: bool = opt(True, doc="watch logind and unlock an enrolled user's locked session")
    grace_period: float = opt(3.0, 0.0, 3600.0, doc="seconds after a lock in which nothing unlocks")
    max_scans_per_lock: int = opt(3, 1, 100, doc="automatic scans allowed per lock")
    scan_timeout: float = opt(5.0, 0.5, 60.0, doc="seconds an automatic unlock scan may take")
    queue_size: int = opt(1, 0, 16, doc="requests that may wait for the camera; more get Busy at once")
    threads: int = opt(1, 1, 16, doc="torch threads; 1 is fastest when the CPU is shared")


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    enroll: EnrollConfig = field(default_factory=EnrollConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)


def check_value(section: str, f: dataclasses.Field, value: Any) -> Any:
    """Validate one value against its field's type and range; return it coerced."""
    key = f"{section}.{f.name}"
    meta = f.metadata
    kind = type(f.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(meta['choices'])}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and not (lo <= value <= hi):
        raise ConfigError(f"{key}: {value!r} is out of range [{lo}, {hi}]")
    if kind is str and ("\0" in value or not value.strip()):
        raise ConfigError(f"{key}: must be a non-empty string")
    return value


def build_section(cls, section: str, raw: Any):
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s): {', '.join(unknown)}; known: {', '.join(fields)}")
    return cls(**{name: check_value(section, fields[name], v) for name, v in raw.items()})


def from_dict(raw: dict) -> Config:
    """Build a validated Config from a parsed TOML document."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(sections)}")
    return Config(
        **{
            name: build_section(f.default_factory, name, raw[name])
            for name, f in sections.items()
            if name in raw
        }
    )


def load(path: Path | str | None = None) -> Config:
    """Load a config file; the default path may be absent (defaults apply), an explicit one may not."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return Config()
        path = DEFAULT_PATH
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def replace(cfg: Config, section: str, **changes) -> Config:
    """Return cfg with some keys of one section changed, validated like the file."""
    current = getattr(cfg, section)
    fields = {f.name: f for f in dataclasses.fields(current)}
    checked = {k: check_value(section, fields[k], v) for k, v in changes.items() if v is not None}
    return dataclasses.replace(cfg, **{section: dataclasses.replace(current, **checked)})
