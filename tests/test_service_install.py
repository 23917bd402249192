"""install/uninstall into a staging root, and the systemd unit linted by systemd-analyze."""

import stat
import subprocess
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
}


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
    assert f"ExecStart={VENV_BIN / 'faceunlock'} daemon\n" in unit
    profile = (staged / install.PAM_PROFILE).read_text()
    assert f"[success=end default=ignore]\tpam_exec.so quiet stdout {VENV_BIN / 'faceunlock-pam'}" in profile
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
        "RestrictAddressFamilies=AF_UNIX AF_NETLINK",
        "DevicePolicy=closed",
        "DeviceAllow=char-video4linux rw",
        "Restart=on-failure",
    ):
        assert line in unit, line


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
    assert "ExecStart=/usr/bin/faceunlock daemon" in unit
    assert install.render(install.UNIT, unit, VENV_BIN) != unit
