"""Only a person at the machine: real logind, polkitd, sudo and systemd, and a daemon that always
says "match" (inside/always_match.py), as the real one would with the user's face in view.

The shipped PAM line is enabled with pam-auth-update, so it is first in common-auth, which
/etc/pam.d/sudo and /etc/pam.d/polkit-1 include. bob (group sudo, so one of polkit's
administrators) sits at his desk: a local session on seat0, in front. Then:

- bob's own polkit agent in his session, authenticating bob: authorised by the face;
- alice's job with no session (as cron runs it) answering polkit for bob: refused;
- bob's own job with no session running ``sudo -S true``: refused;
- the display manager's own unit asking for the user in front: passes; for another: refused.

With a daemon that says "match" to everyone, only the presence rules stand between these
requests and root. The stand-in's log shows which requests reached it at all.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from conftest import ROOT
from rig import HELPERS, USERS

MANAGE_UNITS = "org.freedesktop.systemd1.manage-units"
STANDIN_LOG = "/run/faceunlock-always-match.log"
WRONG = "not-the-password"


@pytest.fixture(scope="module")
def rig(installed):
    """The real daemon stopped, the always-match stand-in on its bus name, PAM enabled, polkitd up,
    bob in group sudo; all undone afterwards."""
    rig = installed
    sb = rig.sb
    for name in ("polkit_agent.py", "always_match.py"):
        sb.write(f"{HELPERS}/{name}", (ROOT / "tests" / "system" / "inside" / name).read_text())
    sb.run("systemctl stop faceunlock.service")
    sb.run(f"rm -f {STANDIN_LOG}")
    xml = ROOT / "dbus" / "org.faceunlock.FaceUnlock1.xml"
    standin = ["/usr/bin/python3", f"{HELPERS}/always_match.py", str(xml), STANDIN_LOG]
    sb.run(["systemd-run", "-q", "--unit=always-match", *standin])
    wait_for_name(rig)
    sb.run("systemctl start polkit.service", timeout=60)
    sb.run("usermod -aG sudo bob")
    sb.run("pam-auth-update --enable faceunlock")
    try:
        yield rig
    finally:
        sb.run("pam-auth-update --disable faceunlock")
        sb.run("gpasswd -d bob sudo", check=False)
        sb.run("systemctl stop always-match.service", check=False)
        sb.run("systemctl start faceunlock.service", timeout=120)


def wait_for_name(rig, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while "org.faceunlock.FaceUnlock1" not in rig.sb.out("busctl --system list --no-legend --acquired"):
        assert time.monotonic() < deadline, "the stand-in did not take the bus name"
        time.sleep(0.2)


def verified(rig) -> list[str]:
    """Verify calls the stand-in has answered so far."""
    return rig.sb.run(f"cat {STANDIN_LOG}", check=False).stdout.splitlines()


@pytest.fixture
def units(rig):
    """Units a test starts (sessions included), stopped when it ends."""
    started: list[str] = []
    yield started
    for unit in started:
        rig.sb.run(["systemctl", "stop", unit], check=False)


def in_front(rig, units: list[str], user: str, command: str = "sleep 600") -> str:
    """A new local session of user on seat0 running command; asserts it is the seat's active one."""
    unit = f"desk-{user}-{uuid.uuid4().hex[:8]}"
    units.append(unit)
    log = f"/run/{unit}.log"
    rig.sb.run(
        ["systemd-run", "-q", f"--unit={unit}", "-p", f"StandardOutput=file:{log}"]
        + rig.session_env(user)
        + ["/bin/sh", "-c", command]
    )
    deadline = time.monotonic() + 20
    while True:
        pid = rig.show(f"{unit}.service", "MainPID")["MainPID"]
        sid = rig.sb.run(["loginctl", "--no-legend", "list-sessions"], check=False).stdout
        own = rig.sb.run(["sh", "-c", f"cat /proc/{pid}/sessionid 2>/dev/null"], check=False).stdout.strip()
        active = rig.sb.out(["loginctl", "show-seat", "seat0", "-p", "ActiveSession", "--value"])
        if own and active == own:
            return log
        assert time.monotonic() < deadline, f"{user}'s session {own} is not in front ({active}):\n{sid}"
        time.sleep(0.2)


