"""Shared fixtures: where the real face data lives."""

import os
from pathlib import Path

import pytest
from missing import unavailable

pytest_plugins = ("service_harness", "ui_harness", "liveness_fixtures")

ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The shared data folder: $FACEUNLOCK_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("FACEUNLOCK_DATA", ROOT.parent / "shared" / "data"))


def require(path: Path) -> Path:
    """Return path if it exists; fail under CI (or when FACEUNLOCK_DATA is set), else skip."""
    if path.exists():
        return path
    msg = f"test data missing: {path}"
    if os.environ.get("FACEUNLOCK_DATA"):
        pytest.fail(msg)
    unavailable(msg)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return require(data_root())


@pytest.fixture(scope="session")
def lfw_dir(data_dir) -> Path:
    return require(data_dir / "lfw" / "lfw-deepfunneled")


@pytest.fixture(scope="session")
def video_dir(data_dir) -> Path:
    return require(data_dir / "video")


@pytest.fixture(scope="session")
def celeba_dir(data_dir) -> Path:
    return require(data_dir / "celeba-train")


@pytest.fixture(scope="session")
def nuaa_dir(data_dir) -> Path:
    """nuaa-live: 7 people on several days, others sometimes behind them (measure on it, never fit)."""
    return require(data_dir / "nuaa-live")
