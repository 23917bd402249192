"""The installed unit under a real systemd: start/status/restart/stop, D-Bus activation, SIGTERM,
Restart=on-failure, a scan under the unit's sandboxing, and its systemd-analyze exposure score."""

from __future__ import annotations

import re
import time

import pytest
from conftest import VENV_BIN

UNIT = "faceunlock.service"


@pytest.fixture(scope="module")
def rig(installed):
    yield installed
    installed.sb.run(["systemctl", "start", UNIT], timeout=120)


def main_pid(rig) -> int:
    return int(rig.show(UNIT, "MainPID")["MainPID"])


def wait_state(rig, state: str, timeout: float) -> float:
    started = time.monotonic()
    while rig.sb.run(["systemctl", "is-active", UNIT], check=False).stdout.strip() != state:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{UNIT} is not {state} after {timeout} s: {rig.show(UNIT, 'ActiveState')}")
        time.sleep(0.05)
    return time.monotonic() - started


def ensure_running(rig) -> None:
    rig.sb.run(["systemctl", "start", UNIT], timeout=120)


def test_start_status_restart_stop(rig):
    rig.sb.run(["systemctl", "stop", UNIT])
    inactive = rig.sb.run(["systemctl", "is-active", UNIT], check=False)
    assert (inactive.returncode, inactive.stdout.strip()) == (3, "inactive")

    start = rig.sb.run(["systemctl", "start", UNIT], timeout=120)
    assert rig.sb.out(["systemctl", "is-active", UNIT]) == "active"
    status = rig.sb.run(["systemctl", "status", "--no-pager", "--lines=5", UNIT])
    print(f"systemctl start took {start.elapsed:.2f} s\n{status.stdout}")
    assert "Active: active (running)" in status.stdout
    assert "ready as org.faceunlock.FaceUnlock1" in status.stdout

    before = main_pid(rig)
    restart = rig.sb.run(["systemctl", "restart", UNIT], timeout=120)
    after = main_pid(rig)
    assert after not in (0, before) and rig.sb.out(["systemctl", "is-active", UNIT]) == "active"
    assert rig.prop("Version") == rig.sb.out([str(VENV_BIN / "faceunlock"), "--version"]).split()[-1]

    stop = rig.sb.run(["systemctl", "stop", UNIT])
    assert rig.sb.run(["systemctl", "is-active", UNIT], check=False).stdout.strip() == "inactive"
    assert rig.show(UNIT, "Result")["Result"] == "success"
    print(f"restart {restart.elapsed:.2f} s, stop {stop.elapsed:.2f} s")


def test_dbus_activation_on_first_call(rig):
    rig.sb.run(["systemctl", "stop", UNIT])
    assert rig.sb.run(["systemctl", "is-active", UNIT], check=False).stdout.strip() == "inactive"
    started = time.monotonic()
    model = rig.prop("Model")
    elapsed = time.monotonic() - started
    print(f"first call (property Model) answered after {elapsed:.2f} s by an activated daemon")
    assert model.startswith("dlib-resnet") or model
    assert rig.sb.out(["systemctl", "is-active", UNIT]) == "active"
    triggered = rig.sb.out(["journalctl", "-u", "dbus.service", "-o", "cat", "--no-pager"])
    assert "Activating via systemd: service name='org.faceunlock.FaceUnlock1'" in triggered


def test_sigterm_stops_cleanly_within_two_seconds(rig):
    ensure_running(rig)
    restarts = rig.show(UNIT, "NRestarts")["NRestarts"]
    pid = main_pid(rig)
    seen = len(rig.journal())
    started = time.monotonic()
    rig.sb.run(["kill", "-TERM", str(pid)])
    wait_state(rig, "inactive", 10)
    elapsed = time.monotonic() - started
    print(f"SIGTERM to inactive: {elapsed:.2f} s")
    assert elapsed < 2.0
    shown = rig.show(UNIT, "Result", "ExecMainCode", "ExecMainStatus", "NRestarts")
    assert shown["Result"] == "success" and shown["ExecMainStatus"] == "0", shown
    assert shown["NRestarts"] == restarts, "a clean stop must not be restarted"
    rig.wait_journal(r"^faceunlock: stopped$", seen, 5)


