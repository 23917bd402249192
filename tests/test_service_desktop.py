"""What the desktop app needs of the daemon, on a private bus with the real daemon (tests/ui_harness.py):
guided enrolment with EnrollStatus and PreviewFrame to the caller alone, the preview (which records
nothing and yields the camera), settings through the overlay, recent attempts, and polkit for
non-root callers."""

import contextlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from gi.repository import GLib
from service_harness import NAME, NOBODY, PATH, dbus_error, need, wait_for

from faceunlock.model import load_card

IFACE = "org.faceunlock.FaceUnlock1"
CLIENT = """
import json, sys
from gi.repository import Gio, GLib
flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
con = Gio.DBusConnection.new_for_address_sync(sys.argv[1], flags, None, None)
args = GLib.Variant.parse(None, sys.argv[3], None, None) if len(sys.argv) > 3 else None
try:
    reply = con.call_sync(
        "org.faceunlock.FaceUnlock1", "/org/faceunlock/FaceUnlock1", "org.faceunlock.FaceUnlock1",
        sys.argv[2], args, None, Gio.DBusCallFlags.NONE, 60000, None)
    print(json.dumps({"reply": reply.unpack(), "name": con.get_unique_name()}))
except GLib.Error as exc:
    print(json.dumps({"error": Gio.DBusError.get_remote_error(exc), "message": exc.message,
                      "name": con.get_unique_name()}))
"""


class Listener:
    """Unicast signals that reach one bus connection."""

    def __init__(self, con):
        self.con = con
        self.got: dict[str, list] = {"EnrollStatus": [], "PreviewFrame": [], "VerifyStatus": []}
        self.ids = [
            con.signal_subscribe(None, IFACE, name, PATH, None, 0, self.on_signal, None) for name in self.got
        ]

    def on_signal(self, con, sender, path, iface, name, params, data):
        self.got[name].append(params.unpack())

    def close(self):
        for i in self.ids:
            self.con.signal_unsubscribe(i)


def call(svc, method, args, reply_type, timeout_s=180):
    """An asynchronous call from the test's own connection; returns a box that fills when answered."""
    box = {}

    def done(con, result):
        try:
            box["reply"] = con.call_finish(result).unpack()
        except GLib.Error as exc:
            box["error"] = exc

    svc.client.con.call(
        NAME, PATH, IFACE, method, args, GLib.VariantType(reply_type), 0, timeout_s * 1000, None, done
    )
    return box


@contextlib.contextmanager
def as_nobody_at_the_seat(svc, session="c4"):
    """This process (and the clients it starts) in nobody's local session c4 (c5: remote)."""
    svc.logind().MapPid(os.getpid(), session)
    try:
        yield
    finally:
        svc.logind().MapPid(os.getpid(), "")


