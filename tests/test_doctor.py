"""faceunlock doctor: each check on real files, frames and templates (the running system: tests/system)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from missing import need_root

from faceunlock import settings, v4l2
from faceunlock.config import Config, replace
from faceunlock.lockout import Lockout
from faceunlock.model import load_card
from faceunlock.runtime import open_store
from faceunlock.service import doctor, pam_stacks

CLIENT = "/usr/lib/faceunlock/bin/python -I -m faceunlock.service.pam_client"
FACE = f"auth\t[success=2 default=ignore]\tpam_exec.so quiet stdout {CLIENT}\n"
UNIX = (
    "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n"
    "auth\trequisite\tpam_deny.so\nauth\trequired\tpam_permit.so\n"
)


def by_status(findings, check: str, status: str) -> list[str]:
    return [f.message for f in findings if f.check == check and f.status == status]


# ---------------------------------------------------------------------- PAM stacks
@pytest.fixture
def root_owned(tmp_path):
    need_root("these checks judge ownership")
    os.chmod(tmp_path, 0o755)
    return tmp_path


@pytest.fixture
def pam_dir(tmp_path):
    d = tmp_path / "pam.d"
    d.mkdir()
    (d / "common-auth").write_text("# pam-auth-update\n" + FACE + UNIX)
    (d / "sudo").write_text("#%PAM-1.0\nsession required pam_limits.so\n@include common-auth\n")
    (d / "su").write_text("auth sufficient pam_rootok.so\n@include common-auth\n")
    (d / "sshd").write_text("@include common-auth\naccount required pam_nologin.so\n")
    (d / "swaylock").write_text("auth include login\n")
    (d / "login").write_text("auth optional pam_faildelay.so delay=3000000\n@include common-auth\n")
    (d / "other").write_text("auth required pam_deny.so\n")
    return d


def test_face_lines_follow_includes_and_positions(pam_dir):
    lines = {x.service: x for x in pam_stacks.face_lines(pam_dir)}
    assert sorted(lines) == ["login", "sshd", "su", "sudo", "swaylock"]
    assert (lines["sudo"].position, lines["sudo"].password_position, lines["sudo"].via) == (
        0,
        1,
        "common-auth",
    )
    assert (lines["su"].position, lines["su"].password_position) == (1, 2)
    assert (lines["swaylock"].position, lines["swaylock"].via) == (1, "common-auth")
    assert lines["sudo"].program == "/usr/lib/faceunlock/bin/python"
    assert all(not x.problems for x in lines.values())


def test_the_native_module_is_a_face_line(pam_dir):
    """pam-auth-update writes the module's line: it is found, and its file is what doctor checks."""
    (pam_dir / "common-auth").write_text("auth [success=2 default=ignore] pam_faceunlock.so\n" + UNIX)
    lines = {x.service: x for x in pam_stacks.face_lines(pam_dir)}
    assert sorted(lines) == ["login", "sshd", "su", "sudo", "swaylock"]
    assert lines["sudo"].program == f"{pam_stacks.MODULE_DIR}/pam_faceunlock.so"
    assert all(not x.problems for x in lines.values())


@pytest.mark.parametrize(
    "line,problem",
    [
        (FACE.replace("[success=2 default=ignore]", "required"), "fails the login"),
        (FACE.replace("[success=2 default=ignore]", "requisite"), "fails the login"),
        (FACE.replace("[success=2 default=ignore]", "optional"), "password is asked anyway"),
        (FACE.replace("default=ignore", "default=bad"), "without default=ignore"),
        (FACE.replace("success=2", "success=ok"), "does not end or skip"),
    ],
)
def test_dangerous_or_useless_controls(pam_dir, line, problem):
    (pam_dir / "common-auth").write_text(line + UNIX)
    lines = pam_stacks.face_lines(pam_dir)
    assert lines and all(any(problem in p for p in x.problems) for x in lines), lines


def test_face_after_the_password(pam_dir):
    (pam_dir / "common-auth").write_text(UNIX + FACE)
    assert all("after the password" in " ".join(x.problems) for x in pam_stacks.face_lines(pam_dir))
    problems = by_status(doctor.check_pam(pam_dir), "pam", "problem")
    assert len([m for m in problems if "after the password" in m]) == 5
    assert (
        "/usr/lib/faceunlock/bin/python: No such file or directory" in problems
        or Path(CLIENT.split()[0]).exists()
    )


def test_check_pam_reports_services_and_remote_ones(pam_dir):
    findings = doctor.check_pam(pam_dir, ("sudo", "su", "login", "swaylock"))
    good = by_status(findings, "pam", "ok")
    assert len(good) == 1 and "in 5 service(s)" in good[0] and "sudo (line 1 of its auth stack" in good[0]
    notes = by_status(findings, "pam", "info")
    assert any("sshd" in m and "refuses remote" in m for m in notes)
    assert not any("not in [pam] services" in m for m in notes)
    notes = by_status(doctor.check_pam(pam_dir, ("sudo", "login")), "pam", "info")
    assert "su, swaylock include(s) it, but the client refuses them: not in [pam] services" in notes
    (pam_dir / "common-auth").write_text(UNIX)
    assert "in no PAM service" in by_status(doctor.check_pam(pam_dir), "pam", "info")[0]


