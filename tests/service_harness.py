"""The service harness (faceunlock.testing.service) as pytest sees it: missing tools and a non-root
user skip the service tests (fail under CI), and the running service is one session fixture.

Loaded as a pytest plugin from conftest.py, so the session fixtures are shared.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import missing
import pytest
from missing import unavailable

from faceunlock.testing import service as harness
from faceunlock.testing.service import (
    GRACE_S,
    NAME,
    PATH,
    PLANTED_MARKER,
    VENV_BIN,
    planted_code,
    stop,
    wait_for,
)

__all__ = [
    "GRACE_S",
    "NAME",
    "NOBODY",
    "PATH",
    "PLANTED_MARKER",
    "ROOT",
    "VENV_BIN",
    "Bus",
    "as_nobody",
    "dbus_error",
    "dbus_send",
    "need",
    "need_root",
    "planted_code",
    "stop",
    "wait_for",
]

ROOT = Path(__file__).resolve().parent.parent


def need(tool: str) -> str:
    """A system tool the test needs: skip without it (fail under CI)."""
    try:
        return harness.tool(tool)
    except harness.MissingTool as e:
        unavailable(str(e))


def need_root() -> None:
    missing.need_root("the service tests run as root")


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
"""A command prefix: run as nobody (uid and gid 65534, no supplementary groups)."""


def as_nobody(service, *args: str) -> subprocess.CompletedProcess:
    """A command run as nobody on the service's bus."""
    need("setpriv")
    return subprocess.run([*NOBODY, *args], env=service.bus.env(), capture_output=True, text=True, timeout=60)


def dbus_send(service, method: str, *args: str) -> subprocess.CompletedProcess:
    """dbus-send, as nobody, of one of the daemon's methods."""
    send = [need("dbus-send"), "--system", "--print-reply", f"--dest={NAME}", PATH]
    return as_nobody(service, *send, f"org.faceunlock.FaceUnlock1.{method}", *args)


class Bus(harness.Bus):
    """The private bus; the test is skipped without dbus-daemon."""

    def __enter__(self) -> Bus:
        need("dbus-daemon")
        return super().__enter__()


@pytest.fixture(scope="session")
def service(video_dir, tmp_path_factory):
    """The running service (see faceunlock.testing.service.running_service), shared by the session."""
    need_root()
    need("dbus-daemon")
    frames = harness.frame_folders(video_dir, tmp_path_factory.mktemp("service-frames"))
    if not frames["photos-b"].is_dir():
        unavailable(f"test data missing: {frames['photos-b']}")
    with harness.running_service(frames) as svc:
        yield svc


def dbus_error(exc) -> str:
    """The D-Bus error name of a GLib.Error raised by a failed call."""
    from gi.repository import Gio

    return Gio.DBusError.get_remote_error(exc) or ""
