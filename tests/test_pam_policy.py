"""The daemon's rules for a PAM request (faceunlock.service.pam_policy), item by item.

End to end, through libpam, pam_faceunlock.so and the daemon: tests/test_service_pam.py.
"""

import os

import pytest

from faceunlock.config import PAM_SERVICES, PamConfig
from faceunlock.decision import Decision
from faceunlock.service import pam_policy as pp

LOCAL = PamConfig(services=("sudo", "su", "gdm-password"), confirm=("sudo",))


def items(**kw):
    raw = {"user": "alice", "service": "su", "ruid": "0", **kw}
    return pp.parse(raw, 0)


@pytest.mark.parametrize(
    "extra,refused",
    [
        ({}, False),
        ({"rhost": "localhost"}, True),
        ({"rhost": "127.0.0.1", "tty": ":0"}, False),
        ({"rhost": "::1"}, False),
        ({"rhost": "::ffff:127.0.0.1"}, False),
        ({"rhost": ":0"}, False),
        ({"rhost": ":1.0"}, False),
        ({"rhost": "::ffff:10.0.0.5"}, True),
        ({"rhost": "127.evil.example"}, True),
        ({"rhost": ":0evil"}, True),
        ({"rhost": "localhost.evil.example"}, True),
        ({"rhost": " 127.0.0.1"}, True),
        ({"rhost": "10.1.2.3"}, True),
        ({"rhost": "example.org"}, True),
        ({"service": "sshd"}, True),
        ({"service": "ssh"}, True),
        ({"ssh": "1"}, True),
        ({"tty": "ssh"}, True),
    ],
)
def test_remote_and_ssh_logins_are_refused(extra, refused):
    cfg = PamConfig(services=("su", "sshd", "ssh"))
    assert (pp.refusal(items(**extra), cfg) is not None) == refused


def test_ssh_services_are_remote_even_when_listed_by_hand():
    """REMOTE_SERVICES keeps sshd out of [pam] services; the rule holds even if it got in."""
    assert pp.refusal(items(service="ssh"), PamConfig(services=("ssh",))) == "SSH login"


@pytest.mark.parametrize(
    "service,refused",
    [("gdm-password", False), ("sudo", True), ("su", True), ("polkit-1", True), ("chfn", True), ("", True)],
)
def test_only_the_lock_screens_by_default(service, refused):
    """A plain colour camera authenticates passively: sudo, su, login and polkit are opt-in."""
    assert (pp.refusal(items(service=service), PamConfig()) is not None) == refused
    assert "sudo" not in PAM_SERVICES and "polkit-1" not in PAM_SERVICES


def test_a_service_left_out_is_refused_quietly_and_off_is_off():
    assert pp.refusal(items(service="chfn"), LOCAL) == ""
    assert "switched off" in pp.refusal(items(), PamConfig(enabled=False, services=("su",)))


def test_the_requester_is_the_real_uid_when_not_root_else_pam_ruser():
    me = os.getuid() if os.getuid() != 0 else 65534
    name = pp.name_of(me)
    got = pp.refusal(items(user="bob", ruid=str(me), ruser="bob"), LOCAL)
    assert got == f"{name} may not authenticate as bob by face ([pam] other_user)"
    assert "alice may not" in pp.refusal(items(user="bob", ruser="alice"), LOCAL)
    assert pp.refusal(items(user="bob", ruser="bob"), LOCAL) is None
    assert pp.refusal(items(user="bob"), LOCAL) is None
    assert pp.refusal(items(user="bob", ruser="alice"), PamConfig(services=("su",), other_user=True)) is None


def test_a_non_root_caller_speaks_only_for_itself():
    """A locker running PAM as the user: its bus uid is its real uid whatever it says, and it can
    never claim that the user confirmed."""
    got = pp.parse({"user": "alice", "service": "swaylock", "ruid": "0", "confirmed": "1"}, 1000)
    assert got.ruid == 1000 and got.confirmed is False
    assert pp.parse({"user": "alice", "ruid": "0", "confirmed": "1"}, 0).confirmed is True


@pytest.mark.parametrize(
    "raw,why",
    [
        ({"service": "su"}, "no user"),
        ({"user": "alice", "ruid": "-1"}, "is not a uid"),
        ({"user": "alice", "ruid": "1" * 20}, "is not a uid"),
        ({"user": "alice", "ruid": "0", "extra": "x"}, "unknown item"),
        ({"user": "alice", "ruid": "0", "step": "later"}, "step must be"),
        ({"user": "a" * 300, "ruid": "0"}, "longer than"),
        ({"user": "al\0ice", "ruid": "0"}, "NUL"),
    ],
)
def test_bad_items_are_named(raw, why):
    with pytest.raises(ValueError, match=why):
        pp.parse(raw, 0)


def test_confirm_mode_needs_a_root_callers_confirmation():
    assert pp.needs_confirmation(items(service="sudo"), LOCAL)
    assert not pp.needs_confirmation(items(service="sudo", confirmed="1"), LOCAL)
    assert not pp.needs_confirmation(items(service="su"), LOCAL)


@pytest.mark.parametrize(
    "decision,liveness,result,text",
    [
        ("match", "pass", "match", "Face recognised."),
        ("no-match", "pass", "no-match", "Face not recognised."),
        ("no-match", "fail", "no-match", "looks like a photo or a screen"),
        ("no-match", "doubt", "no-match", "looks like a photo or a screen"),
        ("no-face", "not-checked", "no-face", "No face in view."),
        ("timeout", "not-checked", "timeout", "in time"),
        ("locked-out", "not-checked", "locked-out", "locked"),
        ("error", "not-checked", "error", "log says why"),
    ],
)
def test_answers_in_plain_words(decision, liveness, result, text):
    got = pp.answer(Decision(user="alice", decision=decision, liveness=liveness, reason="r"))
    assert got[0] == result and text in got[1]
