"""The PAM hook, end to end: pamtester → libpam → pam_exec.so → the PAM client → the daemon.

A test service file in /etc/pam.d/ runs the real client through pam_exec.so,
exactly as `faceunlock install` writes it (`python -I -m ...`), then pam_deny:
pamtester succeeds only when the client exits 0 (a match). pam_exec passes no
D-Bus address through, so the file gives the client the test bus with
--bus-address and the test config with --config, as an administrator's PAM
line could. The client asks the logind stand-in which session pamtester runs
in: tests place this test process (pamtester's parent) in a session first.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_harness import Bus, need, need_root, wait_for

from faceunlock.service import pam_client
from faceunlock.service.install import pam_command

PAM_DIR = Path("/etc/pam.d")
CLIENT_TIMEOUT_S = 20
NO_HANG_S = 10.0
"""A refusal or a missing daemon must not wait for the scan's deadline (CLIENT_TIMEOUT_S, and the
client's own alarm after it). This bound only tells a fall-through from a hang, whatever the load:
how fast the password prompt comes is measured by benchmarks/service_latency.py
(pam.pamtester_no_daemon_ms)."""


def pam_file(name: str, address: str, config: Path) -> Path:
    """A PAM service running the client; its messages go to client_log(config)."""
    path = PAM_DIR / name
    path.write_text(
        f"auth [success=done default=ignore] pam_exec.so quiet log={client_log(config)} "
        f"{pam_command(Path(sys.executable))} "
        f"--bus-address {address} --config {config} --timeout {CLIENT_TIMEOUT_S}\n"
        "auth requisite pam_deny.so\n"
        "account required pam_permit.so\n"
    )
    return path


def client_log(config: Path) -> Path:
    return config.parent / "pam-client.log"


def pamtester_logged(service_name: str, user: str, config: Path, *items: str) -> tuple[int, float, str]:
    """pamtester, and what the client wrote (pam_exec's log= file) during this call."""
    log = client_log(config)
    start = log.stat().st_size if log.exists() else 0
    code, elapsed, out = pamtester(service_name, user, *items)
    text = log.read_bytes()[start:].decode(errors="replace") if log.exists() else ""
    return code, elapsed, out + text


@pytest.fixture
def pam_service(service):
    """/etc/pam.d/faceunlock-test pointing at the test bus; removed afterwards."""
    need_root()
    need("pamtester")
    path = pam_file("faceunlock-test", service.bus.address, service.config)
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
    with service.in_session("c1"):
        code, _, out = pamtester(pam_service, "alice")
    assert code == 0, out + service.log_text()
    assert "service=dbus decision=match" in service.last_attempt("alice")


def test_another_person_falls_through(pam_service, service):
    """bob, at his own seat, with person A in view: scanned, judged, no match."""
    service.point_camera("live-a")
    with service.in_session("c2"):
        code, _, out = pamtester(pam_service, "bob")
    assert code != 0, out
    assert "decision=no-match" in service.last_attempt("bob")


@pytest.mark.parametrize("rhost", ["10.1.2.3", "::ffff:10.0.0.5", "127.evil.example", ":0evil"])
def test_remote_host_is_refused_without_a_scan(pam_service, service, rhost):
    service.point_camera("live-a")
    before = service.done_scans("alice")
    with service.in_session("c1"):
        code, elapsed, out = pamtester_logged(pam_service, "alice", service.config, f"rhost={rhost}")
    assert code != 0 and f"remote login from {rhost!r}" in out, out
    assert service.done_scans("alice") == before
    assert elapsed < NO_HANG_S


def test_su_from_a_remote_session_falls_through_without_a_scan(pam_service, service):
    """`su alice` typed in an SSH login: no PAM_RHOST, a pts terminal, but logind says the session
    (c3: no seat, Remote=yes) is remote. The enrolled face is in view; nothing is scanned."""
    service.point_camera("live-a")
    before = service.done_scans("alice")
    with service.in_session("c3"):
        code, elapsed, out = pamtester_logged(
            pam_service, "alice", service.config, "tty=/dev/pts/3", "ruser=alice"
        )
    assert code != 0, out
    assert "remote session" in out
    assert service.done_scans("alice") == before
    assert elapsed < NO_HANG_S


def test_su_to_another_user_falls_through_without_a_scan(pam_service, service):
    """`su bob` typed by alice in her local session, with bob's face in view: refused, never scanned."""
    service.point_camera("photos-b")
    before = service.done_scans("bob")
    with service.in_session("c1"):
        code, _, out = pamtester_logged(pam_service, "bob", service.config, "ruser=alice", "tty=/dev/pts/1")
        code_no_ruser, _, out_no_ruser = pamtester_logged(
            pam_service, "bob", service.config, "tty=/dev/pts/1"
        )
    assert code != 0 and "alice may not authenticate as bob" in out, out
    assert code_no_ruser != 0 and "session c1 of alice, not from a session of bob" in out_no_ruser, (
        out_no_ruser
    )
    assert service.done_scans("bob") == before


def test_the_display_manager_for_a_user_not_at_the_seat_falls_through(pam_service, service):
    """The display manager's own unit asks for carol, who has no session at any seat: refused
    before any scan."""
    with service.in_unit("gdm.service", display_manager="gdm.service"):
        code, _, out = pamtester_logged(pam_service, "carol", service.config)
    assert code != 0 and "no greeter or session of carol is in front" in out, out
    assert "not-enrolled" not in out


def test_the_display_manager_for_the_user_at_the_seat_may_scan(pam_service, service):
    """The same, for alice, whose own session is the active one at seat0: how GDM's PAM worker
    re-authenticates at the lock screen. Allowed, and her face matches."""
    service.point_camera("live-a")
    with service.in_unit("gdm.service", display_manager="gdm.service"):
        code, _, out = pamtester_logged(pam_service, "alice", service.config)
    assert code == 0, out


@pytest.mark.parametrize("unit", ["cron.service", "atd.service", "run-u7.service", ""])
def test_a_job_with_no_session_falls_through_while_the_user_sits_at_the_desk(pam_service, service, unit):
    """A cron or at job, or a transient system service, of alice's or anyone's: no logind session.
    alice sits at her seat (session c1, active) with her face in view; nothing is scanned. The old
    rule passed any such process because *some* local session of alice was active."""
    service.point_camera("live-a")
    before = service.done_scans("alice")
    with service.in_unit(unit, display_manager="gdm.service"):
        code, _, out = pamtester_logged(pam_service, "alice", service.config, "ruser=alice")
    assert code != 0, out
    assert f"outside any login session ({unit or 'no unit'})" in out, out
    assert service.done_scans("alice") == before


def test_a_user_service_falls_through_unless_opted_in(pam_service, service):
    """systemd-run --user from an SSH login: a process of alice's own systemd, no session."""
    service.point_camera("live-a")
    before = service.done_scans("alice")
    service.standin().MapPidUser(os.getpid(), 1000)
    try:
        code, _, out = pamtester_logged(pam_service, "alice", service.config)
    finally:
        service.standin().MapPidUser(os.getpid(), 0)
    assert code != 0 and "own systemd services" in out, out
    assert service.done_scans("alice") == before


def test_daemon_down_falls_through_without_waiting(tmp_path, service):
    """A bus without the daemon (and a bus that is not there at all): out at once, not at the deadline."""
    need_root()
    need("pamtester")
    os.chmod(tmp_path, 0o755)
    config = service.config
    with Bus(tmp_path) as bare:
        paths = [
            pam_file("faceunlock-test-down", bare.address, config),
            pam_file("faceunlock-test-nobus", "unix:path=/no", config),
        ]
        try:
            for path in paths:
                code, elapsed, out = pamtester(path.name, "alice")
                assert code != 0, out
                assert elapsed < NO_HANG_S, f"{path.name}: {elapsed:.2f} s"
        finally:
            for path in paths:
                path.unlink(missing_ok=True)


@pytest.mark.parametrize(
    "env,refused",
    [
        ({"PAM_USER": "alice"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": "localhost"}, True),
        ({"PAM_USER": "alice", "PAM_RHOST": "127.0.0.1", "PAM_TTY": ":0"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": "::1"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": "::ffff:127.0.0.1"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": ":0"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": ":1.0"}, False),
        ({"PAM_USER": "alice", "PAM_RHOST": "::ffff:10.0.0.5"}, True),
        ({"PAM_USER": "alice", "PAM_RHOST": "127.evil.example"}, True),
        ({"PAM_USER": "alice", "PAM_RHOST": ":0evil"}, True),
        ({"PAM_USER": "alice", "PAM_RHOST": "localhost.evil.example"}, True),
        ({"PAM_USER": "alice", "PAM_RHOST": " 127.0.0.1"}, True),
        ({"PAM_USER": "alice", "PAM_RHOST": "10.1.2.3"}, True),
        ({"PAM_USER": "alice", "PAM_RHOST": "example.org"}, True),
        ({"PAM_USER": "alice", "PAM_SERVICE": "sshd"}, True),
        ({"PAM_USER": "alice", "PAM_SERVICE": "ssh"}, True),
        ({"PAM_USER": "alice", "SSH_TTY": "/dev/pts/4"}, True),
        ({"PAM_USER": "alice", "SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"}, True),
        ({"PAM_USER": "alice", "SSH_CLIENT": "10.0.0.2 50000 22"}, True),
        ({"PAM_USER": "alice", "PAM_TTY": "ssh"}, True),
        ({"PAM_USER": ""}, True),
        ({"PAM_USER": "alice", "PAM_TYPE": "account"}, True),
    ],
)
def test_remote_and_ssh_logins_are_refused(env, refused):
    assert (pam_client.refusal(env) is not None) == refused


@pytest.mark.parametrize(
    "service,refused", [("sudo", False), ("gdm-password", False), ("cockpit", True), ("", True)]
)
def test_only_allowed_services(service, refused):
    from faceunlock.config import PAM_SERVICES

    env = {"PAM_USER": "alice", "PAM_SERVICE": service}
    assert (pam_client.refusal(env, PAM_SERVICES) is not None) == refused


def test_client_imports_no_heavy_modules(tmp_path):
    """The client runs its whole path (here: no daemon) without torch, numpy or OpenCV."""
    config = tmp_path / "config.toml"
    config.write_text("")
    code = (
        "import sys; from faceunlock.service import pam_client as c; "
        f"rc = c.main(['--bus-address', 'unix:path=/nonexistent', '--config', '{config}']); "
        "print(rc, sorted(m for m in ('torch', 'numpy', 'cv2', 'pydbus') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PAM_USER": "alice", "PAM_SERVICE": "sudo"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.strip() == "3 []", proc.stdout + proc.stderr


def test_the_requester_is_the_applications_real_uid_not_pam_ruser():
    """polkit-agent-helper-1 is set-uid root and sets PAM_RUSER to the user it authenticates; its
    real uid is whoever's agent started it. A non-root real uid is the requester; PAM_RUSER counts
    only for a root application (sudo and su set it to their caller)."""
    need_root()
    need("setpriv")
    child = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "30"])
    try:
        assert wait_for(lambda: pam_client.real_uid(child.pid) == 65534, 5)
        env = {"PAM_USER": "bob", "PAM_RUSER": "bob"}
        assert pam_client.requester(env, child.pid) == ("nobody", 65534)
        assert pam_client.requester(env, os.getpid()) == ("bob", pam_client.uid_of("bob"))
        assert pam_client.requester({"PAM_USER": "bob"}, os.getpid()) is None
    finally:
        child.kill()
        child.wait()