def test_restart_on_failure_after_a_crash(rig):
    ensure_running(rig)
    restarts = int(rig.show(UNIT, "NRestarts")["NRestarts"])
    pid = main_pid(rig)
    started = time.monotonic()
    rig.sb.run(["kill", "-SEGV", str(pid)])
    deadline = started + 60
    while main_pid(rig) in (0, pid) or rig.sb.out(["systemctl", "is-active", UNIT], check=False) != "active":
        assert time.monotonic() < deadline, rig.show(UNIT, "ActiveState", "SubState", "Result")
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    print(f"SIGSEGV to active again: {elapsed:.2f} s")
    assert int(rig.show(UNIT, "NRestarts")["NRestarts"]) == restarts + 1
    journal = "\n".join(rig.journal())
    assert re.search(r"Main process exited, code=(dumped|killed), status=11/SEGV", journal), journal[-2000:]
    assert rig.prop("State") == "idle"


def test_the_hardened_unit_runs_a_scan(rig):
    ensure_running(rig)
    pid = main_pid(rig)
    status = rig.sb.out(["cat", f"/proc/{pid}/status"])
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    own_net = rig.sb.out(["readlink", f"/proc/{pid}/ns/net"])
    assert own_net != rig.sb.out(["readlink", "/proc/1/ns/net"]), "PrivateNetwork= gives the daemon its own"
    in_unit = ["nsenter", "-t", str(pid), "-m", "--", "/bin/sh", "-c"]
    write_usr = rig.sb.run([*in_unit, "touch /usr/lib/faceunlock-probe"], check=False)
    assert write_usr.returncode != 0 and "Read-only file system" in write_usr.stderr, write_usr
    rig.sb.run([*in_unit, "touch /var/lib/faceunlock/probe && rm /var/lib/faceunlock/probe"])

    rig.point_camera("live-a")
    decision, reason, details = rig.verify("alice")
    print(f"scan under the unit: {decision} in {details['elapsed_ms']:.0f} ms ({reason})")
    assert decision == "match" and details["liveness"] == "pass"
    assert main_pid(rig) == pid
    rig.point_camera("live-c")
    decision, reason, _ = rig.verify("alice")
    assert decision == "no-match", reason


def exposure(rig, unit: str) -> float:
    out = rig.sb.out(["systemd-analyze", "security", "--no-pager", unit])
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", out)
    assert match, out[-1000:]
    return float(match.group(1))


def test_security_exposure_is_below_fprintd(rig):
    ours = exposure(rig, UNIT)
    fprintd = exposure(rig, "fprintd.service")
    print(f"systemd-analyze security: {UNIT} {ours}, fprintd.service (Debian's fprintd) {fprintd}")
    assert ours < fprintd


def test_doctor_on_the_running_system(rig):
    ensure_running(rig)
    code, report = rig.doctor(str(VENV_BIN / "faceunlock"))
    found = {(f["check"], f["status"]): f["message"] for f in report["findings"]}
    print("\n".join(f"{f['status']:>7} {f['check']:<10} {f['message']}" for f in report["findings"]))
    assert code == 1 and report["problems"] == 1, report
    assert "insecure = true" in found[("config", "problem")]
    assert "belongs to root alone" in found[("config", "ok")]
    assert found[("daemon", "ok")].startswith(
        f"running: version {rig.prop('Version')}, model {rig.prop('Model')}"
    )
    assert ("camera", "info") in found and "frames usable, colour" in found[("camera", "ok")]
    enrolled = [
        f["message"] for f in report["findings"] if f["check"] == "enrolments" and f["status"] == "ok"
    ]
    assert enrolled == [f"{u}: 1 enrolment(s), model fingerprint matches" for u in ("alice", "bob")]
    assert "in no PAM service" in found[("pam", "info")]
