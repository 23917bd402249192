"""Where faceunlock's files live: the one home for every fixed path and package-data lookup."""

from __future__ import annotations

import importlib.util
import os
from importlib.resources import files
from pathlib import Path

STATE_DIR = Path("/var/lib/faceunlock")
"""Templates (one file per user) and lockout state; the unit's StateDirectory."""

CONFIG_DIR = Path("/etc/faceunlock")
CONFIG_PATH = CONFIG_DIR / "config.toml"
SNAPSHOT_DIR = STATE_DIR / "snapshots"


def package_data(*parts: str) -> Path:
    """A file shipped inside the package (faceunlock/data/...), in a checkout or an installed wheel."""
    return Path(str(files("faceunlock.data").joinpath(*parts)))


def models_dir() -> Path:
    """$FACEUNLOCK_MODELS, else the model cards and weights shipped with the package."""
    env = os.environ.get("FACEUNLOCK_MODELS")
    return Path(env) if env else package_data("models")


def installed_package(name: str) -> Path:
    """The folder of an installed third-party package that carries data files (weights); None-safe."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))
