"""`faceunlock uninstall` after a full install (unit enabled, PAM enabled, faces enrolled) leaves
nothing behind but the templates, and with --purge not those either."""

from __future__ import annotations

import pytest
from conftest import VENV_BIN, booted, install_faceunlock


def changes(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(p for p in set(before) & set(after) if before[p] != after[p]),
    }


@pytest.fixture(scope="module")
def rig(run_sh, container_debs, frame_folders):
    with booted(run_sh, frame_folders) as rig:
        rig.install_packages("polkitd")
        rig.write_config()
        rig.before = rig.snapshot()
        install_faceunlock(rig)
        rig.sb.run("systemctl enable faceunlock.service && pam-auth-update --enable faceunlock")
        yield rig


def test_install_put_things_in_place(rig):
    installed = changes(rig.before, rig.snapshot())
    for path in (
        "/etc/systemd/system/faceunlock.service",
        "/etc/systemd/system/graphical.target.wants/faceunlock.service",
        "/usr/share/pam-configs/faceunlock",
        "/var/lib/faceunlock/alice.json",
    ):
        assert path in installed["added"], installed
    assert "/etc/pam.d/common-auth" in installed["changed"]


def test_uninstall_leaves_only_the_templates(rig):
    rig.sb.run([str(VENV_BIN / "faceunlock"), "uninstall"], timeout=120)
    left = changes(rig.before, rig.snapshot())
    print(left)
    assert left["removed"] == [] and left["changed"] == [], left
    assert left["added"] and all(p.startswith("/var/lib/faceunlock") for p in left["added"]), left
    assert {"/var/lib/faceunlock/alice.json", "/var/lib/faceunlock/bob.json"} <= set(left["added"])
    assert rig.sb.run(["systemctl", "cat", "faceunlock.service"], check=False).returncode != 0


def test_purge_leaves_nothing(rig):
    rig.sb.run([str(VENV_BIN / "faceunlock"), "uninstall", "--purge"], timeout=120)
    assert changes(rig.before, rig.snapshot()) == {"added": [], "removed": [], "changed": []}
