"""Authorisation: a non-root caller may verify only itself, from a local session; it may enrol and
delete only its own enrolments, and only when polkit authorises it.

The caller runs as nobody (setpriv) against the real daemon on the test bus;
the logind stand-in places it in nobody's local session c4 (or remote c5).
The bus policy lets the calls through; the daemon refuses with its own named
errors. This bus has no polkit, so enrolling is refused (fail closed);
tests/test_service_desktop.py grants and denies through a polkit stand-in.
The daemon's checks are also tested directly, with no bus at all.
"""

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from service_harness import NAME, NOBODY, PATH, as_nobody, dbus_send, need

from faceunlock.config import Config
from faceunlock.service import errors

IFACE = "org.faceunlock.FaceUnlock1"


@pytest.mark.parametrize(
    "method,args,error",
    [
        ("Enroll", ("string:nobody", "string:default", "uint32:1"), f"{IFACE}.Error.PermissionDenied"),
        ("Delete", ("string:alice", "string:"), f"{IFACE}.Error.PermissionDenied"),
        ("Verify", ("string:alice", "uint32:1000"), f"{IFACE}.Error.PermissionDenied"),
        ("ListEnrolled", ("string:alice",), f"{IFACE}.Error.PermissionDenied"),
        ("Verify", ("string:nobody", "uint32:1000"), f"{IFACE}.Error.NotEnrolled"),
        ("Verify", ("string:../etc", "uint32:1000"), f"{IFACE}.Error.InvalidArgument"),
        ("UnlockNow", ("string:c1",), f"{IFACE}.Error.NotArmed"),
    ],
)
def test_non_root_caller_gets_named_errors(service, method, args, error):
    with service.in_session("c4"):
        proc = dbus_send(service, method, *args)
    assert proc.returncode != 0 and f"Error {error}:" in proc.stderr, proc.stdout + proc.stderr


def pam_client_as_nobody(service, pam_service: str, user: str = "nobody") -> subprocess.CompletedProcess:
    """The PAM client as pam_exec runs it for a locker of nobody's, asked to verify `user`."""
    return as_nobody(
        service,
        "env",
        f"PAM_USER={user}",
        f"PAM_SERVICE={pam_service}",
        sys.executable,
        "-I",
        "-m",
        "faceunlock.service.pam_client",
        "--bus-address",
        service.bus.address,
    )


def test_non_root_pam_client_cannot_verify_another_user(service):
    """A PAM application running as nobody asks for alice: the daemon, which sees nobody's uid on
    the bus, refuses without a scan."""
    service.point_camera("live-a")
    before = service.done_scans("alice")
    with service.in_session("c4"):
        proc = pam_client_as_nobody(service, "sudo", user="alice")
    assert proc.returncode == 2 and "nobody may not authenticate as alice" in proc.stderr, proc.stderr
    assert service.done_scans("alice") == before


def test_a_non_root_pam_client_follows_the_settings_the_daemon_has_in_effect(service):
    """A user's own screen locker runs the client as that user, who may not read the daemon's
    state folder or its settings overlay; the daemon applies them. sudo is in the test config's
    [pam] services; the overlay's pam.sudo = false takes it out."""
    from gi.repository import GLib

    service.point_camera("live-a")
    proxy = service.proxy()
    proxy.SetSetting("pam.sudo", GLib.Variant("b", False))
    try:
        overlay = service.folder / "store" / "settings.json"
        assert overlay.exists() and as_nobody(service, "cat", str(overlay)).returncode != 0
        with service.in_session("c4"):
            off = pam_client_as_nobody(service, "sudo")
            su = pam_client_as_nobody(service, "su")
        assert off.returncode == 2 and "refused" in off.stderr, off.stderr
        quiet = "refused user=nobody service=pam:sudo step=check reason=''"
        assert quiet in service.log_text(), "a service left out is refused quietly"
        assert su.returncode != 2 and "not-enrolled" in su.stderr, su.stderr
        proxy.SetSetting("pam.sudo", GLib.Variant("b", True))
        with service.in_session("c4"):
            on = pam_client_as_nobody(service, "sudo")
        assert on.returncode != 2 and "not-enrolled" in on.stderr, on.stderr
    finally:
        proxy.SetSetting("pam.sudo", GLib.Variant("b", True))


def test_a_switch_for_a_service_the_config_does_not_list_cannot_be_turned_on(service):
    """The test config lists su but not polkit-1 or login: the settings app may turn su off and on
    again, but "on" for polkit or login would add a service, so the daemon refuses it by name."""
    from gi.repository import GLib

    proxy = service.proxy()
    assert proxy.Settings["pam.su"] is True and proxy.Settings["pam.polkit"] is False
    for key, service_name in (("pam.polkit", "polkit-1"), ("pam.login", "login")):
        with pytest.raises(GLib.Error) as err:
            proxy.SetSetting(key, GLib.Variant("b", True))
        assert (
            "InvalidArgument" in err.value.message
            and f"{service_name} is not in [pam] services" in err.value.message
        )
    assert proxy.Settings["pam.polkit"] is False
    proxy.SetSetting("pam.su", GLib.Variant("b", False))
    try:
        assert proxy.Settings["pam.su"] is False
        service.point_camera("live-a")
        with service.in_session("c4"):
            off = pam_client_as_nobody(service, "su")
        assert off.returncode == 2 and "refused" in off.stderr, off.stderr
    finally:
        proxy.SetSetting("pam.su", GLib.Variant("b", True))
    assert proxy.Settings["pam.su"] is True