def wait_line(rig, log: str, marker: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = rig.sb.run(f"cat {log}", check=False).stdout
        for line in text.splitlines():
            if marker in line:
                return text
        assert time.monotonic() < deadline, f"no {marker!r} in {log}:\n{text}"
        time.sleep(0.3)


def test_bobs_own_agent_in_his_session_is_authorised_by_his_face(rig, units):
    """The control: the face path works, so the refusals below are the presence rules at work."""
    seen = len(verified(rig))
    log = in_front(rig, units, "bob", f"/usr/bin/python3 {HELPERS}/polkit_agent.py bob control; sleep 600")
    text = wait_line(rig, log, "authorized=")
    print(text)
    assert "control: authorized=True" in text
    assert len(verified(rig)) == seen + 1 and "Verify bob" in verified(rig)[-1]


def test_alices_job_with_no_session_cannot_answer_polkit_for_bob_at_his_desk(rig, units):
    """alice (not an administrator) runs her own polkit agent from a job with no session, as cron
    would, and answers polkit's question for bob while bob sits in front of the camera."""
    in_front(rig, units, "bob")
    seen = len(verified(rig))
    out = rig.sb.run(
        ["systemd-run", "-q", "--wait", "--pipe", "-p", "User=alice"]
        + ["/usr/bin/python3", f"{HELPERS}/polkit_agent.py", "bob", "attack"],
        timeout=120,
        check=False,
    ).stdout
    print(out)
    assert "attack: authorized=False" in out
    assert verified(rig)[seen:] == [], "the request reached the daemon"


def test_bobs_own_job_with_no_session_cannot_sudo_while_he_is_at_his_desk(rig, units):
    """A cron job of bob's (set up over SSH with a stolen key) runs sudo the moment he sits down."""
    in_front(rig, units, "bob")
    seen = len(verified(rig))
    result = rig.sb.run(
        "systemd-run -q --wait --pipe -p User=bob /usr/bin/sudo -S -k true </dev/null",
        timeout=120,
        check=False,
    )
    print(result.stdout, result.stderr)
    assert result.returncode != 0, "sudo succeeded"
    assert "Face recognised" not in result.stdout + result.stderr
    assert verified(rig)[seen:] == [], "the request reached the daemon"
    face = rig.converse("bob", ["sudo", "-k", "true"], WRONG)
    assert face["rc"] == 0 and face["prompt_at"] is None, ("the same sudo typed in his session", face)


FAKE_DM = """[Unit]
Description=a display manager stand-in: one PAM conversation for {user}

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 {helpers}/converse.py --password {wrong} --timeout 30 -- \\
  pamtester -v login {user} authenticate
StandardOutput=file:/run/fakedm.json

[Install]
Alias=display-manager.service
"""


def test_the_display_manager_passes_for_the_user_in_front_only(rig, units):
    """A PAM conversation in the unit display-manager.service names (as GDM re-authenticates at the
    lock screen) passes for the user whose session is in front, and for nobody else."""
    sb = rig.sb
    in_front(rig, units, "alice")
    results = {}
    try:
        for user in ("alice", "bob"):
            unit = FAKE_DM.format(user=user, helpers=HELPERS, wrong=WRONG)
            sb.write("/etc/systemd/system/fakedm.service", unit)
            sb.run("systemctl daemon-reload && systemctl enable -q fakedm.service")
            assert sb.out("systemctl show -p Id --value display-manager.service") == "fakedm.service"
            seen = len(verified(rig))
            sb.run("systemctl start fakedm.service", timeout=90, check=False)
            results[user] = json.loads(sb.out("tail -n1 /run/fakedm.json"))
            results[user]["verified"] = verified(rig)[seen:]
    finally:
        sb.run("systemctl disable -q fakedm.service", check=False)
        sb.run("rm -f /etc/systemd/system/fakedm.service /run/fakedm.json && systemctl daemon-reload")
    print(results)
    assert results["alice"]["rc"] == 0 and results["alice"]["prompt_at"] is None, results["alice"]
    assert [line.split()[:2] for line in results["alice"]["verified"]] == [["Verify", "alice"]]
    assert results["bob"]["rc"] != 0 and results["bob"]["prompt_at"] is not None, results["bob"]
    assert results["bob"]["verified"] == []


def test_passwords_still_work_for_the_refused(rig, units):
    """A refusal falls through to the password: sudo from bob's job with no session, given his password."""
    in_front(rig, units, "bob")
    result = rig.sb.run(
        f"echo {USERS['bob']} | systemd-run -q --wait --pipe -p User=bob /usr/bin/sudo -S -k true",
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
