"""The Debian package, for each supported release: scripts/build-deb.sh --release R, `apt install
./faceunlock_*.deb` in a booted container of R, a locked logind session unlocked from a live video
by the packaged daemon, the packaged PAM line, an upgrade from the last landed build that keeps its
enrolments, an upgrade that names who must enrol again, and `apt purge`, which leaves the system
as it found it (but for the system user, which Debian keeps).

bookworm (Debian 12, this machine's release): the container is a copy-on-write view of this
machine's root, offline, with packages from the host-side download cache. trixie (Debian 13:
Python 3.13, systemd 257): the package is built inside a booted trixie container, and tested in a
clean trixie root (debootstrap, cached) whose apt reaches the mirror (run.sh --host-network).

The package is built as it ships (xz) and must be lintian clean on its own release (build-deb.sh
--lintian runs that release's lintian, with packaging/debian/lintian-overrides): a lintian error or
warning fails the build, and every test of that release with it.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, data_root, download
from rig import FRAMES, GRACE_S, Rig, config_text
from sandbox import Sandbox
from test_system_uninstall import changes

DEB_DIR = "/srv/faceunlock-deb"
VIDEO_DIR = "/srv/faceunlock-video"
PREVIOUS_DIR = "/srv/faceunlock-previous"


RELEASES = ("bookworm", "trixie")
ONLINE_PACKAGES = ("pamtester", "sudo")
"""What the tests use in a clean root besides the package's own dependencies (the host's root has them);
installed with those before the snapshot that apt purge is compared with."""


@pytest.fixture(scope="module", params=RELEASES)
def release(request) -> str:
    return request.param


def online(release: str) -> bool:
    """Whether this release's container is a clean root that installs from the mirror."""
    return release != "bookworm"


@pytest.fixture(scope="module")
def deb(run_sh, container_debs, release):
    """The package built for the release from this checkout; for the offline bookworm container, its
    dependencies downloaded."""
    out = Path(tempfile.mkdtemp(prefix=f"faceunlock-deb-{release}-"))
    package = build(release, out, ROOT, "--lintian")
    if not online(release):
        download(str(package))
    yield package
    subprocess.run(["rm", "-rf", str(out)], check=False)


PREVIOUS = "56ff275"
"""The last build that landed (stop 31: liveness networks fitted to other exposure, measured, not
shipped; version 0.1.0+git<commit time>): what an upgrade starts from."""


def build(release: str, out: Path, checkout: Path = ROOT, *args: str, env: dict | None = None) -> Path:
    """scripts/build-deb.sh of a checkout, for the release, into out: the package built."""
    os.chmod(out, 0o755)
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(checkout / "scripts" / "build-deb.sh"), "--release", release, *args, "--out", str(out)],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=2400,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    package = next(out.glob("faceunlock_*.deb"))
    print(f"built {package.name} for {release} in {time.monotonic() - started:.0f} s: {done.stdout.strip()}")
    return package


@pytest.fixture(scope="module")
def previous_deb(run_sh, container_debs, release):
    """The package of the last landed build (PREVIOUS), built by its own scripts from a clone of
    this repository at that commit. A clone without that commit builds this checkout as version
    0.1.0 instead, which still takes the upgrade path of dpkg and the maintainer scripts."""
    work = Path(tempfile.mkdtemp(prefix=f"faceunlock-previous-{release}-"))
    out = work / "out"
    out.mkdir()
    python = ROOT / ".venv" / "bin" / "python"
    env = {"FACEUNLOCK_SANDBOX": str(run_sh), "FACEUNLOCK_BUILD_PYTHON": str(python)}
    has = subprocess.run(["git", "cat-file", "-e", f"{PREVIOUS}^{{commit}}"], cwd=ROOT, capture_output=True)
    if has.returncode == 0:
        clone = work / "src"
        subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", PREVIOUS], check=True)
        (clone / ".venv").symlink_to(ROOT / ".venv")
        package = build(release, out, clone, env=env)
    else:
        print(f"{PREVIOUS} is not in this clone: the earlier build is this checkout as version 0.1.0")
        package = build(release, out, env={**env, "FACEUNLOCK_DEB_VERSION": "0.1.0"})
    if not online(release):
        download(str(package))
    yield package
    subprocess.run(["rm", "-rf", str(work)], check=False)


