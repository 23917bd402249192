"""Automatic unlock through logind, end to end on a private system bus.

logind cannot run here (no systemd as PID 1), so faceunlock/testing/logind_standin.py plays
org.freedesktop.login1 on the test bus: sessions with LockedHint and IdleHint,
Lock/Unlock signals, PrepareForSleep, and an Unlock() method whose calls it
records. The daemon under test is the real one, with its real logind watcher,
and a camera that shows real video frames.

Sessions: c1 is alice's (enrolled from live video of person A), c2 is bob's
(enrolled from LFW photos of someone else), c3 is a remote session of alice.
"""

import subprocess
import time

import pytest
from gi.repository import GLib
from service_harness import GRACE_S, VENV_BIN, dbus_send, wait_for

SCAN_WAIT_S = 60


@pytest.fixture
def svc(service):
    """The shared service, with every session unlocked again afterwards."""
    yield service
    for sid in ("c1", "c2", "c3"):
        service.session(sid).SetLockedHint(False)
        service.session(sid).SetIdleHint(False)
    wait_for(lambda: service.proxy().State == "idle", SCAN_WAIT_S)


def lock(svc, sid, wait_grace=True):
    svc.manager().LockSession(sid)
    assert svc.session(sid).LockedHint
    if wait_grace:
        time.sleep(GRACE_S + 0.3)


def wake(svc, sid):
    """The user touches the mouse at the lock screen: IdleHint goes true, then false."""
    svc.session(sid).SetIdleHint(True)
    svc.session(sid).SetIdleHint(False)


def scans_after(svc, user, before, count=1):
    assert wait_for(lambda: len(svc.done_scans(user)) >= before + count, SCAN_WAIT_S), svc.log_text()
    return svc.done_scans(user)[before:]


def test_enrolled_face_unlocks_the_locked_session(svc):
    svc.point_camera("live-a")
    lock(svc, "c1")
    calls = len(svc.unlock_calls("c1"))
    wake(svc, "c1")
    assert wait_for(lambda: len(svc.unlock_calls("c1")) == calls + 1, SCAN_WAIT_S), svc.log_text()
    assert not svc.session("c1").LockedHint
    assert svc.done_scans("alice")[-1] == "match"


def test_face_unlock_switched_off_does_not_unlock(svc):
    """`faceunlock disable` ([pam] enabled = false) turns the automatic unlock off at once too: the
    owner's live face, a wake at the locked session, and no Unlock, without a restart."""
    original = svc.config.read_text()
    svc.config.write_text(original + "enabled = false\n")
    try:
        svc.point_camera("live-a")
        lock(svc, "c1")
        said = "session c1 of alice: error (face unlock is switched off)"
        before, calls = svc.log_text().count(said), len(svc.unlock_calls("c1"))
        wake(svc, "c1")
        assert wait_for(lambda: svc.log_text().count(said) > before, SCAN_WAIT_S), svc.log_text()
        assert len(svc.unlock_calls("c1")) == calls and svc.session("c1").LockedHint
    finally:
        svc.config.write_text(original)


def test_another_person_does_not_unlock(svc):
    """Person A, live, in front of the camera of bob's locked session: scanned, judged, refused."""
    svc.point_camera("live-a")
    lock(svc, "c2")
    before = len(svc.done_scans("bob"))
    wake(svc, "c2")
    assert scans_after(svc, "bob", before) == ["no-match"]
    assert svc.unlock_calls("c2") == []
    assert svc.session("c2").LockedHint


def test_replay_of_the_enrolled_person_does_not_unlock(svc):
    """A phone replay of person A: refused, and the liveness check did not pass it."""
    svc.point_camera("replay-a")
    lock(svc, "c1")
    calls, before = len(svc.unlock_calls("c1")), len(svc.done_scans("alice"))
    wake(svc, "c1")
    assert scans_after(svc, "alice", before) == ["no-match"]
    assert len(svc.unlock_calls("c1")) == calls
    attempt = svc.last_attempt("alice")
    assert "liveness='pass'" not in attempt and "liveness=" in attempt, attempt