def test_a_program_others_can_change_is_a_problem(root_owned):
    folder = root_owned / "env"
    folder.mkdir()
    program = folder / "python"
    program.write_text("")
    os.chmod(folder, 0o777)
    assert "group/others" in doctor.untrusted_program(str(program))
    os.chmod(folder, 0o755)
    assert doctor.untrusted_program(str(program)) is None
    os.chown(program, 65534, 65534)
    assert "uid 65534" in doctor.untrusted_program(str(program))


# ---------------------------------------------------------------------- config
def write_config(folder: Path, text: str, mode: int = 0o644) -> Path:
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o755)
    path = folder / "config.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_trusted_valid_config_is_ok(root_owned):
    findings, cfg = doctor.check_config(write_config(root_owned / "etc", "[verify]\ntimeout = 4.0\n"))
    assert [f.status for f in findings] == ["ok"] and cfg.verify.timeout == 4.0


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_config_others_can_write_is_a_problem(root_owned, mode):
    findings, _ = doctor.check_config(write_config(root_owned / "etc", "", mode))
    assert "chmod 644" in findings[0].fix and findings[0].status == "problem"


def test_a_config_owned_by_a_user_or_in_their_folder_is_a_problem(root_owned):
    path = write_config(root_owned / "etc", "")
    os.chown(path, 65534, 65534)
    assert doctor.check_config(path)[0][0].status == "problem"
    os.chown(path, 0, 0)
    os.chmod(path.parent, 0o777)
    findings, _ = doctor.check_config(path)
    assert findings[0].status == "problem" and "could replace the file" in findings[0].message


def test_insecure_and_invalid_configs(root_owned):
    findings, cfg = doctor.check_config(
        write_config(root_owned / "a", 'insecure = true\n[camera]\nsource = "/tmp"\n')
    )
    insecure = by_status(findings, "config", "problem")
    assert cfg.insecure and len(insecure) == 1 and "insecure = true" in insecure[0] and "/tmp" in insecure[0]
    findings, cfg = doctor.check_config(write_config(root_owned / "b", "[verify]\nconsecutive = 1\n"))
    assert cfg is None and "insecure = true" in by_status(findings, "config", "problem")[0]
    findings, cfg = doctor.check_config(write_config(root_owned / "c", "[nope]\n"))
    assert cfg is None and "unknown section" in by_status(findings, "config", "problem")[0]


# ---------------------------------------------------------------------- camera
def frames_folder(tmp_path, frames) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return folder


def video_frames(video_dir, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video_dir / "live-person-a.webm"))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(n)]
    cap.release()
    return frames


def camera_config(source: Path, insecure: bool) -> Config:
    return replace(Config(insecure=insecure), "camera", source=str(source))


def test_camera_from_real_frames(video_dir, tmp_path):
    folder = frames_folder(tmp_path, video_frames(video_dir, 6))
    findings = doctor.check_camera(camera_config(folder, insecure=True), count=6)
    assert findings[0].status == "info" and "not a camera" in findings[0].message
    assert findings[1].status == "ok" and "6 of 6 frames usable, colour" in findings[1].message
    assert doctor.check_camera(camera_config(folder, insecure=False), count=6)[0].status == "problem"


def test_grey_frames_with_dark_emitter_frames(video_dir, tmp_path):
    grey = [
        np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        for f in video_frames(video_dir, 4)
    ]
    black = np.zeros_like(grey[0])
    stats = doctor.analyse_frames([g for f in grey for g in (f, black)], 25.0)
    assert stats == {"frames": 8, "black": 4, "dark": 0, "usable": 4, "grey": True}
    folder = frames_folder(tmp_path, [g for f in grey for g in (f, black)])
    message = doctor.check_camera(camera_config(folder, True), count=8)[1].message
    assert "grey (as infrared frames are)" in message and "4 dark frames" in message


def test_a_covered_camera_is_a_problem(tmp_path):
    folder = frames_folder(tmp_path, [np.full((120, 160, 3), 5, np.uint8)] * 5)
    finding = doctor.check_camera(camera_config(folder, True), count=5)[1]
    assert finding.status == "problem" and "5 of 5 frames are dark" in finding.message


def test_a_missing_camera_device(tmp_path):
    findings = doctor.check_camera(camera_config(Path("/dev/video-faceunlock-missing"), False), count=2)
    assert findings[0].status == "problem" and "cannot be opened" in findings[0].message


