"""The daemon's D-Bus interface as root sees it: properties, Verify, the camera queue, enrolments."""

import os
import subprocess
import sys
import time

import pytest
from gi.repository import GLib
from service_harness import NAME, VENV_BIN, Bus, dbus_error, stop, wait_for
from store_holder import held_by_another_process

from faceunlock.errors import EXIT_ERROR
from faceunlock.model import DEFAULT_MODEL

IFACE = "org.faceunlock.FaceUnlock1"


def test_properties(service):
    proxy = service.proxy()
    assert proxy.Version == "0.1.0"
    assert proxy.Model.startswith(f"{DEFAULT_MODEL} sha256:")
    assert proxy.Camera == str(service.camera)
    assert proxy.State == "idle"


def test_verify_returns_the_decision_and_reason(service):
    """...and VerifyStatus goes to the caller alone: another connection listening for it hears nothing."""
    service.point_camera("live-a")
    wait_for(lambda: True, 0)  # take in the statuses of earlier tests' scans first
    before = len(service.status)
    overheard = []
    other = service.bus.connect()
    other.subscribe(iface=IFACE, signal="VerifyStatus", signal_fired=lambda *a: overheard.append(a))
    decision, reason, details = service.proxy().Verify("alice", 20000, timeout=60)
    assert decision == "match" and "liveness passed" in reason
    assert details["user"] == "alice" and details["distance"] < details["threshold"]
    assert details["liveness"] == "pass" and details["frames"] >= 8
    assert wait_for(lambda: len(service.status) >= before + 2, 5)
    assert service.status[before:] == [("alice", "scanning", False), ("alice", "match", True)]
    assert overheard == []


def test_verify_of_a_user_not_enrolled(service):
    with pytest.raises(GLib.Error) as err:
        service.proxy().Verify("carol", 1000)
    assert dbus_error(err.value) == f"{IFACE}.Error.NotEnrolled"


class Calls:
    """Verify calls sent at once from this process (as root), answered asynchronously."""

    def __init__(self, service):
        self.service = service
        self.started = time.monotonic()
        self.results: dict[str, tuple[float, str]] = {}

    def send(self, user: str, timeout_ms: int) -> None:
        def done(con, result) -> None:
            try:
                answer = con.call_finish(result).unpack()[0]
            except GLib.Error as exc:
                answer = dbus_error(exc)
            self.results[user] = (time.monotonic() - self.started, answer)

        args = GLib.Variant("(su)", (user, timeout_ms))
        con = self.service.client.con
        con.call(NAME, "/org/faceunlock/FaceUnlock1", IFACE, "Verify", args, None, 0, 90000, None, done)

    def wait(self, count: int) -> dict[str, tuple[float, str]]:
        assert wait_for(lambda: len(self.results) >= count, 90), self.results
        return self.results


def test_one_scan_at_a_time_and_a_prompt_busy_answer(service):
    """queue_size = 1: of three simultaneous requests (for three users) one scans, one waits, one gets
    Busy at once. The camera shows hundreds of photos of someone else, so each scan runs its whole 3 s
    (the waiting one's deadline may pass in the queue: then it is a timeout)."""
    service.point_camera("photos-b")
    service.proxy().Enroll("dave", "default", 2, timeout=120)
    try:
        calls = Calls(service)
        for user in ("alice", "bob", "dave"):
            calls.send(user, 3000)
        results = calls.wait(3)
        busy = [(t, answer) for t, answer in results.values() if answer == f"{IFACE}.Error.Busy"]
        others = [t for t, answer in results.values() if answer != f"{IFACE}.Error.Busy"]
        assert len(busy) == 1 and busy[0][0] < min(others), ("Busy comes before any scan ends", results)
        scanned = sorted(answer for _, answer in results.values() if answer != f"{IFACE}.Error.Busy")
        assert scanned[0] == "no-match" and scanned[1] in ("no-match", "timeout"), results
    finally:
        assert wait_for(lambda: service.proxy().State == "idle", 30)
        service.proxy().Delete("dave", "")


