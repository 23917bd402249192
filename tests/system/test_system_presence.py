"""Only a person at the machine: real logind, polkitd, sudo and systemd, and the real daemon with the
very person it is asked about in front of its camera, so that every scan it made would match.

The shipped PAM profile is enabled with pam-auth-update: pam_faceunlock.so is first in common-auth,
which /etc/pam.d/sudo and /etc/pam.d/polkit-1 include, and the daemon holds every rule. bob (group
sudo, so one of polkit's administrators) sits at his desk: a local session on seat0, in front, and
his live video is the camera. Then:

- bob's own polkit agent in his session, authenticating bob: authorised by the face;
- alice's job with no session (as cron runs it) answering polkit for bob: refused;
- bob's own job with no session running ``sudo -S true``: refused;
- the display manager's own unit asking for the user in front: passes; for another: refused.

With the face in view, only the presence rules stand between these requests and root. The daemon's
audit lines show which requests it scanned for at all.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from conftest import ROOT
from rig import HELPERS, USERS

MANAGE_UNITS = "org.freedesktop.systemd1.manage-units"
WRONG = "not-the-password"


@pytest.fixture(scope="module")
def rig(installed):
    """The daemon running with the test config (polkit-1 and sudo opted in), PAM enabled, polkitd up,
    bob in group sudo and in front of the camera; all undone afterwards."""
    rig = installed
    sb = rig.sb
    sb.write(
        f"{HELPERS}/polkit_agent.py", (ROOT / "tests" / "system" / "inside" / "polkit_agent.py").read_text()
    )
    rig.write_config()
    sb.run("systemctl start faceunlock.service", timeout=120)
    sb.run("systemctl start polkit.service", timeout=60)
    sb.run("usermod -aG sudo bob")
    sb.run("pam-auth-update --enable faceunlock")
    rig.point_camera("live-c")
    try:
        yield rig
    finally:
        sb.run("pam-auth-update --disable faceunlock")
        sb.run("gpasswd -d bob sudo", check=False)


def verified(rig, user: str = "bob") -> list[str]:
    """The daemon's audit lines of scans for user so far."""
    return [line for line in rig.journal() if f"attempt user={user} " in line]


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
    assert len(verified(rig)) == seen + 1 and "service=pam:polkit-1 decision=match" in verified(rig)[-1]


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
    assert verified(rig)[seen:] == [], "the daemon scanned for it"


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
    assert verified(rig)[seen:] == [], "the daemon scanned for it"
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
        for user, camera in (("alice", "live-a"), ("bob", "live-c")):
            rig.point_camera(camera)
            unit = FAKE_DM.format(user=user, helpers=HELPERS, wrong=WRONG)
            sb.write("/etc/systemd/system/fakedm.service", unit)
            sb.run("systemctl daemon-reload && systemctl enable -q fakedm.service")
            assert sb.out("systemctl show -p Id --value display-manager.service") == "fakedm.service"
            seen = len(verified(rig, user))
            sb.run("systemctl start fakedm.service", timeout=90, check=False)
            results[user] = json.loads(sb.out("tail -n1 /run/fakedm.json"))
            results[user]["verified"] = verified(rig, user)[seen:]
    finally:
        rig.point_camera("live-c")
        sb.run("systemctl disable -q fakedm.service", check=False)
        sb.run("rm -f /etc/systemd/system/fakedm.service /run/fakedm.json && systemctl daemon-reload")
    print(results)
    assert results["alice"]["rc"] == 0 and results["alice"]["prompt_at"] is None, results["alice"]
    assert len(results["alice"]["verified"]) == 1 and "decision=match" in results["alice"]["verified"][0]
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
