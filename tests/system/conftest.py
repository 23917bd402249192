"""Fixtures of the system tests: the shared sandbox script, container packages, frame folders, a rig.

Every test here is marked ``system``. What they need (root, the shared
``systemd-sandbox/run.sh``, the video data, Debian packages) is checked up front:
missing, a test skips on a developer machine and FAILS under CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from missing import unavailable
from rig import DEB_CACHE, FRAMES, Rig
from sandbox import Sandbox

from faceunlock.testing.service import extract

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
CONTAINER_PACKAGES = ("polkitd", "sudo", "openssh-server", "fprintd")
FRAME_SETS = {
    "enrol-a": ("live-person-a.webm", range(0, 60)),
    "live-a": ("live-person-a.webm", range(60, 214)),
    "replay-a": ("replay-person-a.webm", range(0, 60)),
    "enrol-c": ("live-person-c.mp4", range(0, 60)),
    "live-c": ("live-person-c.mp4", range(200, 260)),
    "few-c": ("live-person-c.mp4", range(300, 312)),
}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.system)


def missing(message: str):
    """Fail under CI, skip elsewhere (tests/missing.py)."""
    unavailable(message)


def data_root() -> Path:
    return Path(os.environ.get("FACEUNLOCK_DATA", ROOT.parent / "shared" / "data"))


def sandbox_script() -> Path:
    """../shared/tools/systemd-sandbox/run.sh beside the repository, or beside $FACEUNLOCK_DATA."""
    candidates = [ROOT.parent / "shared", data_root().parent]
    for shared in candidates:
        path = shared / "tools" / "systemd-sandbox" / "run.sh"
        if path.is_file():
            return path
    missing(f"the shared systemd sandbox is missing (looked in {', '.join(map(str, candidates))})")


@pytest.fixture(scope="session")
def run_sh() -> Path:
    if os.geteuid() != 0:
        missing("the system tests boot a container and need root (CI runs as root)")
    for tool in ("nsenter", "apt-get"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed")
    return sandbox_script()


def download(*targets: str) -> None:
    """Download Debian packages (names or .deb files: their dependencies) and what they need into the
    cache the container installs from; nothing is installed on the host. Fails under CI if it cannot."""
    (DEB_CACHE / "partial").mkdir(parents=True, exist_ok=True)
    cmd = ["apt-get", "install", "-y", "-q", "-d", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"]
    cmd += ["-o", f"Dir::Cache::archives={DEB_CACHE}", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=900)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        missing(f"cannot download {' '.join(targets)} from Debian: {proc.stderr[-2000:]}")


@pytest.fixture(scope="session")
def container_debs(run_sh) -> Path:
    """The Debian packages the containers install offline (sudo, sshd, fprintd, polkitd)."""
    download(*CONTAINER_PACKAGES)
    return DEB_CACHE


@pytest.fixture(scope="session")
def frame_folders() -> Path:
    """Folders of real video frames (see FRAME_SETS), world-readable for the daemon's own user."""
    video = data_root() / "video"
    if not video.is_dir():
        missing(f"test data missing: {video}")
    folder = Path(tempfile.mkdtemp(prefix="faceunlock-frames-"))
    try:
        for name, (source, frames) in FRAME_SETS.items():
            extract(video / source, folder / name, frames, jpeg_quality=95)
        for path in [folder, *folder.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def booted(run_sh: Path, frames: Path):
    """A booted container with the frame folders bound in, the users and the helper scripts."""
    with Sandbox(run_sh, binds_ro=(f"{frames}:{FRAMES}",)) as sb:
        rig = Rig(sb)
        rig.add_users()
        rig.copy_helpers()
        yield rig


def open_up_ancestors(rig: Rig, path: Path) -> None:
    """Inside the container only: the folders above the checkout traversable by all and root's alone.

    `faceunlock install` refuses code that a non-root user could change or that the daemon's user
    could not read; a clone in /root (mode 0700) would be refused. The container's root is a
    copy-on-write view, so this changes nothing on the host."""
    for folder in reversed(path.parents):
        rig.sb.run(["chmod", "go-w,a+x", str(folder)])


def install_faceunlock(rig: Rig) -> None:
    """`faceunlock install` from this checkout's environment, the test config, daemon up, two enrolments."""
    open_up_ancestors(rig, ROOT)
    open_up_ancestors(rig, VENV_BIN)
    rig.sb.run([str(VENV_BIN / "faceunlock"), "install"], timeout=300)
    # polkitd runs on a desktop; started here, logind's first question to it (may the daemon's user
    # call Unlock()?) does not wait for its activation.
    rig.sb.run("systemctl start polkit.service", timeout=60)
    rig.write_config()
    rig.point_camera("live-a")
    start = rig.sb.run("systemctl start faceunlock.service", timeout=120, check=False)
    assert start.returncode == 0, "\n".join(rig.journal()[-30:])
    assert rig.enrol("alice", "enrol-a") == 10
    assert rig.enrol("bob", "enrol-c") == 10


@pytest.fixture(scope="session")
def installed(run_sh, container_debs, frame_folders):
    """One container for the unit, logind and PAM modules: faceunlock installed from this checkout,
    the daemon running, alice and bob enrolled. Each module leaves it as it found it."""
    with booted(run_sh, frame_folders) as rig:
        rig.install_packages(*CONTAINER_PACKAGES)
        install_faceunlock(rig)
        yield rig