def nobody(svc, method, args=None):
    need("setpriv")
    cmd = [*NOBODY, sys.executable, "-c", CLIENT, svc.bus.address, method] + ([args] if args else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=svc.bus.env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_guided_enrolment_over_dbus_tells_only_its_caller(ui_service):
    svc = ui_service
    other = svc.bus.connect()
    mine, theirs = Listener(svc.client.con), Listener(other.con)
    try:
        svc.point_camera("poses")
        box = call(svc, "Enroll", GLib.Variant("(ssu)", ("dana", "default", 0)), "(u)")
        assert wait_for(lambda: box, 180), "no answer"
        assert box.get("reply") == (5,), box
        assert wait_for(lambda: any(s[-1] for s in mine.got["EnrollStatus"]), 5)
    finally:
        mine.close()
        theirs.close()
    statuses = mine.got["EnrollStatus"]
    stages = [s[1] for s in statuses]
    assert stages[0] == "straight" and {"left", "right"} <= set(stages), "asked in order (down came early)"
    assert statuses[-1][0] == "dana" and statuses[-1][1] == "completed" and statuses[-1][5] is True
    assert statuses[-1][2] == "5 anchors from straight, left, right, up, down"
    assert any("turn your head a little" in s[2] for s in statuses)
    frames = mine.got["PreviewFrame"]
    assert frames, "the caller sees the camera"
    picture = cv2.imdecode(np.frombuffer(bytes(frames[-1][0]), np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and max(picture.shape[:2]) <= 480
    assert frames[-1][1]["decision"] == "enrolling" and "pose" in frames[-1][1]
    assert theirs.got == {"EnrollStatus": [], "PreviewFrame": [], "VerifyStatus": []}, "nobody else is told"
    assert svc.proxy().ListEnrolled("dana") == ["default"]


def dana_enrolled(svc) -> None:
    """Enrol dana from the poses video unless an earlier test did, so each test also runs alone."""
    if not (svc.store / "dana.json").exists():
        svc.point_camera("poses")
        svc.proxy().Enroll("dana", "default", 0, timeout=180)


def test_another_persons_face_is_not_added_as_a_look(ui_service):
    """fprintd refuses a duplicate finger; the daemon refuses a look that is another person's face
    (nobody can be asked over D-Bus), and keeps one of the same person."""
    svc = ui_service
    dana_enrolled(svc)
    before = (svc.store / "dana.json").read_bytes()
    svc.point_camera("person-a")
    with pytest.raises(GLib.Error) as refused:
        svc.proxy().Enroll("dana", "second", 5, timeout=120)
    assert "does not resemble the enrolment of dana" in refused.value.message
    assert (svc.store / "dana.json").read_bytes() == before
    svc.point_camera("straight")
    try:
        assert svc.proxy().Enroll("dana", "second", 5, timeout=120) == 5
        assert svc.proxy().ListEnrolled("dana") == ["default", "second"]
    finally:
        svc.proxy().Delete("dana", "second")


def test_preview_streams_the_policy_and_records_nothing(ui_service):
    svc = ui_service
    proxy = svc.proxy()
    dana_enrolled(svc)
    before = proxy.RecentAttempts("dana")
    listener = Listener(svc.client.con)
    try:
        svc.point_camera("straight")
        box = call(svc, "Preview", GLib.Variant("(su)", ("dana", 60)), "(s)")
        assert wait_for(lambda: box, 120) and box.get("reply") == ("source-ended",), box
    finally:
        listener.close()
    figures = [f for _jpeg, f in listener.got["PreviewFrame"]]
    assert figures and len(figures) <= 60
    assert "match" in {f["decision"] for f in figures}, [f["decision"] for f in figures]
    judged = [f for f in figures if "distance" in f]
    assert judged and all(f["threshold"] > 0 for f in judged) and "liveness" in judged[0]
    assert proxy.RecentAttempts("dana") == before, "a preview is not an attempt"
    assert not (svc.store / "state" / "dana.json").exists(), "nor does it count toward a lockout"


def test_preview_ends_on_stop_and_when_the_camera_is_needed(ui_service):
    svc = ui_service
    dana_enrolled(svc)
    svc.point_camera("empty-long")
    listener = Listener(svc.client.con)
    try:
        box = call(svc, "Preview", GLib.Variant("(su)", ("dana", 120)), "(s)")
        assert wait_for(lambda: listener.got["PreviewFrame"], 60)
        svc.proxy().StopPreview()
        assert wait_for(lambda: box, 30) and box.get("reply") == ("stopped",), box
        box = call(svc, "Preview", GLib.Variant("(su)", ("erin", 120)), "(s)")
        n = len(listener.got["PreviewFrame"])
        assert wait_for(lambda: len(listener.got["PreviewFrame"]) > n, 60)
        other = svc.bus.connect()
        verify = {}

        def done(con, result):
            verify["reply"] = con.call_finish(result).unpack()

        other.con.call(
            NAME, PATH, IFACE, "Verify", GLib.Variant("(su)", ("dana", 2000)), None, 0, 60000, None, done
        )
        assert wait_for(lambda: box and verify, 60), (box, verify)
        assert box.get("reply") == ("camera-needed",) and verify["reply"][0] == "no-face", (
            "erin is not enrolled"
        )
    finally:
        listener.close()
    latest = svc.proxy().RecentAttempts("dana")[0]
    assert latest["user"] == "dana" and latest["decision"] == "no-face" and latest["service"] == "dbus"


def test_an_enrolment_ends_on_cancel_or_when_its_caller_leaves_and_stores_nothing(ui_service):
    svc = ui_service
    svc.point_camera("empty-long")
    listener = Listener(svc.client.con)
    try:
        box = call(svc, "Enroll", GLib.Variant("(ssu)", ("fred", "default", 0)), "(u)")
        assert wait_for(lambda: listener.got["EnrollStatus"], 60), "the enrolment started"
        other = svc.bus.connect()
        other.con.call_sync(NAME, PATH, IFACE, "CancelEnroll", None, None, 0, 10000, None)
        assert not wait_for(lambda: box, 3), "another connection cannot cancel it"
        svc.proxy().CancelEnroll()
        assert wait_for(lambda: box, 30), "cancelled at the next frame"
    finally:
        listener.close()
    assert "enrolment cancelled: nothing was stored" in box["error"].message
    assert listener.got["EnrollStatus"][-1][1:3] == ("cancelled", "enrolment cancelled")
    assert not (svc.store / "fred.json").exists()
    assert wait_for(lambda: svc.proxy().State == "idle", 10)

    leaving = svc.bus.connect()
    leaving.con.call(
        NAME, PATH, IFACE, "Enroll", GLib.Variant("(ssu)", ("fred", "", 0)), None, 0, 180000, None, None
    )
    assert wait_for(lambda: svc.proxy().State == "enrolling", 30)
    leaving.con.close_sync(None)
    assert wait_for(lambda: svc.proxy().State == "idle", 30), "a caller that left ends its enrolment"
    assert not (svc.store / "fred.json").exists()
    assert "enrolment of fred (default) cancelled by its caller" in svc.log_text()


def test_settings_are_written_to_the_overlay_and_take_effect(ui_service):
    svc = ui_service
    dana_enrolled(svc)
    proxy = svc.proxy()
    assert proxy.Settings["verify.security_level"] == "balanced" and proxy.Settings["pam.sudo"] is True
    proxy.SetSetting("verify.security_level", GLib.Variant("s", "strict"))
    proxy.SetSetting("pam.sudo", GLib.Variant("b", False))
    try:
        assert proxy.Settings["verify.security_level"] == "strict" and proxy.Settings["pam.sudo"] is False
        overlay = svc.store / "settings.json"
        assert json.loads(overlay.read_text()) == {"pam.sudo": False, "verify.security_level": "strict"}
        assert oct(overlay.stat().st_mode & 0o777) == "0o600"
        for key, value in (
            ("liveness.enabled", GLib.Variant("b", False)),
            ("insecure", GLib.Variant("b", True)),
        ):
            with pytest.raises(GLib.Error) as err:
                proxy.SetSetting(key, value)
            assert dbus_error(err.value) == f"{IFACE}.Error.InvalidArgument"
        with pytest.raises(GLib.Error) as err:
            proxy.SetSetting("verify.security_level", GLib.Variant("s", "lax"))
        assert dbus_error(err.value) == f"{IFACE}.Error.InvalidArgument"
        svc.point_camera("empty")
        decision, _reason, details = proxy.Verify("dana", 1000, timeout=60)
        strict = load_card().scan_threshold("strict")
        assert details["threshold"] == pytest.approx(strict), "the strict level's threshold is in use"
    finally:
        proxy.SetSetting("verify.security_level", GLib.Variant("s", "balanced"))
        proxy.SetSetting("pam.sudo", GLib.Variant("b", True))


def test_non_root_callers_need_polkit_and_act_on_themselves_only(ui_service):
    svc = ui_service
    dana_enrolled(svc)
    svc.point_camera("empty")
    svc.proxy().Verify("dana", 1000, timeout=60)
    polkit = svc.polkit()
    with as_nobody_at_the_seat(svc):
        polkit.SetAnswer("org.faceunlock.configure", "no")
        refused = nobody(svc, "SetSetting", "('pam.sudo', <false>)")
        assert refused["error"] == f"{IFACE}.Error.PermissionDenied", refused
        words = "not authorised to change face unlock's settings (polkit action org.faceunlock.configure)"
        assert words in refused["message"]
        action, kind, name, uid, flags = polkit.Checks()[-1]
        assert (action, kind, name, uid, flags) == (
            "org.faceunlock.configure",
            "system-bus-name",
            refused["name"],
            65534,
            1,
        )
        assert svc.proxy().Settings["pam.sudo"] is True
        polkit.SetAnswer("org.faceunlock.configure", "yes")
        assert "error" not in nobody(svc, "SetSetting", "('pam.sudo', <false>)")
        assert svc.proxy().Settings["pam.sudo"] is False
        svc.proxy().SetSetting("pam.sudo", GLib.Variant("b", True))
        checks = len(polkit.Checks())
        other = nobody(svc, "Enroll", "('dana', 'x', uint32 0)")
        assert other["error"] == f"{IFACE}.Error.PermissionDenied" and "only its own user" in other["message"]
        assert nobody(svc, "Delete", "('dana', '')")["error"] == f"{IFACE}.Error.PermissionDenied"
        assert nobody(svc, "RecentAttempts", "('dana',)")["error"] == f"{IFACE}.Error.PermissionDenied"
        assert len(polkit.Checks()) == checks, "another user's enrolments are refused before polkit is asked"
        polkit.SetAnswer("org.faceunlock.enroll", "challenge")
        svc.point_camera("poses")
        denied = nobody(svc, "Enroll", "('nobody', 'default', uint32 0)")
        assert (
            denied["error"] == f"{IFACE}.Error.PermissionDenied"
            and "authentication needed" in denied["message"]
        )
        assert not (svc.store / "nobody.json").exists()
        own = nobody(svc, "RecentAttempts", "('',)")["reply"][0]
        assert any(a["user"] == "dana" for a in svc.proxy().RecentAttempts(""))
        assert all(a["user"] == "nobody" for a in own), (
            "only its own attempts (the settings app's tests scan as nobody)"
        )
    with as_nobody_at_the_seat(svc, "c5"):
        remote = nobody(svc, "Preview", "('nobody', uint32 5)")
    assert remote["error"] == f"{IFACE}.Error.PermissionDenied", "not at the seat: no preview"


def nobody_runs(svc, *args: str, answer: str = "") -> subprocess.CompletedProcess:
    """`faceunlock ARGS` as nobody (no --store, no --source: the real paths, through the daemon)."""
    need("setpriv")
    cmd = [*NOBODY, sys.executable, "-m", "faceunlock", *args]
    env = {**svc.bus.env(), "HOME": "/nonexistent"}
    return subprocess.run(cmd, input=answer, capture_output=True, text=True, timeout=300, env=env)


def test_an_ordinary_user_enrols_and_removes_their_own_face_from_the_command_line(ui_service):
    """As fprintd-enroll: nobody's `faceunlock enroll` goes through the daemon (polkit asks for
    nobody's own password), shows its guidance, and stores nobody's face; another account's is
    refused, and a polkit refusal is said in words with the error status."""
    svc = ui_service
    polkit = svc.polkit()
    stored = svc.store / "nobody.json"

    def labels() -> list[str]:
        return svc.proxy().ListEnrolled("nobody") if stored.exists() else []

    had = labels()
    with as_nobody_at_the_seat(svc):
        try:
            svc.point_camera("poses")
            polkit.SetAnswer("org.faceunlock.enroll", "no")
            denied = nobody_runs(svc, "enroll", "--user", "nobody", "--label", "cli")
            assert denied.returncode == 3, denied.stderr
            assert "not authorised to enrol or delete a face" in denied.stderr
            other = nobody_runs(svc, "enroll", "--user", "dana")
            assert other.returncode == 3 and "only your own face" in other.stderr, other.stderr
            polkit.SetAnswer("org.faceunlock.enroll", "yes")
            done = nobody_runs(svc, "enroll", "--user", "nobody", "--label", "cli")
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "enrolled nobody (cli): 5 embeddings"
            assert "straight:" in done.stderr and "left:" in done.stderr, "the daemon's guidance is shown"
            listed = nobody_runs(svc, "list", "--user", "nobody")
            assert listed.returncode == 0 and "  cli" in listed.stdout.splitlines(), listed.stdout
            kept = nobody_runs(svc, "remove", "--user", "nobody", "--label", "cli", answer="n\n")
            assert kept.returncode == 1 and "cli" in svc.proxy().ListEnrolled("nobody")
            gone = nobody_runs(svc, "remove", "--user", "nobody", "--label", "cli", "-y")
            assert gone.returncode == 0, gone.stderr
            assert labels() == had
        finally:
            if "cli" in labels():
                svc.proxy().Delete("nobody", "cli")


@pytest.mark.parametrize(
    "action,method,args",
    [
        ("org.faceunlock.configure", "SetSetting", "('pam.sudo', <false>)"),
        ("org.faceunlock.enroll", "Delete", "('nobody', '')"),
    ],
)
def test_a_face_never_answers_faceunlocks_own_questions(ui_service, action, method, args):
    """While polkit asks a person about faceunlock's own enrolments or settings (the agent's PAM
    stack may start with face unlock), the daemon refuses every root Verify: the question takes a
    password. Afterwards face checks work again."""
    svc = ui_service
    polkit = svc.polkit()
    polkit.SetAnswer(action, "hold")
    need("setpriv")
    with as_nobody_at_the_seat(svc):
        asker = subprocess.Popen(
            [*NOBODY, sys.executable, "-c", CLIENT, svc.bus.address, method, args],
            stdout=subprocess.PIPE,
            text=True,
            env=svc.bus.env(),
        )
        try:
            assert wait_for(lambda: any(c[0] == action for c in polkit.Checks()[-1:]), 30)
            with pytest.raises(GLib.Error) as err:
                svc.proxy().Verify("dana", 2000, timeout=30)
            assert dbus_error(err.value) == f"{IFACE}.Error.PermissionDenied"
            assert "needs a password, never a face" in str(err.value)
            request = {"user": "nobody", "service": "sudo", "ruid": "0", "step": "check"}
            result, message = svc.proxy().Authenticate(request, 2000, timeout=30)
            assert result == "refused" and "needs a password" in message, (result, message)
        finally:
            polkit.Release(action, "no")
            answer = json.loads(asker.communicate(timeout=60)[0])
            polkit.SetAnswer(action, "no")
    assert answer["error"] == f"{IFACE}.Error.PermissionDenied", answer
    svc.point_camera("empty")
    try:
        assert svc.proxy().Verify("dana", 1000, timeout=60)[0] in ("no-face", "timeout")
    except GLib.Error as exc:
        assert dbus_error(exc) == f"{IFACE}.Error.NotEnrolled", "dana is enrolled by an earlier test"


def test_a_change_from_the_app_keeps_an_administrators_later_edit(ui_service):
    """The administrator edits the overlay after the daemon read it (`faceunlock config set` as
    root); a change from the app afterwards must not write the daemon's stale copy back."""
    from faceunlock import settings

    svc = ui_service
    proxy = svc.proxy()
    overlay = svc.store / "settings.json"
    settings.write(overlay, {"verify.security_level": "strict"})
    try:
        proxy.SetSetting("pam.sudo", GLib.Variant("b", False))
        assert json.loads(overlay.read_text()) == {"pam.sudo": False, "verify.security_level": "strict"}
        assert proxy.Settings["verify.security_level"] == "strict"
    finally:
        proxy.SetSetting("verify.security_level", GLib.Variant("s", "balanced"))
        proxy.SetSetting("pam.sudo", GLib.Variant("b", True))
