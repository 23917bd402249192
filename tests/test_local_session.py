"""The presence rules (faceunlock.service.local_session) on a table of logind and systemd answers.

The end-to-end versions run through libpam and the logind and systemd stand-ins in
tests/test_service_pam.py, and with the real logind, polkitd and sudo in
tests/system/test_system_presence.py; here each rule is checked on its own, with
fakes that answer from dictionaries.
"""

import os

import pytest

from faceunlock.service import local_session as ls


def session(sid, user, uid, remote=False, seat="seat0", active=True, kind="user"):
    return ls.Session(sid, user, uid, remote, "192.0.2.7" if remote else "", seat, active, kind)


SESSIONS = {
    "/s/1": session("1", "alice", 1000),
    "/s/2": session("2", "alice", 1000, remote=True, seat=""),
    "/s/3": session("3", "bob", 1001),
    "/s/4": session("4", "alice", 1000, active=False),
    "/s/5": session("5", "alice", 1000, seat=""),
    "/s/6": session("6", "gdm", 120, kind="greeter"),
    "/s/7": session("7", "gdm", 120, kind="greeter", active=False),
}


class FakeLogind:
    def __init__(self, pid_session=None, pid_user=None, listed=()):
        self.pid_session = pid_session or {}
        self.pid_user = pid_user or {}
        self.listed = listed

    def session_of(self, pid):
        return self.pid_session.get(pid)

    def user_of(self, pid):
        return self.pid_user.get(pid)

    def session(self, path):
        return SESSIONS[path]

    def sessions(self):
        return [SESSIONS[p] for p in self.listed]

    def user_uid(self, path):
        return int(path.rsplit("_", 1)[1])


class FakeSystemd:
    def __init__(self, units=None, display_manager=None):
        self.units = units or {}
        self.dm = display_manager

    def unit_of(self, pid):
        return self.units.get(pid)

    def display_manager(self):
        return self.dm


ME = os.getpid()
UIDS = {"alice": 1000, "bob": 1001, "carol": 1002}


def req(user="alice", **kw):
    return ls.Request(pid=ME, user=user, uid=UIDS[user], **kw)


def console(name):
    return lambda: name


@pytest.mark.parametrize(
    "sid,user,why",
    [
        ("/s/1", "alice", None),
        ("/s/2", "alice", "remote session from 192.0.2.7"),
        ("/s/1", "bob", "session 1 of alice, not from a session of bob"),
        ("/s/4", "alice", "is not the active session of seat0"),
        ("/s/5", "alice", "has no seat"),
        ("/s/6", "alice", None),
        ("/s/7", "alice", "is not the active session"),
    ],
)
def test_rule_1_the_callers_session(sid, user, why):
    got = ls.refusal(FakeLogind({ME: sid}), req(user), FakeSystemd())
    assert (got is None) if why is None else (why in got), got


def test_rule_1_the_requester_is_who_asks_not_pam_ruser():
    """polkit-agent-helper-1 run by alice's agent (real uid alice) authenticating bob: refused up
    front, even from bob's own session, and even with bob's face in view."""
    assert "uid 1000 may not authenticate as bob" in ls.refusal(
        FakeLogind({ME: "/s/3"}), req("bob", requester=1000), FakeSystemd()
    )
    assert ls.refusal(FakeLogind({ME: "/s/3"}), req("bob", requester=1001), FakeSystemd()) is None


def test_rule_1_other_user_opt_in():
    """[pam] other_user: alice may ask as bob from her own session; never from a remote one, and a
    known requester must still be in their own session."""
    assert ls.refusal(FakeLogind({ME: "/s/1"}), req("bob", any_user=True), FakeSystemd()) is None
    assert ls.refusal(FakeLogind({ME: "/s/1"}), req("bob", requester=1000, any_user=True)) is None
    assert "not from a session of uid 1002" in ls.refusal(
        FakeLogind({ME: "/s/1"}), req("bob", requester=1002, any_user=True)
    )
    assert "remote" in ls.refusal(FakeLogind({ME: "/s/2"}), req("bob", any_user=True), FakeSystemd())


def test_rule_1_uses_the_nearest_ancestor_in_a_session():
    parent = os.getppid()
    logind = FakeLogind({parent: "/s/2", ME: "/s/1"})
    assert ls.refusal(logind, req(), FakeSystemd()) is None
    assert "remote" in ls.refusal(FakeLogind({parent: "/s/2"}), req(), FakeSystemd())