def test_one_request_per_caller(service):
    """A second request from the same uid gets Busy at once, while another uid's request proceeds."""
    service.point_camera("enrol-a")
    service.proxy().Enroll("nobody", "default", 2, timeout=120)
    service.point_camera("photos-b")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "dbus-send", "--system"]
    nobody += ["--print-reply", f"--dest={NAME}", "/org/faceunlock/FaceUnlock1", f"{IFACE}.Verify"]
    nobody += ["string:nobody", "uint32:3000"]
    try:
        with service.in_session("c4"):
            first = subprocess.Popen(
                nobody, env=service.bus.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            assert wait_for(lambda: service.proxy().State == "verifying", 10)
            second = subprocess.run(nobody, env=service.bus.env(), capture_output=True, text=True, timeout=60)
            first_still_scanning = first.poll() is None
            calls = Calls(service)
            calls.send("alice", 10000)
            out, err = first.communicate(timeout=60)
        assert second.returncode != 0 and "Error.Busy" in second.stderr, second.stderr
        assert first_still_scanning, "Busy came at once, not after the first request's scan"
        assert first.returncode == 0 and b'"no-match"' in out, err
        assert calls.wait(1)["alice"][1] == "no-match"
    finally:
        assert wait_for(lambda: service.proxy().State == "idle", 30)
        service.proxy().Delete("nobody", "")


def test_a_covered_camera_ends_the_scan_on_time(service):
    """A camera that delivers only black frames (a closed shutter): the scan ends within its
    timeout plus 1 s, and the daemon serves the next request."""
    service.point_camera("black")
    started = time.monotonic()
    decision, reason, details = service.proxy().Verify("alice", 2000, timeout=60)
    elapsed = time.monotonic() - started
    assert decision == "timeout" and details["elapsed_ms"] < 3000, (decision, reason, details)
    assert "black or dark frames" in reason
    assert elapsed < 5.0, f"the D-Bus round trip took {elapsed:.1f} s (scan {details['elapsed_ms']} ms)"
    assert details["skipped"]["black-frames"] > 0
    service.point_camera("live-a")
    assert service.proxy().Verify("alice", 20000, timeout=60)[0] == "match"


def test_untrusted_config_is_refused(service, tmp_path):
    """A config writable by group: the daemon will not start with it, and a running daemon, which
    reads [pam] afresh for each PAM request, answers none while its file is so. Nothing matches."""
    os.chmod(tmp_path, 0o755)
    config = tmp_path / "group-writable.toml"
    config.write_text(service.config.read_text())
    os.chmod(config, 0o664)
    daemon = subprocess.run(
        [sys.executable, "-I", "-m", "faceunlock", "daemon", "--config", str(config)],
        env=service.bus.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert daemon.returncode == EXIT_ERROR and "not writable by group or others" in daemon.stderr, (
        daemon.stderr
    )
    assert "Traceback" not in daemon.stderr
    service.point_camera("live-a")
    os.chmod(service.config, 0o664)
    try:
        with service.in_session("c1"):
            result, message = service.authenticate("alice", "faceunlock-test", step="scan")
    finally:
        os.chmod(service.config, 0o644)
    assert result == "refused" and "face unlock is off" in message and "not writable" in message, message
    with service.in_session("c1"):
        assert service.authenticate("alice", "faceunlock-test") == ("ready", "")


def test_audit_line_says_the_config_is_insecure(service):
    """The test rig's config allows a folder as the camera (insecure = true): every attempt says so."""
    service.point_camera("live-a")
    service.proxy().Verify("alice", 20000, timeout=60)
    assert service.last_attempt("alice").endswith("insecure=yes")


def test_enrol_list_and_delete(service):
    service.point_camera("enrol-a")
    proxy = service.proxy()
    assert proxy.Enroll("carol", "first", 2, timeout=120) == 2
    assert proxy.Enroll("carol", "second", 2, timeout=120) == 2
    assert proxy.ListEnrolled("carol") == ["first", "second"]
    proxy.Delete("carol", "first")
    assert proxy.ListEnrolled("carol") == ["second"]
    from faceunlock import config
    from faceunlock.model import load_card
    from faceunlock.runtime import open_store

    store = open_store(config.load(service.config), load_card())
    with held_by_another_process(store.root), pytest.raises(GLib.Error) as err:
        proxy.Delete("carol", "", timeout=60)
    assert dbus_error(err.value) == f"{IFACE}.Error.Failed" and "is busy" in err.value.message, err.value
    assert proxy.ListEnrolled("carol") == ["second"], "a store another process holds is left as it was"
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


def start_daemon(bus, config) -> subprocess.Popen:
    """The installed faceunlock daemon on bus with config, its output (stdout and stderr) as text."""
    return subprocess.Popen(
        [str(VENV_BIN / "faceunlock"), "daemon", "--config", str(config)],
        env=bus.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_daemon_owns_the_name_alone_and_stops_cleanly(service, tmp_path):
    """What systemctl relies on: Type=dbus sees the name; a second copy cannot take it; SIGTERM exits 0."""
    os.chmod(tmp_path, 0o755)
    config = str(service.folder / "faceunlock.toml")
    with Bus(tmp_path) as bus:
        client = bus.connect()
        first = start_daemon(bus, config)
        try:
            assert wait_for(lambda: first.poll() is not None or client.dbus.NameHasOwner(NAME), 90)
            second = subprocess.run(
                [str(VENV_BIN / "faceunlock"), "daemon", "--config", config],
                env=bus.env(),
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert second.returncode == EXIT_ERROR and "name already exists" in second.stderr, second.stderr
            first.terminate()
            assert first.wait(timeout=30) == 0, first.stdout.read()
            assert not client.dbus.NameHasOwner(NAME)
        finally:
            stop(first)


NO_CAMERA = "/dev/v4l/by-id/faceunlock-test-no-such-camera"


def test_without_a_camera_the_daemon_runs_and_says_so(service, tmp_path):
    """No camera yet (a laptop before its camera appears): the daemon starts without insecure, stays
    up, and answers "no camera" at once; a camera path that holds something else (frames a user put
    there) is refused at start, as before."""
    os.chmod(tmp_path, 0o755)
    config = tmp_path / "no-camera.toml"
    config.write_text(f'[camera]\nsource = "{NO_CAMERA}"\n\n[store]\npath = "{tmp_path / "store"}"\n')
    with Bus(tmp_path) as bus:
        client = bus.connect()
        daemon = start_daemon(bus, config)
        try:
            assert wait_for(lambda: daemon.poll() is not None or client.dbus.NameHasOwner(NAME), 90)
            assert daemon.poll() is None, daemon.stdout.read()
            started = time.monotonic()
            with pytest.raises(GLib.Error) as err:
                client.get(NAME, "/org/faceunlock/FaceUnlock1").Enroll("root", "default", 2, timeout=60)
            assert "no such camera device" in str(err.value) and time.monotonic() - started < 10
            assert daemon.poll() is None and client.get(NAME, "/org/faceunlock/FaceUnlock1").Version
        finally:
            stop(daemon)
    config.write_text(f'[camera]\nsource = "{tmp_path}"\n')
    refused = subprocess.run(
        [sys.executable, "-I", "-m", "faceunlock", "daemon", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == EXIT_ERROR and "is not a V4L2 character device" in refused.stderr


def test_a_scan_without_the_camera_says_no_camera():
    """The daemon checks the camera again for every scan: missing, or not a device."""
    from types import SimpleNamespace

    from faceunlock.config import Config, replace
    from faceunlock.service.daemon import FaceUnlockService

    level = lambda _level: 0.4  # noqa: E731
    card = SimpleNamespace(scan_threshold=level, name="test", sha256="0" * 64)
    daemon = FaceUnlockService(
        SimpleNamespace(), replace(Config(), "camera", source=NO_CAMERA), card, None, None
    )
    decision = daemon.scan("alice", None, time.monotonic() + 5, "test")
    assert decision.decision == "error" and "is not there (plug the camera in" in decision.reason
    daemon.cfg = replace(Config(), "camera", source="/etc/hostname")
    assert "is not a camera device" in daemon.scan("alice", None, time.monotonic() + 5, "test").reason


@pytest.mark.parametrize("uid, asked_ms, most", [(1000, 600_000, 10.0), (1000, 0, 10.0), (0, 600_000, 120.0)])
def test_a_scan_asked_for_lasts_at_most_its_callers_cap(uid, asked_ms, most):
    """A user's Verify may hold the camera 10 s at most, however long it asks for (root: 120 s); 0
    takes the config's timeout, and nothing is shorter than the floor."""
    from types import SimpleNamespace

    from faceunlock.config import Config
    from faceunlock.service.daemon import MIN_TIMEOUT, FaceUnlockService

    cfg = Config()
    asked = cfg.verify.timeout if asked_ms == 0 else asked_ms / 1000
    before = time.monotonic()
    deadline = FaceUnlockService.deadline(SimpleNamespace(cfg=cfg), uid, asked_ms)
    assert before + MIN_TIMEOUT <= deadline <= time.monotonic() + min(asked, most)
    assert deadline - before >= min(asked, most) - 0.5
    floor = FaceUnlockService.deadline(SimpleNamespace(cfg=cfg), uid, 1)
    assert floor >= before + MIN_TIMEOUT
