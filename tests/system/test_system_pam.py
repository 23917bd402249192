"""Real PAM stacks in the container: pam-auth-update, pamtester on sudo, su and login, the real sudo,
su and login, fall-through to pam_unix, a remote (SSH) and a cross-user request, and --disable.

Each PAM application runs on a pseudo-terminal (inside/converse.py) in a new local graphical
session of its user on seat0 (through pam_systemd), the way a terminal on a desktop does, so
the client's proof of a local session is asked of the real logind. A wrong password on every
face check shows that a success came from the face; the right one shows the password still
works after a fall-through. ``prompt_at`` is when pam_unix asked for the password.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time

import pytest
from conftest import VENV_BIN
from rig import HELPERS, USERS, config_text

STACKS = ("sudo", "su", "login")
WRONG = "not-the-password"
FALL_THROUGH_S = 1.0


def pam_files(rig) -> dict[str, tuple[int, str]]:
    """Every file of /etc/pam.d: (mode, sha256)."""
    folder = rig.sb.path("/etc/pam.d")
    return {
        p.name: (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def rig(installed):
    """PAM enabled for the module, and disabled again whatever happens."""
    rig = installed
    rig.sb.run("systemctl start faceunlock.service", timeout=120)
    rig.sb.write("/etc/sudoers.d/alice", "alice ALL=(ALL) ALL\n", 0o440)
    rig.before = pam_files(rig)
    rig.sb.run("pam-auth-update --enable faceunlock")
    yield rig
    rig.sb.run("pam-auth-update --disable faceunlock")
    rig.sb.run("rm -f /etc/sudoers.d/alice")


@contextlib.contextmanager
def daemon(rig, state: str):
    """The daemon running ("up"), stopped, or hung (SIGSTOP); always running again afterwards."""
    pid = 0
    if state == "stopped":
        rig.sb.run("systemctl stop faceunlock.service")
    else:
        rig.sb.run("systemctl start faceunlock.service", timeout=120)
    if state == "hung":
        pid = int(rig.show("faceunlock.service", "MainPID")["MainPID"])
        rig.sb.run(["kill", "-STOP", str(pid)])
    try:
        yield
    finally:
        if pid:
            rig.sb.run(["kill", "-CONT", str(pid)], check=False)
        rig.sb.run("systemctl start faceunlock.service", timeout=120)


def attempts(rig, user: str) -> list[str]:
    return [line for line in rig.journal() if f"attempt user={user} " in line]


def pamtester(rig, stack: str, user: str, password: str) -> dict:
    return rig.converse(user, ["pamtester", "-v", stack, user, "authenticate"], password)


def test_pam_auth_update_puts_the_face_before_pam_unix(rig):
    lines = [
        x for x in rig.sb.path("/etc/pam.d/common-auth").read_text().splitlines() if x.startswith("auth")
    ]
    face = [i for i, x in enumerate(lines) if "faceunlock" in x]
    unix = [i for i, x in enumerate(lines) if "pam_unix.so" in x]
    print("\n".join(lines))
    assert len(face) == 1 and unix and face[0] < unix[0]
    face_line = lines[face[0]]
    assert re.search(r"\[success=\d+ default=ignore\]\s+pam_faceunlock\.so\s*$", face_line), face_line
    account = rig.sb.path("/etc/pam.d/common-account").read_text()
    assert re.search(r"^account\s+optional\s+pam_faceunlock\.so\s*$", account, flags=re.M), account
    module = rig.sb.out(
        "ls /lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/security/pam_faceunlock.so"
    )
    assert module.endswith("pam_faceunlock.so")


def test_doctor_sees_the_stacks(rig):
    _, report = rig.doctor(str(VENV_BIN / "faceunlock"))
    pam = {f["status"]: f["message"] for f in report["findings"] if f["check"] == "pam"}
    print(pam)
    for service in ("sudo (line 1", "su (line 2", "login (line 3", "sshd (line 1"):
        assert service in pam["ok"], pam
    assert "problem" not in pam


@pytest.mark.parametrize("stack", STACKS)
def test_pamtester_a_match_succeeds_without_the_password(rig, stack):
    rig.point_camera("live-a")
    seen = len(attempts(rig, "alice"))
    result = pamtester(rig, stack, "alice", WRONG)
    print(f"{stack}: match in {result['elapsed']:.2f} s")
    assert result["rc"] == 0 and result["prompt_at"] is None, result
    assert "decision=match" in attempts(rig, "alice")[seen], attempts(rig, "alice")[seen:]


@pytest.mark.parametrize("state,wrong_on", [("no-match", "sudo"), ("stopped", "su"), ("hung", "login")])
def test_pamtester_falls_through_to_the_password(rig, state, wrong_on):
    """On each stack the password prompt comes within a second of the face path giving up, and the
    right password logs in; a wrong one (on one stack per state) does not."""
    rig.point_camera("few-c" if state == "no-match" else "live-a")
    seen = len(attempts(rig, "alice"))
    with daemon(rig, "up" if state == "no-match" else state):
        results = {stack: pamtester(rig, stack, "alice", USERS["alice"]) for stack in STACKS}
        wrong = pamtester(rig, wrong_on, "alice", WRONG)
    assert wrong["rc"] != 0 and wrong["prompt_at"] is not None, wrong
    new = attempts(rig, "alice")[seen:]
    scans = [int(re.search(r"duration_ms=(\d+)", x).group(1)) / 1000 for x in new]
    if state == "no-match":
        assert len(new) == 4 and all("decision=no-match" in x for x in new), new
    else:
        assert new == [], new
    for (stack, ok), scan_s in zip(results.items(), scans[:3] or [0.0] * 3, strict=True):
        print(f"{stack}, {state}: password prompt at {ok['prompt_at']:.2f} s (scan {scan_s:.2f} s)")
        assert ok["rc"] == 0 and ok["prompt_at"] is not None, ok
        assert ok["prompt_at"] - scan_s < FALL_THROUGH_S, (stack, ok["prompt_at"], scan_s)


def test_real_sudo(rig):
    rig.point_camera("live-a")
    seen = len(attempts(rig, "alice"))
    face = rig.converse("alice", ["sudo", "-k", "true"], WRONG)
    assert face["rc"] == 0 and face["prompt_at"] is None, face
    assert "service=pam:sudo decision=match" in attempts(rig, "alice")[seen], "(sudo asks PAM_SILENT)"
    rig.point_camera("few-c")
    password = rig.converse("alice", ["sudo", "-k", "true"], USERS["alice"])
    assert password["rc"] == 0 and password["prompt_at"] is not None, password
    print(f"sudo: face {face['elapsed']:.2f} s; no match, then the password: {password['elapsed']:.2f} s")


def test_confirm_mode_with_the_real_sudo(rig):
    """sudo in [pam] confirm: the module asks first. An empty Enter uses the face; the password typed
    at that prompt is used by pam_unix at once (one prompt, no scan)."""
    rig.write_config(config_text(confirm=("sudo",)))
    try:
        rig.point_camera("live-a")
        seen = len(attempts(rig, "alice"))
        face = rig.converse("alice", ["sudo", "-k", "true"], "")
        assert face["rc"] == 0 and "Press Enter to use your face" in face["output"], face
        assert len(attempts(rig, "alice")) == seen + 1 and "decision=match" in attempts(rig, "alice")[-1]
        typed = rig.converse("alice", ["sudo", "-k", "true"], USERS["alice"])
        assert typed["rc"] == 0 and typed["output"].count("assword") == 1, typed
        assert len(attempts(rig, "alice")) == seen + 1, "a typed password never scans"
    finally:
        rig.write_config()
    print(f"confirm mode: face after Enter {face['elapsed']:.2f} s; typed password {typed['elapsed']:.2f} s")


def test_with_default_settings_sudo_never_scans(rig):
    """A plain colour camera: the defaults are the lock screens; sudo asks for the password at once."""
    rig.write_config(config_text().split("[pam]")[0])
    try:
        rig.point_camera("live-a")
        seen = len(attempts(rig, "alice"))
        result = rig.converse("alice", ["sudo", "-k", "true"], USERS["alice"])
        assert result["rc"] == 0 and "Face recognised." not in result["output"], result
        assert "Looking for your face" not in result["output"]
        assert len(attempts(rig, "alice")) == seen
    finally:
        rig.write_config()


def test_real_su(rig):
    rig.point_camera("live-a")
    face = rig.converse("alice", ["su", "alice", "-c", "true"], WRONG)
    assert face["rc"] == 0 and face["prompt_at"] is None, face
    rig.point_camera("few-c")
    password = rig.converse("alice", ["su", "alice", "-c", "true"], USERS["alice"])
    assert password["rc"] == 0 and password["prompt_at"] is not None, password
    print(f"su: face {face['elapsed']:.2f} s; no match, then the password: {password['elapsed']:.2f} s")


def test_login_from_a_service_outside_any_session_falls_through(rig):
    """`login alice` run by a system service, outside any session, while alice's session is in front:
    not a person at a console (the old rules let it scan). The password prompt comes at once."""
    rig.point_camera("live-a")
    seen = len(attempts(rig, "alice"))
    with rig.session_of("alice"):
        result = rig.converse(None, ["login", "alice"], USERS["alice"], send=["alice@=exit\\n"])
    assert result["rc"] == 0 and result["prompt_at"] is not None, result
    assert attempts(rig, "alice")[seen:] == []
    print(f"login outside any session: password prompt at {result['prompt_at']:.2f} s")


CONSOLE_DROP_IN = """[Unit]
ConditionPathExists=