@pytest.fixture(scope="module")
def rig(run_sh, deb, previous_deb, frame_folders, release):
    binds = (f"{frame_folders}:{FRAMES}", f"{deb.parent}:{DEB_DIR}", f"{data_root() / 'video'}:{VIDEO_DIR}")
    binds += (f"{previous_deb.parent}:{PREVIOUS_DIR}",)
    rootfs = "host" if release == "bookworm" else f"debian:{release}"
    with Sandbox(run_sh, binds_ro=binds, rootfs=rootfs, host_network=online(release)) as sb:
        rig = Rig(sb)
        rig.online = online(release)
        if rig.online:
            rig.install_packages(
                *ONLINE_PACKAGES, *depends(deb), *depends(previous_deb), *recommends(deb), online=True
            )
            # debootstrap writes common-auth without pam-auth-update; let it write its own form
            # first, as on an installed system, so that the purge is compared with that.
            rig.sb.run("DEBIAN_FRONTEND=noninteractive pam-auth-update --package")
        rig.add_users()
        rig.copy_helpers()
        rig.sb.run("rm -f /usr/sbin/policy-rc.d")
        rig.write_config()
        rig.point_camera("enrol-a")
        rig.before = rig.snapshot()
        rig.pam_before = {p: rig.sb.path(f"/etc/pam.d/{p}").read_bytes() for p in ("common-auth", "login")}
        yield rig


def packages_in(deb: Path, field: str) -> list[str]:
    """The package names of a control field (Depends, Recommends): first alternatives, no versions."""
    text = subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True).stdout
    return sorted({item.split("|")[0].split("(")[0].strip() for item in text.split(",") if item.strip()})


def depends(deb: Path) -> list[str]:
    return packages_in(deb, "Depends")


def recommends(deb: Path) -> list[str]:
    return packages_in(deb, "Recommends")


def is_installed(rig) -> bool:
    status = rig.sb.run(["dpkg-query", "-W", "-f=${Status}", "faceunlock"], check=False).stdout
    return status == "install ok installed"


@pytest.fixture
def package(rig, deb):
    """The package installed (apt install of the built .deb, once; again after a purge), its daemon
    running, and alice enrolled from live video. Each test starts from this, whatever ran before."""
    if not is_installed(rig):
        rig.install_packages(*depends(deb), online=rig.online)
        install = rig.sb.run(
            f"DEBIAN_FRONTEND=noninteractive apt-get -y -q install {DEB_DIR}/{deb.name}", timeout=900
        )
        rig.install_s = install.elapsed
    rig.write_config()
    rig.sb.run("systemctl start faceunlock.service", timeout=120)
    if rig.sb.run("test -e /var/lib/faceunlock/alice.json", check=False).returncode != 0:
        assert rig.enrol("alice", "enrol-a") == 10
    return rig


def test_apt_install(package):
    rig = package
    print(f"apt install took {getattr(rig, 'install_s', 0.0):.1f} s")
    assert rig.sb.out("systemctl is-enabled faceunlock.service") == "enabled"
    active = rig.sb.run("systemctl is-active faceunlock.service", check=False).stdout.strip()
    assert active == "active", "\n".join(rig.journal()[-40:])
    assert rig.sb.out("stat -c '%U %a' /var/lib/faceunlock") == "faceunlock 700"
    version = rig.sb.out("faceunlock --version")
    assert version.split()[-1] == rig.prop("Version")
    unit = rig.sb.out("systemctl show -pExecStart --value faceunlock.service")
    assert "/usr/lib/faceunlock/bin/python -I -m faceunlock daemon" in unit
    status = rig.sb.run("systemctl status --no-pager --lines=3 faceunlock.service").stdout
    print(status)


def version(rig) -> str:
    return rig.sb.out(["dpkg-query", "-W", "-f=${Version}", "faceunlock"]).strip()


