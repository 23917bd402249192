"""The daemon's D-Bus interface as root sees it: properties, Verify, the camera queue, enrolments."""

import os
import subprocess
import time

import pytest
from gi.repository import GLib
from service_harness import NAME, VENV_BIN, Bus, dbus_error, stop, wait_for

from faceunlock.model import DEFAULT_MODEL

IFACE = "org.faceunlock.FaceUnlock1"


def test_properties(service):
    proxy = service.proxy()
    assert proxy.Version == "0.1.0"
    assert proxy.Model.startswith(f"{DEFAULT_MODEL} sha256:")
    assert proxy.Camera == str(service.camera)
    assert proxy.State == "idle"


def test_verify_returns_the_decision_and_reason(service):
    service.point_camera("live-a")
    before = len(service.status)
    decision, reason, details = service.proxy().Verify("alice", 20000, timeout=60)
    assert decision == "match" and "liveness passed" in reason
    assert details["user"] == "alice" and details["distance"] < details["threshold"]
    assert details["liveness"] == "pass" and details["frames"] >= 8
    assert wait_for(lambda: len(service.status) >= before + 2, 5)
    assert service.status[before:] == [("alice", "scanning", False), ("alice", "match", True)]


def test_verify_of_a_user_not_enrolled(service):
    with pytest.raises(GLib.Error) as err:
        service.proxy().Verify("carol", 1000)
    assert dbus_error(err.value) == f"{IFACE}.Error.NotEnrolled"


def test_one_scan_at_a_time_and_a_prompt_busy_answer(service):
    """queue_size = 1: of three simultaneous requests one scans, one waits, one gets Busy at once.

    The camera shows hundreds of photos of someone else, so the first scan runs for its whole 4 s.
    """
    service.point_camera("photos-b")
    cmd = [str(VENV_BIN / "faceunlock-pam"), "--bus-address", service.bus.address, "--timeout", "4"]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            cmd, env={"PAM_USER": "alice"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    ended = {}

    def all_ended() -> bool:
        for i, proc in enumerate(procs):
            if i not in ended and proc.poll() is not None:
                ended[i] = time.monotonic() - started
        return len(ended) == len(procs)

    assert wait_for(lambda: service.proxy().State == "verifying", 10)
    assert wait_for(all_ended, 90)
    results = [(proc.returncode, ended[i], proc.stderr.read()) for i, proc in enumerate(procs)]
    busy = [r for r in results if "Error.Busy" in r[2]]
    assert len(busy) == 1 and busy[0][0] == 3 and busy[0][1] < 2.0, results
    assert sorted(code for code, _, _ in results) == [1, 1, 3], results
    assert wait_for(lambda: service.proxy().State == "idle", 30)


def test_enrol_list_and_delete(service):
    service.point_camera("enrol-a")
    proxy = service.proxy()
    assert proxy.Enroll("carol", "first", 2, timeout=120) == 2
    assert proxy.Enroll("carol", "second", 2, timeout=120) == 2
    assert proxy.ListEnrolled("carol") == ["first", "second"]
    proxy.Delete("carol", "first")
    assert proxy.ListEnrolled("carol") == ["second"]
    proxy.Delete("carol", "")
    with pytest.raises(GLib.Error) as err:
        proxy.ListEnrolled("carol")
    assert dbus_error(err.value) == f"{IFACE}.Error.NotEnrolled"
    with pytest.raises(GLib.Error) as err:
        proxy.Delete("carol", "")
    assert dbus_error(err.value) == f"{IFACE}.Error.NotEnrolled"


def test_enrol_refusals(service, tmp_path):
    """A bad label or frame count is InvalidArgument; a camera with no face is Failed, with the reason."""
    import cv2
    import numpy as np

    proxy = service.proxy()
    for label, frames in (("no/slash", 2), ("x", 500)):
        with pytest.raises(GLib.Error) as err:
            proxy.Enroll("carol", label, frames)
        assert dbus_error(err.value) == f"{IFACE}.Error.InvalidArgument"
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((480, 640, 3), 128, np.uint8))
    service.frames["grey"] = tmp_path
    service.point_camera("grey")
    with pytest.raises(GLib.Error) as err:
        proxy.Enroll("carol", "x", 2, timeout=60)
    assert dbus_error(err.value) == f"{IFACE}.Error.Failed"
    assert "no face found" in str(err.value)


def test_daemon_owns_the_name_alone_and_stops_cleanly(service, tmp_path):
    """What systemctl relies on: Type=dbus sees the name; a second copy cannot take it; SIGTERM exits 0."""
    os.chmod(tmp_path, 0o755)
    config = str(service.folder / "faceunlock.toml")
    with Bus(tmp_path) as bus:
        client = bus.connect()
        first = subprocess.Popen(
            [str(VENV_BIN / "faceunlock"), "daemon", "--config", config],
            env=bus.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert wait_for(lambda: first.poll() is not None or client.dbus.NameHasOwner(NAME), 90)
            second = subprocess.run(
                [str(VENV_BIN / "faceunlock"), "daemon", "--config", config],
                env=bus.env(),
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert second.returncode == 1 and "name already exists" in second.stderr, second.stderr
            first.terminate()
            assert first.wait(timeout=30) == 0, first.stdout.read()
            assert not client.dbus.NameHasOwner(NAME)
        finally:
            stop(first)