[Service]
Type=oneshot
Restart=no
StandardInput=null
StandardOutput=file:/run/console-login.json
TTYReset=no
TTYVHangup=no
TTYVTDisallocate=no
ExecStart=
ExecStart=/usr/bin/python3 {helpers}/converse.py --password {wrong} --timeout 30 -- \\
  pamtester -v -I tty={tty} login alice authenticate
"""


def console_login(rig, console: str, tty: str) -> dict:
    """A PAM conversation for alice in getty@CONSOLE.service, with PAM_TTY tty (the container has no
    consoles of its own: the kernel's foreground console is the host's, read from sysfs)."""
    sb = rig.sb
    unit = f"getty@{console}.service"
    drop_in = CONSOLE_DROP_IN.format(helpers=HELPERS, wrong=WRONG, tty=tty)
    sb.write(f"/run/systemd/system/{unit}.d/faceunlock-test.conf", drop_in)
    try:
        sb.run(f"systemctl daemon-reload && systemctl start {unit}", timeout=90, check=False)
        return json.loads(sb.out("tail -n1 /run/console-login.json"))
    finally:
        sb.run(f"rm -rf /run/systemd/system/{unit}.d /run/console-login.json; systemctl daemon-reload")


def test_login_on_the_console_in_front_uses_the_face(rig):
    """login's PAM conversation in getty@ttyN.service, for the console in front: the face; for
    another console, or a PAM_TTY that is not its own: the password."""
    front = rig.sb.out("cat /sys/class/tty/tty0/active")
    assert re.fullmatch(r"tty[0-9]+", front), f"no foreground console visible: {front!r}"
    other = "tty9" if front != "tty9" else "tty8"
    rig.point_camera("live-a")
    face = console_login(rig, front, f"/dev/{front}")
    wrong_console = console_login(rig, other, f"/dev/{other}")
    wrong_tty = console_login(rig, front, "/dev/pts/3")
    print({"face": face, "wrong console": wrong_console, "wrong tty": wrong_tty})
    assert face["rc"] == 0 and face["prompt_at"] is None, face
    for refused in (wrong_console, wrong_tty):
        assert refused["rc"] != 0 and refused["prompt_at"] is not None, refused


def test_su_to_another_user_in_view_falls_through(rig):
    """`su bob` typed by alice while bob is in front of the camera: the password, never bob's face."""
    rig.point_camera("live-c")
    seen = len(attempts(rig, "bob"))
    result = rig.converse("alice", ["su", "bob", "-c", "true"], USERS["bob"])
    assert result["rc"] == 0 and result["prompt_at"] is not None, result
    assert "Face recognised." not in result["output"]
    assert attempts(rig, "bob")[seen:] == []