def test_an_upgrade_from_the_last_landed_build_keeps_alice_unlocking(package, deb, previous_deb):
    """apt install of this build over the last landed one (PREVIOUS, with alice enrolled by it and
    face unlock in the PAM stack): a real upgrade (a newer version), the daemon running again,
    alice's template and the PAM line kept, no file of the old build left behind, and alice verified.
    The tests after this one (unlocking a locked session, PAM, purge) run on the upgraded system,
    with the template that the earlier build enrolled."""
    rig = package
    install = "DEBIAN_FRONTEND=noninteractive apt-get -y -q install"
    rig.sb.run("DEBIAN_FRONTEND=noninteractive apt-get -y -q purge faceunlock", timeout=600)
    rig.install_packages(*depends(previous_deb), online=rig.online)
    rig.sb.run(f"{install} {PREVIOUS_DIR}/{previous_deb.name}", timeout=900)
    earlier = version(rig)
    rig.write_config()
    rig.sb.run("systemctl start faceunlock.service", timeout=120)
    assert rig.enrol("alice", "enrol-a") == 10
    template = rig.sb.path("/var/lib/faceunlock/alice.json").read_bytes()
    rig.sb.run("pam-auth-update --enable faceunlock")
    try:
        rig.install_packages(*depends(deb), online=rig.online)
        upgrade = rig.sb.run(f"{install} {DEB_DIR}/{deb.name} 2>&1", timeout=900)
        now = version(rig)
        print(f"upgraded {earlier} to {now} in {upgrade.elapsed:.1f} s")
        assert rig.sb.run(["dpkg", "--compare-versions", now, "gt", earlier], check=False).returncode == 0
        assert f"over ({earlier})" in upgrade.stdout, upgrade.stdout[-3000:]
        assert "another face model" not in upgrade.stdout, upgrade.stdout[-3000:]
        assert rig.sb.path("/var/lib/faceunlock/alice.json").read_bytes() == template
        auth = rig.sb.path("/etc/pam.d/common-auth").read_text()
        assert re.search(r"^auth.*pam_faceunlock\.so", auth, flags=re.M), auth
        assert rig.sb.out("systemctl is-active faceunlock.service").strip() == "active"
        owned = set(rig.sb.out("dpkg -L faceunlock").splitlines())
        present = rig.sb.out("find /usr/lib/faceunlock -name __pycache__ -prune -o -print").splitlines()
        left = sorted(set(present) - owned)
        assert not left, f"{len(left)} files of the earlier build left behind: {left[:10]}"
        verify = rig.sb.run(f"faceunlock verify --user alice --source {FRAMES}/live-a", check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        rig.sb.run("pam-auth-update --disable faceunlock")


def test_the_package_holds_the_whole_product(package, deb, release):
    """The settings app with its launcher, polkit actions and man page, from the list that
    `faceunlock install` uses too; GTK 4 and libadwaita only recommended."""
    from faceunlock.service.install import package_files

    rig = package
    listed = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    shipped = {line.split(maxsplit=5)[5].split(" -> ")[0].lstrip(".") for line in listed.splitlines()}
    usr_lib = release != "bookworm"
    multiarch = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True)
    module = f"{'usr/' if usr_lib else ''}lib/{multiarch.stdout.strip()}/security/pam_faceunlock.so"
    assert f"/{module}" in shipped
    assert not any(p.startswith("/lib/") for p in shipped) or not usr_lib, "trixie ships in /usr/lib"
    for place in package_files(usr_lib=usr_lib):
        wanted = f"/{place}" + (".gz" if place.startswith("usr/share/man/") else "")
        assert wanted in shipped, f"{wanted} is not in the package"
    for path in (
        "/usr/bin/faceunlock-settings",
        "/usr/share/polkit-1/actions/org.faceunlock.policy",
        "/usr/share/applications/org.faceunlock.Settings.desktop",
        "/usr/share/man/man1/faceunlock-settings.1.gz",
    ):
        assert rig.sb.run(["test", "-e", path], check=False).returncode == 0, f"{path} is not installed"
    assert "org.faceunlock.enroll" in rig.sb.out("pkaction")
    recommends = subprocess.run(["dpkg-deb", "-f", str(deb), "Recommends"], capture_output=True, text=True)
    assert recommends.stdout.strip() == "gir1.2-gtk-4.0, gir1.2-adw-1"
    assert "gir1.2-gtk-4.0" not in depends(deb), "a server install stays without GTK"


