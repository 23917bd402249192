"""A PAM-driven locker through pam_faceunlock.so: the real swaylock on a headless sway, as the user.

alice's local session on seat0 runs sway with its headless backend (pixman, no GPU); swaylock,
started by sway (so in the session, as on a desktop), locks it. A key press through the Wayland
virtual-keyboard protocol (wtype) is the person at the desk: Enter with an empty password makes
swaylock run its PAM stack (/etc/pam.d/swaylock, which includes common-auth, where pam-auth-update
put the module). The module runs inside swaylock as alice, not root: the daemon sees that uid and
pid on the bus, applies the rules for a non-root caller (alice only, from her session) and scans.
A live match ends swaylock; another person's video leaves it locked, and the password still works.

Packages (download cache, installed in the container only): sway, swaylock, wtype.
"""

from __future__ import annotations

import time

import pytest
from conftest import download
from rig import USERS

PACKAGES = ("sway", "swaylock", "wtype")


def attempts(rig) -> list[str]:
    return [line for line in rig.journal() if "attempt user=alice service=pam:swaylock " in line]


class Sway:
    def __init__(self, rig, uid: int):
        self.rig, self.uid = rig, uid
        self.env = ["env", f"XDG_RUNTIME_DIR=/run/user/{uid}", "WAYLAND_DISPLAY=wayland-1"]

    def as_alice(self, *cmd: str):
        return self.rig.sb.run(["runuser", "-u", "alice", "--", *self.env, *cmd], check=False, timeout=60)

    def locked(self) -> bool:
        return self.rig.sb.run(["pgrep", "-u", "alice", "-x", "swaylock"], check=False).returncode == 0

    def lock(self) -> None:
        """swaylock started by sway itself, so it runs in alice's session as a desktop's would."""
        socket = self.rig.sb.out(f"ls /run/user/{self.uid}/ | grep '^sway-ipc' | head -1")
        self.as_alice(
            f"SWAYSOCK=/run/user/{self.uid}/{socket}", "swaymsg", "exec", "swaylock -d 2>>/tmp/swaylock.log"
        )
        deadline = time.monotonic() + 20
        while not self.locked():
            assert time.monotonic() < deadline, "swaylock did not start"
            time.sleep(0.1)
        time.sleep(1.0)

    def why(self) -> str:
        """swaylock's log and the daemon's latest journal lines, for a failure message."""
        log = self.rig.sb.run("tail -n 20 /tmp/swaylock.log", check=False).stdout
        return log + "\n".join(self.rig.journal()[-10:])

    def checks(self) -> int:
        """How many passwords swaylock has handed to PAM so far (its debug log)."""
        log = self.rig.sb.run("cat /tmp/swaylock.log", check=False).stdout
        return log.count("received pw check request")

    def type(self, text: str) -> float:
        """Type text and Enter; seconds from the key press swaylock took until it exits (inf if it
        does not within 15 s). A lock surface that has not taken the keyboard yet (a busy machine)
        misses the keys: they are typed again, up to three times, each time after Escape, which
        empties swaylock's password buffer (keys that did arrive would otherwise prefix the retyped
        password). wtype types "-" as the key minus: as text, swaylock did not receive it here."""
        keys = ["wtype", "-d", "20", "-k", "Escape"]
        for i, part in enumerate(text.split("-")):
            keys += (["-k", "minus"] if i else []) + ([part] if part else [])
        keys += ["-k", "Return"]
        before = self.checks()
        for _ in range(3):
            started = time.monotonic()
            self.as_alice(*keys)
            while self.checks() == before and time.monotonic() - started < 3:
                time.sleep(0.05)
            if self.checks() > before:
                break
        while self.locked():
            if time.monotonic() - started > 15:
                return float("inf")
            time.sleep(0.05)
        return time.monotonic() - started


@pytest.fixture(scope="module")
def sway(installed):
    rig = installed
    download(*PACKAGES)
    rig.install_packages(*PACKAGES)
    rig.write_config()
    rig.sb.run("systemctl start faceunlock.service", timeout=120)
    rig.sb.run("pam-auth-update --enable faceunlock")
    uid = int(rig.sb.out("id -u alice"))
    rig.sb.write("/home/alice/.config/sway/config", "output HEADLESS-1 resolution 800x600\n")
    rig.sb.run("chown -R alice: /home/alice/.config")
    unit = "faceunlock-test-sway"
    env = ["-E", "WLR_BACKENDS=headless", "-E", "WLR_RENDERER=pixman", "-E", "WLR_LIBINPUT_NO_DEVICES=1"]
    rig.sb.run(["systemd-run", "-q", f"--unit={unit}", *rig.session_env("alice"), *env, "/usr/bin/sway"])
    desk = Sway(rig, uid)
    deadline = time.monotonic() + 30
    while rig.sb.run(f"test -S /run/user/{uid}/wayland-1", check=False).returncode != 0:
        assert time.monotonic() < deadline, "sway did not start"
        time.sleep(0.2)
    try:
        yield desk
    finally:
        rig.sb.run("pkill -u alice -x swaylock", check=False)
        rig.sb.run(f"systemctl stop {unit}.service", check=False)
        rig.sb.run("pam-auth-update --disable faceunlock")


def test_swaylock_unlocks_for_the_owner_through_the_module(sway):
    sway.rig.point_camera("live-a")
    sway.lock()
    seen = len(attempts(sway.rig))
    took = sway.type("")
    print(f"swaylock: Enter to unlocked by face in {took:.2f} s")
    assert took < 15, "swaylock still locked:\n" + sway.why()
    assert "decision=match" in attempts(sway.rig)[seen]


def test_swaylock_stays_locked_for_another_person_and_takes_the_password(sway):
    sway.rig.point_camera("live-c")
    sway.lock()
    seen = len(attempts(sway.rig))
    assert sway.type("") == float("inf") and sway.locked(), "another person unlocked swaylock"
    assert "decision=no-match" in attempts(sway.rig)[seen:][0], "\n".join(sway.rig.journal()[-20:])
    sway.rig.point_camera("few-c")
    took = sway.type(USERS["alice"])
    print(f"swaylock: the password after no match in {took:.2f} s")
    assert took < 15, "the password did not unlock swaylock:\n" + sway.why()