def test_no_unlock_within_the_grace_period(svc):
    svc.point_camera("live-a")
    lock(svc, "c1", wait_grace=False)
    calls, before = len(svc.unlock_calls("c1")), len(svc.done_scans("alice"))
    wake(svc, "c1")
    assert not wait_for(lambda: len(svc.unlock_calls("c1")) > calls, GRACE_S / 2)
    assert len(svc.done_scans("alice")) == before and svc.session("c1").LockedHint
    assert "within the grace period" in svc.log_text()
    time.sleep(GRACE_S)
    wake(svc, "c1")
    assert wait_for(lambda: len(svc.unlock_calls("c1")) == calls + 1, SCAN_WAIT_S), svc.log_text()


def test_a_lock_screen_asks_too_soon_after_the_lock(svc):
    """Lock and walk away: within the grace period a lock screen's PAM request (swaylock's) is
    refused before any scan, with the face still in view; after it, the face is used."""
    svc.point_camera("live-a")
    lock(svc, "c1", wait_grace=False)
    with svc.in_session("c1"):
        result, message = svc.authenticate("alice", "swaylock")
        assert result == "refused" and "locked less than" in message, message
        time.sleep(GRACE_S + 0.3)
        assert svc.authenticate("alice", "swaylock") == ("ready", "")


def test_resume_from_sleep_triggers_a_scan(svc):
    svc.point_camera("live-a")
    lock(svc, "c1")
    calls = len(svc.unlock_calls("c1"))
    svc.standin().EmitPrepareForSleep(True)
    svc.standin().EmitPrepareForSleep(False)
    assert wait_for(lambda: len(svc.unlock_calls("c1")) == calls + 1, SCAN_WAIT_S), svc.log_text()


def test_scans_per_lock_are_limited(svc):
    """max_scans_per_lock = 2 in the test config: the third trigger after one lock starts no scan."""
    svc.point_camera("live-a")
    lock(svc, "c2")
    before = len(svc.done_scans("bob"))
    for n in (1, 2):
        wake(svc, "c2")
        assert len(scans_after(svc, "bob", before, n)) == n
    wake(svc, "c2")
    assert not wait_for(lambda: len(svc.done_scans("bob")) > before + 2, 2.0)
    assert "scans allowed per lock are used up" in svc.log_text()
    assert svc.unlock_calls("c2") == []


def test_remote_session_is_never_armed(svc):
    svc.point_camera("live-a")
    lock(svc, "c3")
    before = len(svc.done_scans("alice"))
    wake(svc, "c3")
    assert not wait_for(lambda: len(svc.done_scans("alice")) > before, 1.0)
    assert svc.unlock_calls("c3") == []


def test_a_session_not_in_front_is_never_unlocked(svc):
    """Fast user switching: alice's locked session goes to the background (Active false). Her face
    in view, a wake-up or a resume from sleep never unlocks it behind the session in front; when it
    comes back to the front, locked, it is armed afresh."""
    svc.point_camera("live-a")
    lock(svc, "c1")
    calls, before = len(svc.unlock_calls("c1")), len(svc.done_scans("alice"))
    svc.standin().SetActive("c1", False)
    try:
        wake(svc, "c1")
        svc.standin().EmitPrepareForSleep(True)
        svc.standin().EmitPrepareForSleep(False)
        assert not wait_for(lambda: len(svc.done_scans("alice")) > before, 2.0)
        assert len(svc.unlock_calls("c1")) == calls and svc.session("c1").LockedHint
        assert "no longer the active session of its seat" in svc.log_text()
    finally:
        svc.standin().SetActive("c1", True)
    time.sleep(GRACE_S + 0.3)
    wake(svc, "c1")
    assert wait_for(lambda: len(svc.unlock_calls("c1")) == calls + 1, SCAN_WAIT_S), svc.log_text()


