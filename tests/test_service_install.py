"""install/uninstall into a staging root, and the systemd unit linted by systemd-analyze."""

import os
import re
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from service_harness import ROOT, VENV_BIN, need

from faceunlock.service import install

INSTALLED = {
    install.UNIT: 0o644,
    install.POLICY: 0o644,
    install.ACTIVATION: 0o644,
    install.PAM_PROFILE: 0o644,
    install.SYSUSERS: 0o644,
    install.POLKIT: 0o644,
    install.POLKIT_ACTIONS: 0o644,
    install.DESKTOP: 0o644,
    **{rel: 0o644 for rel in (*install.MANUALS, *install.COMPLETIONS)},
}
PYTHON = Path(sys.executable).absolute()
SCRIPT_PYTHON = (VENV_BIN / "faceunlock").read_text().splitlines()[0][2:].strip()
"""The interpreter that `faceunlock install` (run through its console script) writes into the files."""


def faceunlock(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(VENV_BIN / "faceunlock"), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def staged(tmp_path):
    faceunlock("install", "--root", str(tmp_path))
    return tmp_path


def test_install_puts_files_in_place_with_modes(staged):
    for rel, wanted in INSTALLED.items():
        assert mode(staged / rel) == wanted, rel
    assert mode(staged / install.STATE) == 0o700
    unit = (staged / install.UNIT).read_text()
    assert f"ExecStart={SCRIPT_PYTHON} -I -m faceunlock daemon\n" in unit
    profile = (staged / install.PAM_PROFILE).read_text()
    assert "[success=end default=ignore]\tpam_faceunlock.so" in profile
    assert "Account:\n\toptional\tpam_faceunlock.so" in profile
    module = staged / install.PAM_MODULE
    assert mode(module) == 0o644 and module.read_bytes() == (ROOT / "pam" / "pam_faceunlock.so").read_bytes()
    policy = ET.parse(staged / install.POLICY).getroot()
    assert policy.tag == "busconfig"
    assert "SystemdService=faceunlock.service" in (staged / install.ACTIVATION).read_text()


def test_unit_passes_systemd_analyze(staged):
    analyze = need("systemd-analyze")
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(staged / install.UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stderr == "" and proc.returncode == 0, proc.stderr


def test_unit_has_the_hardening(staged):
    unit = (staged / install.UNIT).read_text().splitlines()
    for line in (
        "Type=dbus",
        "BusName=org.faceunlock.FaceUnlock1",
        "ProtectSystem=strict",
        "ProtectHome=true",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "StateDirectory=faceunlock",
        "StateDirectoryMode=0700",
        "RestrictAddressFamilies=AF_UNIX",
        "DevicePolicy=closed",
        "DeviceAllow=char-video4linux rw",
        "Restart=on-failure",
        "User=faceunlock",
        "SupplementaryGroups=video",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "MemoryDenyWriteExecute=true",
        "WatchdogSec=30",
        "NotifyAccess=main",
    ):
        assert line in unit, line


def test_unit_exposure_score(staged):
    """systemd-analyze security rates the installed unit (offline): 5.1 MEDIUM before this hardening,
    0.8 with it, 0.6 with MemoryDenyWriteExecute (possible since the daemon runs no torch).
    Fails if a change weakens it past 1.5."""
    analyze = need("systemd-analyze")
    proc = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(staged / install.UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    score = re.search(r"Overall exposure level for faceunlock.service: ([0-9.]+)", proc.stdout)
    assert score, proc.stdout + proc.stderr
    assert float(score.group(1)) <= 1.5, proc.stdout


def test_uninstall_keeps_templates_unless_purged(staged):
    template = staged / install.STATE / "alice.json"
    template.write_text("{}")
    faceunlock("uninstall", "--root", str(staged))
    for rel in INSTALLED:
        assert not (staged / rel).exists(), rel
    assert template.exists()
    faceunlock("install", "--root", str(staged))
    assert template.exists()
    out = faceunlock("uninstall", "--root", str(staged), "--purge").stdout
    assert not (staged / install.STATE).exists() and "purged" in out


def test_shipped_unit_points_at_the_packaged_path():
    unit = (ROOT / "systemd" / "faceunlock.service").read_text()
    assert "ExecStart=/usr/lib/faceunlock/bin/python -I -m faceunlock daemon" in unit
    assert install.render(install.UNIT, unit, PYTHON) != unit
    profile = (ROOT / "pam" / "pam-configs" / "faceunlock").read_text()
    assert "python" not in profile, "no interpreter in any PAM stack: the native module"


@pytest.mark.parametrize("weakness", ["user-owned", "group-writable", "world-writable"])
def test_install_refuses_code_a_user_could_change(tmp_path, weakness):
    """An environment in a folder that someone but root could change would put that person's code
    into every PAM stack and the root daemon: refused, naming the folder, and nothing is written."""
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)
    os.chmod(tmp_path, 0o755)
    if weakness == "user-owned":
        os.chown(env, 65534, 65534)
    else:
        os.chmod(env, 0o775 if weakness == "group-writable" else 0o757)
    with pytest.raises(install.UserError, match=f"refusing to install: {env}"):
        install.check_environment(env / "bin" / "python")


def test_install_accepts_this_root_owned_environment():
    install.check_environment(PYTHON)


@pytest.fixture
def open_tmp():
    """A root-owned folder that others may enter, in a root-owned chain (pytest's own is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="faceunlock-install-", dir="/var/tmp"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def root_owned_env(folder: Path) -> Path:
    env = folder / "env"
    (env / "bin").mkdir(parents=True)
    return env


def test_install_refuses_an_interpreter_whose_real_path_a_user_could_change(open_tmp):
    """env/bin/python is root's link, but it points into a folder a user owns: they could swap the
    interpreter every PAM stack runs."""
    env = root_owned_env(open_tmp)
    theirs = open_tmp / "theirs"
    theirs.mkdir()
    (theirs / "python3").write_bytes(b"")
    os.chown(theirs, 65534, 65534)
    (env / "bin" / "python").symlink_to(theirs / "python3")
    with pytest.raises(install.UserError, match=f"refusing to install: {theirs} is owned by uid 65534"):
        install.check_environment(env / "bin" / "python")


def test_install_refuses_a_link_through_a_folder_a_user_could_change(open_tmp):
    """env/bin/python links to theirs/python3, which links on to the real interpreter: the real path
    is root's, but whoever owns theirs/ can point the link at anything."""
    env = root_owned_env(open_tmp)
    theirs = open_tmp / "theirs"
    theirs.mkdir()
    (theirs / "python3").symlink_to(os.path.realpath(sys.executable))
    os.chown(theirs, 65534, 65534)
    (env / "bin" / "python").symlink_to(theirs / "python3")
    with pytest.raises(install.UserError, match=f"refusing to install: {theirs} is owned by uid 65534"):
        install.check_environment(env / "bin" / "python")


def test_install_refuses_an_interpreter_in_a_linked_folder_a_user_could_change(open_tmp):
    """env/bin is root's link to theirs/bin: the interpreter itself is no link, but its real path
    is in a folder a user owns."""
    env = open_tmp / "env"
    env.mkdir()
    theirs = open_tmp / "theirs"
    (theirs / "bin").mkdir(parents=True)
    (theirs / "bin" / "python").write_bytes(b"")
    os.chown(theirs / "bin", 65534, 65534)
    (env / "bin").symlink_to(theirs / "bin")
    with pytest.raises(
        install.UserError, match=f"refusing to install: {theirs / 'bin'} is owned by uid 65534"
    ):
        install.check_environment(env / "bin" / "python")


def test_install_refuses_a_file_deep_in_the_import_path_a_user_could_change(open_tmp, monkeypatch):
    """Every file of every folder the interpreter imports from is walked: one module a user may
    rewrite, deep in a root-owned site folder, is root code in every PAM stack."""
    site_dir = root_owned_env(open_tmp) / "lib" / "site-packages"
    module = site_dir / "somepkg" / "sub" / "mod.py"
    module.parent.mkdir(parents=True)
    module.write_text("")
    os.chown(module, 65534, 65534)
    monkeypatch.setattr(install, "import_path", lambda python: [site_dir])
    with pytest.raises(install.UserError, match=f"refusing to install: {module} is owned by uid 65534"):
        install.check_environment(PYTHON)
    os.chown(module, 0, 0)
    os.chmod(module, 0o666)
    with pytest.raises(install.UserError, match=f"{module} is writable by group or others"):
        install.check_environment(PYTHON)


def test_the_import_path_holds_every_site_folder_that_isolated_mode_reads(open_tmp, monkeypatch):
    """`python -I` still runs the .pth files of dist-packages folders (/usr/local/lib/python3.X/
    dist-packages, /usr/lib/python3/dist-packages), not only of folders named site-packages. A
    .pth file a user could write there runs as root inside the PAM client."""
    path = install.import_path(PYTHON)
    for folder in site.getsitepackages():
        assert Path(folder) in path, folder
    assert any(str(p).endswith("dist-packages") for p in path), "Debian's python reads dist-packages"
    dist = root_owned_env(open_tmp) / "dist-packages"
    dist.mkdir()
    planted = dist / "zz-planted.pth"
    planted.write_text("import os; os.system('id > /tmp/owned')\n")
    os.chown(planted, 65534, 65534)
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(dist)])
    with pytest.raises(install.UserError, match=f"refusing to install: {planted} is owned by uid 65534"):
        install.check_environment(PYTHON)


def test_a_missing_folder_of_the_import_path_is_checked_through_its_parents(open_tmp, monkeypatch):
    """/usr/lib/python311.zip does not exist; whoever may create it could plant code. A missing
    folder in a folder a user owns is refused."""
    theirs = root_owned_env(open_tmp) / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    monkeypatch.setattr(install, "import_path", lambda python: [theirs / "python311.zip"])
    with pytest.raises(install.UserError, match=f"refusing to install: {theirs} is owned by uid 65534"):
        install.check_environment(PYTHON)
