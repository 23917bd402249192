"""The PAM hook, end to end: pamtester → libpam → pam_exec.so → faceunlock-pam → the daemon.

A test service file in /etc/pam.d/ runs the real client through pam_exec.so,
then pam_deny: pamtester succeeds only when the client exits 0 (a match).
pam_exec passes no D-Bus address through, so the file gives the client the
test bus with --bus-address, as an administrator's PAM line could.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_harness import VENV_BIN, Bus, need, need_root

from faceunlock.service import pam_client

PAM_DIR = Path("/etc/pam.d")
CLIENT_TIMEOUT_S = 20


def pam_file(name: str, address: str) -> Path:
    path = PAM_DIR / name
    path.write_text(
        f"auth [success=done default=ignore] pam_exec.so quiet {VENV_BIN / 'faceunlock-pam'} "
        f"--bus-address {address} --timeout {CLIENT_TIMEOUT_S}\n"
        "auth requisite pam_deny.so\n"
        "account required pam_permit.so\n"
    )
    return path


@pytest.fixture
def pam_service(service):
    """/etc/pam.d/faceunlock-test pointing at the test bus; removed afterwards."""
    need_root()
    need("pamtester")
    path = pam_file("faceunlock-test", service.bus.address)
    try:
        yield path.name
    finally:
        path.unlink(missing_ok=True)


def pamtester(service_name: str, user: str, *items: str) -> tuple[int, float, str]:
    args = ["pamtester", "-v"]
    for item in items:
        args += ["-I", item]
    started = time.monotonic()
    proc = subprocess.run(
        [*args, service_name, user, "authenticate"], capture_output=True, text=True, timeout=90
    )
    return proc.returncode, time.monotonic() - started, proc.stdout + proc.stderr


def test_enrolled_face_authenticates(pam_service, service):
    service.point_camera("live-a")
    code, _, out = pamtester(pam_service, "alice")
    assert code == 0, out + service.log_text()
    assert "service=dbus decision=match" in service.last_attempt("alice")


def test_another_person_falls_through(pam_service, service):
    service.point_camera("live-a")
    code, _, out = pamtester(pam_service, "bob")
    assert code != 0, out
    assert "decision=no-match" in service.last_attempt("bob")


def test_remote_host_is_refused_without_a_scan(pam_service, service):
    service.point_camera("live-a")
    before = service.last_attempt("alice")
    code, elapsed, out = pamtester(pam_service, "alice", "rhost=10.1.2.3")
    assert code != 0, out
    assert service.last_attempt("alice") == before
    assert elapsed < 1.0


def test_daemon_down_falls_through_within_a_second(tmp_path):
    """A bus without the daemon (and a bus that is not there at all): out in under 1 s."""
    need_root()
    need("pamtester")
    os.chmod(tmp_path, 0o755)
    with Bus(tmp_path) as bare:
        paths = [
            pam_file("faceunlock-test-down", bare.address),
            pam_file("faceunlock-test-nobus", "unix:path=/no"),
        ]
        try:
            for path in paths:
                code, elapsed, out = pamtester(path.name, "alice")
                assert code != 0, out
                assert elapsed < 1.0, f"{path.name}: {elapsed:.2f} s"
        finally:
            for path in paths:
                path.unlink(missing_ok=True)


@pytest.mark.parametrize(
    "env,refused",
    [
        ({"PAM_USER": "alice"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": "localhost"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": "127.0.0.1", "PAM_TTY": ":0"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": "10.1.2.3"}, True),
        ({"PAM_USER": "alice", "PAM_RHOST": "example.org"}, True),
        ({"PAM_USER": "alice", "PAM_SERVICE": "sshd"}, True),
        ({"PAM_USER": "alice", "SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"}, True),
        ({"PAM_USER": "alice", "SSH_CLIENT": "10.0.0.2 50000 22"}, True),
        ({"PAM_USER": "alice", "PAM_TTY": "ssh"}, True),
        ({"PAM_USER": ""}, True),
        ({"PAM_USER": "alice", "PAM_TYPE": "account"}, True),
    ],
)
def test_remote_and_ssh_logins_are_refused(env, refused):
    assert (pam_client.refusal(env) is not None) == refused


def test_client_imports_no_heavy_modules():
    """The client runs its whole path (here: no daemon) without torch, numpy or OpenCV."""
    code = (
        "import sys; from faceunlock.service import pam_client as c; "
        "rc = c.main(['--bus-address', 'unix:path=/nonexistent']); "
        "print(rc, sorted(m for m in ('torch', 'numpy', 'cv2', 'pydbus') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env={"PAM_USER": "alice"}, capture_output=True, text=True, timeout=30
    )
    assert proc.stdout.strip() == "3 []", proc.stdout + proc.stderr