def test_the_packaged_daemon_unlocks_a_locked_session_from_a_live_video(package):
    rig = package
    rig.write_config(config_text(camera=f"{VIDEO_DIR}/live-person-a.webm"))
    rig.sb.run("systemctl restart faceunlock.service", timeout=120)
    try:
        with rig.session_of("alice") as session:
            seen = len(rig.journal())
            rig.set_idle(session, True)
            rig.sb.run(["loginctl", "lock-session", session.sid])
            rig.wait_locked(session, True, 10)
            rig.wait_journal(rf"armed session {session.sid} of alice", seen, 10)
            time.sleep(GRACE_S + 0.2)
            started = time.monotonic()
            rig.set_idle(session, False)
            rig.wait_locked(session, False, 30)
            print(f"unlocked by the packaged daemon {time.monotonic() - started:.2f} s after IdleHint false")
            line = rig.wait_journal(rf"^faceunlock: session {session.sid} of alice: ", seen, 10)
            assert "unlocked" in line, line
    finally:
        rig.write_config()
        rig.sb.run("systemctl restart faceunlock.service", timeout=120)


def test_the_packaged_pam_line_matches(package):
    rig = package
    rig.sb.run("pam-auth-update --enable faceunlock")
    try:
        auth = rig.sb.path("/etc/pam.d/common-auth").read_text()
        assert re.search(r"default=ignore\]\s+pam_faceunlock\.so\s*$", auth, flags=re.M), auth
        assert "python" not in auth
        result = rig.converse("alice", ["pamtester", "login", "alice", "authenticate"], "not-the-password")
        assert result["rc"] == 0 and result["prompt_at"] is None, result
    finally:
        rig.sb.run("pam-auth-update --disable faceunlock")


STALE = """
import numpy as np
from faceunlock.store import TemplateStore
older = TemplateStore("/var/lib/faceunlock", model_sha256="0" * 64)
older.add("carol", "default", np.full((3, 128), 0.1, np.float32))
"""


def test_an_upgrade_says_who_must_enrol_again_and_keeps_the_others(package, deb):
    """A template made with another face model (as after an upgrade that changes the model): the
    upgrade (here a reinstall, which runs postinst as an upgrade does) names its user and the fix;
    alice's template is kept and still unlocks; enrolling carol again replaces the old one."""
    rig = package
    rig.sb.run(["/usr/lib/faceunlock/bin/python", "-I", "-c", STALE])
    try:
        upgrade = rig.sb.run(
            f"DEBIAN_FRONTEND=noninteractive apt-get -y -q install --reinstall {DEB_DIR}/{deb.name} 2>&1",
            timeout=900,
        )
        assert "carol was enrolled with another face model" in upgrade.stdout, upgrade.stdout[-3000:]
        assert "faceunlock enroll --user carol" in upgrade.stdout
        doctor = rig.sb.run("faceunlock doctor --frames 1", check=False).stdout
        assert "carol was enrolled with another face model" in doctor, doctor
        assert "alice: 1 enrolment(s), model fingerprint matches" in doctor, doctor
        verify = rig.sb.run(f"faceunlock verify --user alice --source {FRAMES}/live-a", check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        rig.sb.run("rm -f /var/lib/faceunlock/carol.json")


def test_apt_purge_leaves_the_system_as_it_was(package):
    rig = package
    assert is_installed(rig), "purging a package that is not installed proves nothing"
    rig.sb.run("pam-auth-update --enable faceunlock")
    assert rig.sb.path("/etc/pam.d/common-auth").read_bytes() != rig.pam_before["common-auth"]
    purge = rig.sb.run("DEBIAN_FRONTEND=noninteractive apt-get -y -q purge faceunlock", timeout=600)
    print(f"apt purge took {purge.elapsed:.1f} s")
    assert not is_installed(rig)
    left = changes(rig.before, rig.snapshot())
    assert left == {"added": [], "removed": [], "changed": []}, left
    assert {p: rig.sb.path(f"/etc/pam.d/{p}").read_bytes() for p in rig.pam_before} == rig.pam_before
    assert rig.sb.run("systemctl cat faceunlock.service", check=False).returncode != 0
    kept = rig.sb.out("getent passwd faceunlock")
    print(f"kept, as Debian policy asks of system users: {kept}")
