"""The one rule for what a test needs and cannot find: skip on a developer's machine, fail under CI.

CI (``CI`` set) installs everything and runs as root, so there a missing tool, module, data folder or
privilege is a broken set-up, never a reason to pass by skipping. Every test that may lack something
asks here.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def unavailable(msg: str) -> None:
    """Skip the test, or fail it under CI, where everything it needs is installed."""
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def need_root(why: str = "it runs as root (CI does)") -> None:
    if os.geteuid() != 0:
        unavailable(f"this test needs root: {why}")


def need_module(name: str, what: str = "") -> None:
    if importlib.util.find_spec(name) is None:
        unavailable(f"{name} is not installed{f' ({what})' if what else ''}")
