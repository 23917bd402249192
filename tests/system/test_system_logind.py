"""Automatic unlock against the real systemd-logind: lock-session, a scan from the camera stand-in,
and the real Session.Unlock() clearing LockedHint through a lock screen stand-in in the session."""

from __future__ import annotations

import re
import time

import pytest
from rig import GRACE_S


@pytest.fixture(scope="module")
def rig(installed):
    installed.sb.run("systemctl start faceunlock.service", timeout=120)
    return installed


@pytest.fixture(scope="module")
def session(rig):
    """alice's local graphical session on seat0; its leader is the lock screen stand-in."""
    s = rig.open_session("alice")
    try:
        assert rig.session_prop(s, "Remote") == "no" and rig.session_prop(s, "Type") == "wayland"
        yield s
    finally:
        rig.close_session(s)


def lock(rig, session) -> int:
    """Lock the session the way a desktop does; returns the daemon's journal position before it."""
    seen = len(rig.journal())
    rig.set_idle(session, True)
    rig.sb.run(["loginctl", "lock-session", session.sid])
    rig.wait_locked(session, True, 10)
    rig.wait_journal(rf"armed session {session.sid} of alice \((Lock signal|LockedHint)\)", seen, 10)
    return seen


def user_returns(rig, session) -> None:
    """The trigger a compositor gives when the user moves: IdleHint turns false."""
    rig.set_idle(session, False)


def unlock_by_hand(rig, session) -> None:
    rig.sb.run(["loginctl", "unlock-session", session.sid])
    rig.wait_locked(session, False, 10)


def test_a_live_match_unlocks_through_logind(rig, session):
    rig.point_camera("live-a")
    seen = lock(rig, session)
    time.sleep(GRACE_S + 0.2)
    started = time.monotonic()
    user_returns(rig, session)
    took = rig.wait_locked(session, False, 30)
    total = time.monotonic() - started
    print(f"IdleHint false to LockedHint false: {total:.2f} s")
    line = rig.wait_journal(rf"^faceunlock: session {session.sid} of alice: ", seen, 10)
    assert line.startswith(f"faceunlock: session {session.sid} of alice: unlocked"), line
    locker = "\n".join(rig.journal(session.unit))
    assert "locker: Unlock signal from" in locker and "LockedHint set to False" in locker
    assert took < 30


@pytest.mark.parametrize("camera", ["live-c", "replay-a"])
def test_another_person_or_a_replay_stays_locked(rig, session, camera):
    rig.point_camera(camera)
    seen = lock(rig, session)
    time.sleep(GRACE_S + 0.2)
    user_returns(rig, session)
    line = rig.wait_journal(rf"^faceunlock: session {session.sid} of alice: ", seen, 30)
    print(line)
    assert re.search(rf"session {session.sid} of alice: (no-match|no-face|timeout) \(", line), line
    assert rig.session_prop(session, "LockedHint") == "yes"
    unlock_by_hand(rig, session)


def test_nothing_happens_within_the_grace_period(rig, session):
    rig.point_camera("live-a")
    seen = lock(rig, session)
    user_returns(rig, session)
    line = rig.wait_journal(rf"IdleHint false on session {session.sid} of alice: (.*)", seen, 10)
    assert "no scan, within the grace period" in line, line
    time.sleep(0.5)
    assert rig.session_prop(session, "LockedHint") == "yes"
    assert not any("attempt user=alice service=logind" in x for x in rig.journal()[seen:])
    # the same trigger after the grace period does unlock: the refusal above was the grace period's
    rig.set_idle(session, True)
    time.sleep(GRACE_S)
    user_returns(rig, session)
    rig.wait_locked(session, False, 30)