def test_v4l2_structures():
    cap = b"uvcvideo".ljust(16, b"\0") + b"Integrated IR Camera".ljust(32, b"\0") + bytes(32)
    cap += struct.pack("<IIII", 0x060000, 0x84A00001, 0x04200001, 0) + bytes(8)
    assert v4l2.parse_capability(cap) == ("uvcvideo", "Integrated IR Camera", True)
    assert v4l2.parse_capability(cap[:84] + struct.pack("<II", 0x84A00001, 0x04200000) + cap[92:])[2] is False
    desc = struct.pack("<III", 0, 1, 0) + b"8-bit Greyscale".ljust(32, b"\0") + b"GREY" + bytes(16)
    assert len(desc) == 64 and v4l2.parse_format(desc) == "GREY"
    assert v4l2.DeviceInfo("uvcvideo", "IR", True, ["GREY", "Y16"]).infrared
    assert not v4l2.DeviceInfo("uvcvideo", "HD", True, ["MJPG", "YUYV"]).infrared


# ---------------------------------------------------------------------- enrolments and lockout
def test_enrolments_and_lockout(tmp_path):
    cfg = replace(Config(), "store", path=str(tmp_path / "store"))
    assert "nobody is enrolled" in doctor.check_enrolments(cfg)[0][0].message
    rng = np.random.default_rng(0)
    store = open_store(cfg)
    store.add("alice", "default", rng.normal(size=(3, 128)).astype(np.float32))
    store.add("bob", "default", rng.normal(size=(3, 128)).astype(np.float32))
    card = load_card()
    foreign = open_store(cfg, card)
    foreign.model_sha256 = "0" * 64
    foreign.clear("bob")
    foreign.add("bob", "default", rng.normal(size=(3, 128)).astype(np.float32))
    settings.write(Path(cfg.store.path) / settings.FILE_NAME, {"pam.sudo": False})
    findings, users = doctor.check_enrolments(cfg)
    assert users == ["alice"], "settings.json beside the templates is not a user"
    assert by_status(findings, "enrolments", "ok") == ["alice: 1 enrolment(s), model fingerprint matches"]
    assert by_status(findings, "enrolments", "problem") == [
        "bob was enrolled with another face model (before an upgrade): face unlock is off for bob "
        "until they enrol again"
    ]
    assert doctor.upgrade_warnings(cfg) == [
        "faceunlock: bob was enrolled with another face model (before an upgrade): face unlock is off for "
        "bob until they enrol again; fix: faceunlock enroll --user bob (as bob, or with sudo); the settings "
        "app's Face page does the same"
    ]
    assert by_status(doctor.check_lockout(cfg, users), "lockout", "ok") == ["no lockout for alice"]
    guard = Lockout(cfg.store.path, cfg.verify)
    for _ in range(cfg.verify.max_failures):
        guard.record("alice", matched=False, now=time.time())
    finding = doctor.check_lockout(cfg, users)[0]
    assert finding.status == "problem" and "locked out" in finding.message and "password-used" in finding.fix


# ---------------------------------------------------------------------- daemon and the command
def test_no_bus_is_a_problem_told_apart_from_no_install(tmp_path):
    from faceunlock.service.install import ACTIVATION, POLICY

    nowhere = "unix:path=/nonexistent/faceunlock-bus"
    finding = doctor.check_daemon(nowhere, root=tmp_path)[0]
    assert finding.status == "problem" and finding.message == "faceunlock is not installed"
    assert "faceunlock install" in finding.fix
    for path in (POLICY, ACTIVATION):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    finding = doctor.check_daemon(nowhere, root=tmp_path)[0]
    assert finding.status == "problem" and "cannot ask the system bus" in finding.message
    assert "system bus is down" in finding.fix


def test_the_command_exits_non_zero_and_speaks_json(pam_dir, tmp_path, video_dir):
    folder = frames_folder(tmp_path, video_frames(video_dir, 3))
    config = tmp_path / "c.toml"
    config.write_text(f'insecure = true\n[camera]\nsource = "{folder}"\n[store]\npath = "{tmp_path}/s"\n')
    cmd = [sys.executable, "-m", "faceunlock", "doctor", "--json", "--config", str(config), "--frames", "3"]
    cmd += ["--pam-dir", str(pam_dir), "--bus-address", "unix:path=/nonexistent/bus"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["ok"] is False and report["problems"] >= 2, proc.stderr
    checks = {f["check"] for f in report["findings"]}
    assert checks == {"config", "daemon", "pam", "camera", "enrolments"}
    text = subprocess.run(cmd[:4] + cmd[5:], capture_output=True, text=True, timeout=120)
    assert text.returncode == 1 and "[!!] daemon" in text.stdout and "fix:" in text.stdout


def test_a_disabled_face_unlock_is_reported(pam_dir, tmp_path, video_dir):
    folder = frames_folder(tmp_path, video_frames(video_dir, 3))
    config = tmp_path / "c.toml"
    base = f'insecure = true\n[camera]\nsource = "{folder}"\n[store]\npath = "{tmp_path}/s"\n'
    where = dict(pam_dir=pam_dir, bus_address="unix:path=/nonexistent/bus", frames=3)
    for enabled in (True, False):
        config.write_text(base + f"[pam]\nenabled = {str(enabled).lower()}\n")
        off = [f for f in doctor.diagnose(config, **where) if "turned off" in f.message]
        assert len(off) == (not enabled)
    assert off[0].check == "pam" and off[0].fix == "sudo faceunlock enable"