def test_su_from_an_ssh_login_falls_through_without_a_scan(rig):
    """alice logs in over SSH (a real sshd on the container's loopback) and runs su: a remote session."""
    sb = rig.sb
    sb.run("systemctl start ssh.service")
    sb.run("test -f /root/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519")
    keys = "install -m600 -o alice -g alice /root/.ssh/id_ed25519.pub ~alice/.ssh/authorized_keys"
    sb.run(f"install -d -m700 -o alice -g alice ~alice/.ssh && {keys}")
    rig.point_camera("live-a")
    seen = len(attempts(rig, "alice"))
    ssh = ["ssh", "-tt", "-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes", "alice@127.0.0.1"]
    started = time.monotonic()
    result = rig.converse(None, [*ssh, "su", "alice", "-c", "true"], USERS["alice"])
    print(f"ssh + su: {time.monotonic() - started:.2f} s\n{result['output']}")
    assert result["rc"] == 0 and result["prompt_at"] is not None, result
    assert "SSH session" in result["output"] or "remote session" in result["output"], result["output"]
    assert attempts(rig, "alice")[seen:] == []


def test_disable_restores_the_stacks_byte_for_byte(rig):
    rig.sb.run("pam-auth-update --disable faceunlock")
    try:
        assert pam_files(rig) == rig.before
    finally:
        rig.sb.run("pam-auth-update --enable faceunlock")
