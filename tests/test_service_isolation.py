"""Code planted by a user never runs inside the root processes: the daemon and the PAM client.

The shared daemon was started with PYTHONPATH pointing at a folder with a
sitecustomize.py (which writes a marker file when imported) and with
GI_TYPELIB_PATH / GIO_EXTRA_MODULES pointing at garbage typelibs
(service_harness.planted_code). It runs as the unit runs it, `python -I -m
faceunlock daemon`. The same environment is given to the PAM client below.
"""

import subprocess
import sys

from service_harness import PLANTED_MARKER, VENV_BIN, planted_code


def client(service, *flags: str, command: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {"PAM_USER": "alice", "PAM_SERVICE": "sudo", **planted_code(service.folder)}
    cmd = command or [sys.executable, *flags, "-m", "faceunlock.service.pam_client"]
    cmd += ["--bus-address", service.bus.address, "--timeout", "20"]
    with service.in_session("c1"):
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)


def test_daemon_ignored_the_planted_code(service):
    marker = service.folder / PLANTED_MARKER
    assert service.daemon.poll() is None and service.proxy().State in ("idle", "verifying")
    assert not marker.exists(), "the daemon ran a sitecustomize.py from PYTHONPATH"


def test_pam_client_ignores_the_planted_code(service):
    """Run as PAM runs it (-I), the client matches the enrolled face as if the variables were not there."""
    marker = service.folder / PLANTED_MARKER
    service.point_camera("live-a")
    proc = client(service, "-I")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


def test_the_faceunlock_pam_command_ignores_the_planted_code(service):
    """The environment's faceunlock-pam command (a console script would have imported faceunlock
    under the caller's PYTHONPATH before any check) runs the client isolated too."""
    marker = service.folder / PLANTED_MARKER
    service.point_camera("live-a")
    proc = client(service, command=[str(VENV_BIN / "faceunlock-pam")])
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


def test_without_isolation_the_planted_code_would_run(service):
    """The control: the same client without -I runs the planted sitecustomize.py. This is what the
    PAM line's -I prevents, and what makes the test above able to fail."""
    marker = service.folder / PLANTED_MARKER
    try:
        client(service)
        assert marker.exists()
    finally:
        marker.unlink(missing_ok=True)