def test_a_session_locked_in_the_background_is_not_armed(svc):
    """A Lock for a session that is not in front (another user's session is): never armed, so an
    unlock request says so, whoever asks."""
    svc.point_camera("live-a")
    svc.standin().SetActive("c1", False)
    try:
        lock(svc, "c1")
        assert "not the active session of a seat: not armed" in svc.log_text()
        with pytest.raises(GLib.Error) as err:
            svc.proxy().UnlockNow("c1")
        assert "session c1 is not locked and armed" in str(err.value)
    finally:
        svc.standin().SetActive("c1", True)


def test_unlock_now_command(svc):
    svc.point_camera("live-a")
    lock(svc, "c1")
    calls = len(svc.unlock_calls("c1"))
    proc = subprocess.run(
        [str(VENV_BIN / "faceunlock"), "unlock-now", "--session", "c1"],
        env=svc.bus.env(),
        capture_output=True,
        text=True,
        timeout=SCAN_WAIT_S,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("unlocked:"), proc.stdout + proc.stderr
    assert len(svc.unlock_calls("c1")) == calls + 1


def fake(svc, path: str, iface: str, name: str, args=None) -> None:
    """Send a signal that looks like logind's from this test's own connection (any local user can)."""

    svc.client.con.emit_signal(None, path, iface, name, args)
    svc.client.con.flush_sync(None)
    wait_for(lambda: False, 0.5)


def test_signals_from_anyone_but_logind_change_nothing(svc):
    """A fake Lock does not arm an unlocked session; a fake Unlock or SessionRemoved does not disarm a
    locked one: after both, the real lock still unlocks on a match."""
    from gi.repository import GLib

    session = "/org/freedesktop/login1/session/c1"
    fake(svc, session, "org.freedesktop.login1.Session", "Lock")
    refused = unlock_now(svc)
    assert refused.returncode == 1 and "not locked and armed" in refused.stdout, refused.stdout
    svc.point_camera("live-a")
    lock(svc, "c1")
    fake(svc, session, "org.freedesktop.login1.Session", "Unlock")
    removed = GLib.Variant("(so)", ("c1", session))
    fake(svc, "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "SessionRemoved", removed)
    calls = len(svc.unlock_calls("c1"))
    unlocked = unlock_now(svc)
    assert unlocked.returncode == 0 and unlocked.stdout.startswith("unlocked:"), unlocked.stdout
    assert len(svc.unlock_calls("c1")) == calls + 1


def unlock_now(svc) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "faceunlock"), "unlock-now", "--session", "c1"],
        env=svc.bus.env(),
        capture_output=True,
        text=True,
        timeout=SCAN_WAIT_S,
    )


def test_unlock_now_refuses_an_unlocked_session(svc):
    proc = subprocess.run(
        [str(VENV_BIN / "faceunlock"), "unlock-now", "--session", "c1"],
        env=svc.bus.env(),
        capture_output=True,
        text=True,
        timeout=SCAN_WAIT_S,
    )
    assert proc.returncode == 1 and "not locked and armed" in proc.stdout, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def no_auto_unlock(video_dir, tmp_path_factory):
    """A second daemon with `[daemon] auto_unlock = false`: face unlock only through PAM."""
    from service_harness import need_root

    from faceunlock.testing import service as harness

    need_root()
    frames = harness.frame_folders(video_dir, tmp_path_factory.mktemp("no-auto-frames"))
    with harness.running_service(frames, auto_unlock=False) as svc:
        yield svc