def test_a_job_with_no_session_is_refused_while_the_user_sits_at_the_desk():
    """cron, at or a system service: no session, no logind user. bob is at his seat (session 3) and a
    greeter is up on another seat: neither is proof that the job was asked for by a person."""
    for unit in ("cron.service", "atd.service", "run-u12.service", None):
        got = ls.refusal(FakeLogind(listed=("/s/3", "/s/6")), req("bob"), FakeSystemd({ME: unit}))
        assert got is not None and "outside any login session" in got, (unit, got)
        assert (unit or "no unit") in got


def test_user_services_are_refused_unless_opted_in():
    """systemd-run --user typed in an SSH login runs in the user's manager, with no session."""
    alice = FakeLogind(pid_user={ME: "/u/_1000"}, listed=("/s/1",))
    got = ls.refusal(alice, req(), FakeSystemd({ME: "user@1000.service"}))
    assert got is not None and "own systemd services" in got and "user_services" in got
    assert ls.refusal(alice, req(user_services=True), FakeSystemd()) is None
    only_remote = FakeLogind(pid_user={ME: "/u/_1000"}, listed=("/s/2", "/s/4", "/s/3"))
    assert "no active local session" in ls.refusal(only_remote, req(user_services=True), FakeSystemd())
    cross = FakeLogind(pid_user={ME: "/u/_1000"}, listed=("/s/1", "/s/3"))
    assert "not of bob" in ls.refusal(cross, req("bob", user_services=True), FakeSystemd())


def test_the_daemon_without_systemd_accepts_only_a_session():
    """A non-root D-Bus caller: no display-manager or console rule applies."""
    assert "outside any login session" in ls.refusal(FakeLogind(listed=("/s/1", "/s/6")), req(), None)


@pytest.mark.parametrize(
    "listed,user,why",
    [
        (("/s/6",), "alice", None),
        (("/s/1",), "alice", None),
        (("/s/3",), "alice", "no greeter or session of alice is in front"),
        (("/s/7", "/s/2"), "alice", "no greeter or session of alice is in front"),
    ],
)
def test_rule_2_the_display_manager(listed, user, why):
    """The PAM application runs in the unit display-manager.service names, while a greeter or the
    user's own (locked) session is in front."""
    systemd = FakeSystemd({ME: "gdm.service"}, display_manager="gdm.service")
    got = ls.refusal(FakeLogind(listed=listed), req(user), systemd)
    assert (got is None) if why is None else (why in got), got


def test_rule_2_another_service_is_not_the_display_manager():
    systemd = FakeSystemd({ME: "cron.service"}, display_manager="gdm.service")
    assert "outside any login session (cron.service)" in ls.refusal(
        FakeLogind(listed=("/s/6",)), req(), systemd
    )
    no_dm = FakeSystemd({ME: "gdm.service"}, display_manager=None)
    assert "outside any login session" in ls.refusal(FakeLogind(listed=("/s/6",)), req(), no_dm)


@pytest.mark.parametrize(
    "unit,front,tty,why",
    [
        ("getty@tty3.service", "tty3", "/dev/tty3", None),
        ("autovt@tty2.service", "tty2", "tty2", None),
        ("getty@tty3.service", "tty1", "/dev/tty3", "not the console in front (tty1)"),
        ("getty@tty3.service", None, "/dev/tty3", "not the console in front (none)"),
        ("getty@tty3.service", "tty3", "/dev/tty4", "gives PAM_TTY '/dev/tty4'"),
        ("serial-getty@ttyS0.service", "tty1", "ttyS0", "outside any login session"),
        ("cron.service", "tty3", "tty3", "outside any login session"),
    ],
)
def test_rule_2_login_on_the_console_in_front(unit, front, tty, why):
    got = ls.refusal(FakeLogind(), req(tty=tty), FakeSystemd({ME: unit}), console(front))
    assert (got is None) if why is None else (why in got), got


def test_a_pam_tty_alone_is_no_proof():
    """The old rule accepted any process whose PAM_TTY named a virtual console."""
    assert "outside any login session" in ls.refusal(FakeLogind(), req(tty="/dev/tty1"), FakeSystemd())


def test_ancestors_walk_up_to_init():
    chain = ls.ancestors(os.getpid())
    assert chain[0] == os.getpid() and chain[1] == os.getppid() and 1 not in chain
