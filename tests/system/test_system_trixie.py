"""The package for Debian 13 (trixie: Python 3.13, systemd 257), built in a booted trixie container
(`build-deb.sh --release trixie`) and installed in another one, with apt reaching the Debian mirror
(run.sh --host-network): no camera, the daemon runs and answers "no camera" at once; enrolment and
verification from real video frames; the settings app and its polkit actions installed; `apt purge`
leaves none of the package's files, templates or environment behind.

The bookworm package is tested in test_system_deb.py (offline container, the machine's own root).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPT = r"""
set -u
export DEBIAN_FRONTEND=noninteractive
say() { echo "RESULT $1=$2"; }
say python "$(python3 -c 'import sys; print(sys.version_info[0], sys.version_info[1], sep=".")')"
apt-get -qq update
apt-get -y -q install --no-install-recommends /deb/faceunlock_*.deb > /tmp/apt.log 2>&1
say install $?
for i in $(seq 1 60); do [ "$(systemctl is-active faceunlock.service)" = active ] && break; sleep 1; done
say active "$(systemctl is-active faceunlock.service)"
say restarts "$(systemctl show -p NRestarts --value faceunlock.service)"
useradd -m alice
faceunlock enroll --user alice --source /frames/enrol-a --frames 10 > /tmp/enrol.log 2>&1
say enrol $?
say answer "$(busctl call org.faceunlock.FaceUnlock1 /org/faceunlock/FaceUnlock1 \
  org.faceunlock.FaceUnlock1 Verify su alice 2000 2>&1 | head -c 300 | tr '\n' ' ')"
faceunlock verify --user alice --source /frames/live-a > /tmp/verify.log 2>&1
say verify $?
faceunlock verify --user alice --source /frames/enrol-c > /tmp/other.log 2>&1
say other $?
for f in /usr/bin/faceunlock-settings /usr/share/polkit-1/actions/org.faceunlock.policy \
  /usr/share/applications/org.faceunlock.Settings.desktop /usr/share/man/man1/faceunlock-settings.1.gz
do
  [ -e "$f" ] && say has "$f"
done
dpkg -L faceunlock | while read -r f; do [ -d "$f" ] || echo "$f"; done > /tmp/files
say files "$(wc -l < /tmp/files)"
apt-get -y -q purge faceunlock > /tmp/purge.log 2>&1
say purge $?
while read -r f; do if [ -e "$f" ] || [ -L "$f" ]; then say left "$f"; fi; done < /tmp/files
for d in /usr/lib/faceunlock /var/lib/faceunlock /etc/faceunlock; do [ -e "$d" ] && say remains "$d"; done
tail -n 5 /tmp/apt.log /tmp/enrol.log /tmp/verify.log /tmp/other.log /tmp/purge.log
journalctl -u faceunlock.service --no-pager | tail -5
"""


@pytest.fixture(scope="module")
def trixie(run_sh, frame_folders):
    out = Path(tempfile.mkdtemp(prefix="faceunlock-trixie-"))
    build = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-deb.sh"), "--release", "trixie", "--compress", "zstd"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    deb = next(out.glob("faceunlock_*.deb"))
    script = out / "check.sh"
    script.write_text(SCRIPT)
    cmd = [str(run_sh), "--rootfs", "debian:trixie", "--host-network", "--timeout", "900"]
    cmd += [
        "--bind-ro",
        f"{out}:/deb",
        "--bind-ro",
        f"{frame_folders}:/frames",
        "--",
        "bash",
        "/deb/check.sh",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    results: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            key, _, value = line[7:].partition("=")
            results.setdefault(key, []).append(value)
    yield deb, results, proc.stdout + proc.stderr
    subprocess.run(["rm", "-rf", str(out)], check=False)


def one(results, key):
    return results.get(key, ["<none>"])[0]


def test_the_trixie_package_is_built_for_trixie(trixie):
    deb, _results, _log = trixie
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True).stdout
    assert "python3 (>= 3.13), python3 (<< 3.14)" in depends, depends
    size = deb.stat().st_size
    print(f"{deb.name} for trixie: {size} bytes")


def test_it_installs_runs_without_a_camera_enrols_verifies_and_purges(trixie):
    _deb, results, log = trixie
    assert one(results, "python") == "3.13", log[-4000:]
    assert one(results, "install") == "0", log[-4000:]
    assert one(results, "active") == "active" and one(results, "restarts") == "0", log[-4000:]
    assert '"error"' in one(results, "answer") and "no camera" in one(results, "answer"), log[-4000:]
    assert one(results, "enrol") == "0" and one(results, "verify") == "0", log[-4000:]
    assert one(results, "other") == "1", "another person is not recognised:\n" + log[-4000:]
    assert len(results.get("has", [])) == 4, results.get("has")
    assert int(one(results, "files")) > 100
    assert one(results, "purge") == "0" and "left" not in results, results.get("left")
    assert "remains" not in results, results["remains"]