def test_without_the_automatic_unlock_a_lock_screen_still_gets_the_grace_period(no_auto_unlock):
    """Lock and walk away with the automatic unlock off: nothing unlocks by itself, and the lock
    screen's own PAM request is still refused within the grace period (the locks are watched all
    the same); after it the face is used."""
    svc = no_auto_unlock
    svc.point_camera("live-a")
    lock(svc, "c1", wait_grace=False)
    try:
        calls = len(svc.unlock_calls("c1"))
        with svc.in_session("c1"):
            result, message = svc.authenticate("alice", "swaylock")
            assert result == "refused" and "locked less than" in message, message
            time.sleep(GRACE_S + 0.3)
            wake(svc, "c1")
            assert svc.authenticate("alice", "swaylock") == ("ready", "")
        unlocked = wait_for(lambda: len(svc.unlock_calls("c1")) > calls, 8)
        assert not unlocked and "service=logind" not in svc.log_text(), "the automatic unlock is off"
        with pytest.raises(GLib.Error, match="automatic unlock is off"):
            svc.proxy().UnlockNow("c1")
    finally:
        svc.session("c1").SetLockedHint(False)


def test_a_scan_started_before_a_new_lock_does_not_unlock_it():
    """The session is unlocked by password during a scan and locked again at once: the old scan's
    match must not unlock the new lock (it is within its fresh grace period, and it was never
    scanned for). A unit test of the watcher: logind's answers come from a dict, and the scan is
    finished by hand."""
    from faceunlock.config import DaemonConfig
    from faceunlock.decision import Decision
    from faceunlock.service.logind import Logind

    now, unlocked, pending = [0.0], [], []
    props = {"Name": "alice", "Id": "c1", "LockedHint": True, "Remote": False, "Active": True}
    props |= {"Seat": ("seat0", "/"), "User": (1000, "/")}

    class Watcher(Logind):
        def session(self, path):
            return dict(props)

        def call(self, path, iface, method, args=None, reply=None):
            if method == "Unlock":
                unlocked.append(path)
            return self.session(path)

    cfg = DaemonConfig()
    queue = lambda armed, done, caller: pending.append(done) or True  # noqa: E731
    watcher = Watcher(None, cfg, lambda user: True, queue, clock=lambda: now[0])
    watcher.owner = ":1.1"
    watcher.on_lock(":1.1", "/s/c1", None, "Lock", ())
    now[0] += cfg.grace_period + 1
    assert watcher.trigger("/s/c1", "IdleHint false") is None and len(pending) == 1
    watcher.on_unlock(":1.1", "/s/c1", None, "Unlock", ())
    watcher.on_lock(":1.1", "/s/c1", None, "Lock", ())
    now[0] += cfg.grace_period + 1
    pending[0](Decision(user="alice", decision="match", reason="test"))
    assert unlocked == []
    assert watcher.trigger("/s/c1", "IdleHint false") is None and len(pending) == 2
    pending[1](Decision(user="alice", decision="match", reason="test"))
    assert unlocked == ["/s/c1"], "a scan of the new lock does unlock it"


def test_another_user_cannot_ask_to_unlock_a_session(svc):
    """alice's session c1 is locked and armed, her face in view; nobody, at its own local session
    (c4), asks to unlock c1: answered as if c1 were not armed, and nothing is scanned."""
    svc.point_camera("live-a")
    lock(svc, "c1")
    before, calls = len(svc.done_scans("alice")), len(svc.unlock_calls("c1"))
    with svc.in_session("c4"):
        proc = dbus_send(svc, "UnlockNow", "string:c1")
    assert proc.returncode != 0 and "session c1 is not locked and armed" in proc.stderr, proc.stderr
    assert not wait_for(lambda: len(svc.done_scans("alice")) > before, 3.0)
    assert len(svc.unlock_calls("c1")) == calls and svc.session("c1").LockedHint


def test_unlock_now_from_a_remote_session_is_refused(svc):
    """From an SSH-like session (c5) nobody may not start a scan, not even to learn whether its own
    session is armed, which would tell whether someone sits at the desk."""
    with svc.in_session("c5"):
        proc = dbus_send(svc, "UnlockNow", "string:")
    assert proc.returncode != 0 and "Error.PermissionDenied" in proc.stderr, proc.stderr
    assert "remote session" in proc.stderr