def test_non_root_caller_from_a_remote_session_is_refused(service):
    """nobody, enrolled, asks to verify itself from an SSH-like session (c5), and from no session at
    all (a cron job, while nobody's own local session c4 is active): no scan, PermissionDenied."""
    service.point_camera("enrol-a")
    service.proxy().Enroll("nobody", "default", 2, timeout=120)
    try:
        before = service.done_scans("nobody")
        with service.in_session("c5"):
            proc = dbus_send(service, "Verify", "string:nobody", "uint32:5000")
        assert f"Error {IFACE}.Error.PermissionDenied:" in proc.stderr, proc.stderr
        assert "remote session" in proc.stderr
        nowhere = dbus_send(service, "Verify", "string:nobody", "uint32:5000")
        assert f"Error {IFACE}.Error.PermissionDenied:" in nowhere.stderr, nowhere.stderr
        assert "outside any login session" in nowhere.stderr, "a job with no session (cron) is refused"
        with service.in_session("c4"):
            local = dbus_send(service, "Verify", "string:nobody", "uint32:5000")
        assert local.returncode == 0 and '"match"' in local.stdout, local.stderr
        assert len(service.done_scans("nobody")) == len(before) + 1
    finally:
        service.proxy().Delete("nobody", "")


def get_property(service, method: str, *names: str) -> subprocess.CompletedProcess:
    args = [f"string:{IFACE}", *(f"string:{n}" for n in names)]
    return as_nobody(
        service,
        need("dbus-send"),
        "--system",
        "--print-reply",
        f"--dest={NAME}",
        PATH,
        f"org.freedesktop.DBus.Properties.{method}",
        *args,
    )


def test_non_root_reads_the_version_but_not_who_is_at_the_desk(service):
    """State (idle, verifying, enrolling, previewing) times who sits at the desk: not for anyone.
    Its changes are not broadcast either (the monitor below sees none while a scan runs)."""
    assert '"0.1.0"' in get_property(service, "Get", "Version").stdout
    denied = get_property(service, "Get", "State")
    assert denied.returncode != 0 and "org.freedesktop.DBus.Error.AccessDenied" in denied.stderr, denied
    everything = get_property(service, "GetAll")
    assert everything.returncode == 0 and '"Version"' in everything.stdout, everything.stderr
    assert '"State"' not in everything.stdout
    assert service.proxy().State == "idle"


def test_state_changes_are_not_broadcast(service):
    need("dbus-monitor")
    monitor = subprocess.Popen(
        [
            *NOBODY,
            "dbus-monitor",
            "--system",
            f"type='signal',sender='{NAME}',interface='org.freedesktop.DBus.Properties'",
        ],
        env=service.bus.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)
        service.point_camera("live-a")
        with service.in_session("c1"):
            assert service.proxy().Verify("alice", 3000, timeout=60)[0] in ("match", "no-match", "no-face")
        time.sleep(0.5)
    finally:
        monitor.terminate()
        out = monitor.communicate(timeout=10)[0]
    assert "PropertiesChanged" not in out, out
    assert "State" not in out


class FakeBus:
    """Answers GetConnectionUnixUser with a fixed uid."""

    def __init__(self, uid: int):
        self.dbus = SimpleNamespace(GetConnectionUnixUser=lambda sender: uid)


class FakeCall:
    sender = ":1.42"

    def reply(self, *values):
        raise AssertionError("a refused call must not be answered with a result")


@pytest.fixture
def daemon_object():
    from faceunlock.service.daemon import FaceUnlockService

    level = lambda _level: 0.4  # noqa: E731
    card = SimpleNamespace(threshold=level, scan_threshold=level, attempt=None, name="test", sha256="0" * 64)

    def make(uid: int):
        return FaceUnlockService(FakeBus(uid), Config(), card, pipeline=None, store=None)

    return make


@pytest.mark.parametrize(
    "method,args",
    [("Enroll", ("alice", "default", 0)), ("Delete", ("alice", "")), ("Verify", ("root", 1000))],
)
def test_daemon_refuses_without_the_bus_policy(daemon_object, method, args):
    with pytest.raises(errors.PermissionDenied):
        getattr(daemon_object(1000), method)(FakeCall(), *args)


def test_unknown_caller_is_refused():
    from faceunlock.service.auth import caller_uid

    def broken(sender):
        raise RuntimeError("no such name")

    bus = SimpleNamespace(dbus=SimpleNamespace(GetConnectionUnixUser=broken))
    with pytest.raises(errors.PermissionDenied):
        caller_uid(bus, ":1.9")
    with pytest.raises(errors.PermissionDenied):
        caller_uid(bus, "")
