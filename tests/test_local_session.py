"""The local-session rules (faceunlock.service.local_session) on a table of logind answers.

The end-to-end versions run through libpam and the logind stand-in in
tests/test_service_pam.py; here each rule is checked on its own, with a fake
logind that answers from dictionaries.
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


ME = os.getpid()


@pytest.mark.parametrize(
    "sid,user,why",
    [
        ("/s/1", "alice", None),
        ("/s/2", "alice", "remote session from 192.0.2.7"),
        ("/s/1", "bob", "session 1 of alice, not from a session of bob"),
        ("/s/4", "alice", "is not the active session of seat0"),
        ("/s/5", "alice", "has no seat"),
    ],
)
def test_rule_1_the_callers_session(sid, user, why):
    got = ls.refusal(FakeLogind({ME: sid}), ME, user, 1000 if user == "alice" else 1001)
    assert (got is None) if why is None else (why in got), got


def test_rule_1_other_user_opt_in():
    assert ls.refusal(FakeLogind({ME: "/s/1"}), ME, "bob", 1001, any_user=True) is None
    assert "remote" in ls.refusal(FakeLogind({ME: "/s/2"}), ME, "bob", 1001, any_user=True)


def test_rule_1_uses_the_nearest_ancestor_in_a_session():
    parent = os.getppid()
    logind = FakeLogind({parent: "/s/2", ME: "/s/1"})
    assert ls.refusal(logind, ME, "alice", 1000) is None
    assert "remote" in ls.refusal(FakeLogind({parent: "/s/2"}), ME, "alice", 1000)


def test_rule_2_a_users_service_process():
    """A terminal in the user's systemd services: the user must have a local, active seat session."""
    alice = {ME: "/u/_1000"}
    assert ls.refusal(FakeLogind(pid_user=alice, listed=("/s/1",)), ME, "alice", 1000) is None
    only_remote = FakeLogind(pid_user=alice, listed=("/s/2", "/s/4", "/s/3"))
    assert "no active local session" in ls.refusal(only_remote, ME, "alice", 1000)
    cross = ls.refusal(FakeLogind(pid_user=alice, listed=("/s/1", "/s/3")), ME, "bob", 1001)
    assert "not of bob" in cross


def test_rule_3_a_system_process():
    """A display manager or login: a virtual console, or a local greeter / the user's own seat session."""
    assert ls.refusal(FakeLogind(), ME, "alice", 1000, tty="/dev/tty3") is None
    assert ls.refusal(FakeLogind(), ME, "alice", 1000, tty="tty2") is None
    assert "no local session" in ls.refusal(FakeLogind(), ME, "alice", 1000, tty="/dev/pts/2")
    assert "no local session" in ls.refusal(FakeLogind(), ME, "alice", 1000, tty="ttyS0")
    assert ls.refusal(FakeLogind(listed=("/s/6",)), ME, "alice", 1000) is None
    assert ls.refusal(FakeLogind(listed=("/s/1",)), ME, "alice", 1000) is None
    assert "no local session" in ls.refusal(FakeLogind(listed=("/s/1", "/s/2")), ME, "bob", 1001)


def test_ancestors_walk_up_to_init():
    chain = ls.ancestors(os.getpid())
    assert chain[0] == os.getpid() and chain[1] == os.getppid() and 1 not in chain
