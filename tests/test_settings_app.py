"""faceunlock-settings for real: the GTK 4 app under Xvfb, run as an ordinary user (nobody) in a local
session, talking to the real daemon on the private bus (tests/ui_harness.py) with a polkit stand-in
that grants or denies. It is driven through the accessibility bus (tests/atspi_driver.py), as a
screen reader would, and photographed from Xvfb's frame buffer.

Set FACEUNLOCK_SCREENSHOTS=docs/screenshots to refresh the README's pictures.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from gi.repository import GLib
from missing import unavailable
from service_harness import ROOT, Bus, need, stop, wait_for
from ui_harness import pixelate_faces, serving

from faceunlock.model import load_card
from faceunlock.testing.service import die_with_parent

NOBODY = 65534
WIDTH, HEIGHT = 1024, 860
PAM_SET_UP = ("sudo", "su", "gdm-password")
"""The services whose PAM stack includes face unlock in the app's --pam-dir; polkit-1 and login
are in the daemon's [pam] services but not set up there."""
PAM_STACK = "auth [success=end default=ignore] pam_faceunlock.so\nauth required pam_unix.so\n"


def as_nobody() -> None:
    die_with_parent()
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def read_xwd(path: Path) -> np.ndarray:
    """Xvfb's frame buffer file (XWD, 24-bit depth in 32-bit pixels) as an RGB image."""
    data = path.read_bytes()
    fields = struct.unpack(">25I", data[:100])
    header_size, width, height = fields[0], fields[4], fields[5]
    byte_order, bits_per_pixel, bytes_per_line, ncolors = fields[7], fields[11], fields[12], fields[19]
    assert bits_per_pixel == 32, f"frame buffer of {bits_per_pixel} bits per pixel"
    start = header_size + 12 * ncolors
    pixels = np.frombuffer(data, np.uint8, bytes_per_line * height, start).reshape(height, bytes_per_line)
    pixels = pixels[:, : width * 4].reshape(height, width, 4)
    return pixels[..., [2, 1, 0]] if byte_order == 0 else pixels[..., [1, 2, 3]]


def x_accepts(display: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(f"/tmp/.X11-unix/X{display}")
        except OSError:
            return False
    return True


class Desktop:
    """Xvfb, a session bus and the app, all as nobody but Xvfb; the AT-SPI driver speaks for the test."""

    def __init__(self, folder: Path, system_bus: str):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.fb = folder / "fb"
        self.fb.mkdir()
        home = folder / "home"
        runtime = folder / "runtime"
        for d in (home, runtime):
            d.mkdir(mode=0o700)
            os.chown(d, NOBODY, NOBODY)
        self.pam_dir = folder / "pam.d"
        self.pam_dir.mkdir()
        for service in PAM_SET_UP:
            (self.pam_dir / service).write_text(PAM_STACK)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "DBUS_SYSTEM_BUS_ADDRESS": system_bus,
            "LANG": "C.UTF-8",
            "GSK_RENDERER": "cairo",
            "GTK_A11Y": "atspi",
            "GDK_BACKEND": "x11",
        }

    def start(self) -> None:
        read, write = os.pipe()
        xvfb = subprocess.Popen(
            [
                need("Xvfb"),
                "-displayfd",
                str(write),
                "-screen",
                "0",
                f"{WIDTH}x{HEIGHT}x24",
                "-fbdir",
                str(self.fb),
                "-ac",
                "-noreset",
                "-br",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "xvfb.log", "wb"),
            preexec_fn=die_with_parent,
        )
        os.close(write)
        self.procs.append(xvfb)
        with os.fdopen(read) as fh:
            display = fh.readline().strip()
        assert display, f"Xvfb did not start: {self.app_log()}"
        self.env["DISPLAY"] = f":{display}"
        assert wait_for(lambda: x_accepts(display), 20), f"Xvfb does not accept connections: {self.app_log()}"
        bus = subprocess.Popen(
            [need("dbus-daemon"), "--session", "--nofork", "--print-address=1", "--nopidfile"],
            stdout=subprocess.PIPE,
            text=True,
            env=self.env,
            preexec_fn=as_nobody,
        )
        self.procs.append(bus)
        self.env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        self.log = open(self.folder / "app.log", "wb")
        app = subprocess.Popen(
            [sys.executable, "-m", "faceunlock.gui.app", "--pam-dir", str(self.pam_dir)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=as_nobody,
        )
        self.procs.append(app)
        self.app = app
        self.driver = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "atspi_driver.py"), "Face unlock"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=as_nobody,
        )
        self.procs.append(self.driver)
        line = self.driver.stdout.readline()
        assert line and json.loads(line).get("ready"), f"the app did not show its window:\n{self.app_log()}"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        if getattr(self, "log", None):
            self.log.close()

    def app_log(self) -> str:
        logs = [
            (self.folder / n).read_text(errors="replace")
            for n in ("app.log", "xvfb.log")
            if (self.folder / n).exists()
        ]
        return "\n--- Xvfb:\n".join(logs)

    def ask(self, **cmd) -> dict:
        self.driver.stdin.write(json.dumps(cmd) + "\n")
        self.driver.stdin.flush()
        reply = json.loads(self.driver.stdout.readline())
        assert "error" not in reply, f"{reply}\n{self.app_log()}"
        return reply

    def find(self, role: str, name: str) -> dict:
        return self.ask(cmd="find", role=role, name=name)

    def act(self, role: str, name: str) -> None:
        reply = self.ask(cmd="act", role=role, name=name)
        assert reply["done"], (role, name, reply, self.ask(cmd="dump")["tree"])

    def act_until(self, role: str, name: str, predicate, timeout: float, what: str):
        """Act on a node, again while it is still there and predicate() is not yet true: a list the
        app rebuilds (a second listing arriving late, under load) can leave the node acted on a
        stale copy that is no longer on screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ask(cmd="act", role=role, name=name)
            try:
                return self.wait(predicate, min(5.0, max(deadline - time.monotonic(), 0.1)), what)
            except AssertionError:
                continue
        return self.wait(predicate, 0.1, what)

    def label(self, prefix: str) -> str:
        names = [n for n in self.ask(cmd="names", role="label")["names"] if n and n.startswith(prefix)]
        return names[0] if names else ""

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(
            f"timed out waiting for {what}\n{self.ask(cmd='dump')['tree']}\n{self.app_log()}"
        )

    def screenshot(self, name: str, out: Path, settle: float = 0.5) -> Path:
        """The app's window, cut out of the screen (the root window is black)."""
        time.sleep(settle)
        screen = read_xwd(self.fb / "Xvfb_screen0")
        ys, xs = np.nonzero(screen.max(axis=2) > 8)
        window = screen[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        path = out / f"{name}.png"
        assert cv2.imwrite(str(path), cv2.cvtColor(window, cv2.COLOR_RGB2BGR))
        return path


def need_gtk() -> None:
    need("Xvfb")
    try:
        import gi

        gi.require_version("Gtk", "4.0")
        gi.require_version("Adw", "1")
        gi.require_version("Atspi", "2.0")
    except ValueError as exc:
        unavailable(f"GTK 4, libadwaita or AT-SPI missing: {exc}")


@pytest.fixture(scope="module")
def desktop(ui_service):
    need_gtk()
    folder = Path(tempfile.mkdtemp(prefix="faceunlock-desktop-"))
    os.chmod(folder, 0o755)
    ui_service.logind().MapPid(os.getpid(), "c4")
    desk = Desktop(folder, ui_service.bus.address)
    try:
        desk.start()
        yield desk
    finally:
        desk.stop()
        ui_service.logind().MapPid(os.getpid(), "")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    wanted = os.environ.get("FACEUNLOCK_SCREENSHOTS")
    out = tmp_path_factory.mktemp("screenshots")
    yield out
    if wanted:
        target = Path(wanted)
        target.mkdir(parents=True, exist_ok=True)
        for png in out.glob("*.png"):
            shutil.copy(png, target / png.name)
            pixelate_faces(target / png.name)


def page(desk: Desktop, title: str) -> None:
    desk.act("page tab", title)


def test_enrol_through_polkit_and_see_the_progress(ui_service, desktop, shots):
    svc, desk = ui_service, desktop
    polkit = svc.polkit()
    if not (svc.store / "nobody.json").exists():
        desk.wait(lambda: "selected" in desk.find("page tab", "Face")["states"], 20, "first run on Face")
    page(desk, "Face")
    desk.wait(lambda: desk.find("list item", "No face enrolled yet")["found"], 20, "the empty list")
    svc.point_camera("poses")
    polkit.SetAnswer("org.faceunlock.enroll", "no")
    desk.act("push button", "Enrol my face")
    status = desk.wait(lambda: desk.label("Enrolment: "), 30, "the refusal")
    refused = "not authorised to enrol or delete a face (polkit action org.faceunlock.enroll)"
    assert status == f"Enrolment: {refused}"
    assert not (svc.store / "nobody.json").exists()
    assert polkit.Checks()[-1][2:4] != ("", 0) and polkit.Checks()[-1][3] == NOBODY

    polkit.SetAnswer("org.faceunlock.enroll", "yes")
    desk.act("push button", "Enrol my face")
    desk.wait(lambda: desk.label("✓ straight"), 90, "the first pose")
    assert "sensitive" not in desk.find("push button", "Enrol my face")["states"], "one enrolment at a time"
    shot = desk.screenshot("enrolment", shots)
    assert cv2.imread(str(shot)).shape[0] > 400
    assert desk.label("Turn your head") or desk.label("Tilt your head") or desk.label("✓ left"), (
        "guidance shown"
    )
    desk.wait(lambda: desk.label("Enrolled: "), 180, "the end of the enrolment")
    assert desk.label("Enrolled: ") == "Enrolled: 5 views of your face"
    assert all(desk.label(f"✓ {pose}") for pose in ("straight", "left", "right", "up", "down"))
    desk.wait(lambda: desk.find("push button", "Delete default")["found"], 20, "the enrolment in the list")
    assert (svc.store / "nobody.json").exists()
    desk.screenshot("enrolments", shots)


def test_cancel_an_enrolment(ui_service, desktop):
    svc, desk = ui_service, desktop
    svc.polkit().SetAnswer("org.faceunlock.enroll", "yes")
    stored = svc.store / "nobody.json"
    before = stored.read_bytes() if stored.exists() else None
    svc.point_camera("empty-long")
    page(desk, "Face")
    desk.act("push button", "Enrol my face")
    desk.wait(lambda: svc.proxy().State == "enrolling", 60, "the enrolment to start")
    desk.act("push button", "Cancel the enrolment")
    desk.wait(lambda: desk.label("Cancelled: "), 30, "the cancelled enrolment")
    assert desk.label("Cancelled: ") == "Cancelled: nothing was stored"
    assert wait_for(lambda: svc.proxy().State == "idle", 10)
    assert (stored.read_bytes() if stored.exists() else None) == before, "nothing was stored"
    assert not desk.find("push button", "Cancel the enrolment")["found"], "Cancel goes with the enrolment"
    assert "sensitive" in desk.find("push button", "Enrol my face")["states"]


def nobody_enrolled(svc) -> None:
    """Enrol nobody from the poses video unless an earlier test did, so each test also runs alone."""
    if not (svc.store / "nobody.json").exists():
        svc.point_camera("poses")
        svc.proxy().Enroll("nobody", "default", 0, timeout=180)


def test_live_preview_shows_the_decision(ui_service, desktop, shots):
    svc, desk = ui_service, desktop
    nobody_enrolled(svc)
    svc.point_camera("straight-long")
    page(desk, "Preview")
    desk.act("push button", "Start preview")
    desk.wait(lambda: "match" in desk.label("Decision: "), 90, "a match in the preview")
    distance = desk.label("Distance: ")
    value = float(distance.split()[1])
    threshold = load_card().scan_threshold("balanced")
    assert value < threshold and f"threshold {threshold:.3f}" in distance
    assert desk.label("Liveness: ").startswith("Liveness: ")
    assert desk.label("Frame rate: ") != "Frame rate: – fps"
    shot = desk.screenshot("preview", shots, settle=0.1)
    assert np.std(cv2.imread(str(shot))) > 20, "a picture, not a blank window"
    desk.act("push button", "Stop preview")
    desk.wait(lambda: desk.find("push button", "Start preview")["found"], 30, "the preview to stop")
    assert svc.proxy().RecentAttempts("nobody") == [], "a preview is not an attempt"


def test_settings_follow_what_the_daemon_allows(ui_service, desktop, shots):
    svc, desk = ui_service, desktop
    nobody_enrolled(svc)
    polkit = svc.polkit()
    page(desk, "Settings")
    sudo = "Use face unlock for sudo*"
    desk.wait(lambda: "checked" in desk.find("check box", sudo)["states"], 20, "sudo on")
    assert "pressed" in desk.find("push button", "Security level balanced")["states"]
    for what in ("administrator prompts", "console login"):
        states = desk.find("check box", f"Use face unlock for {what}*")["states"]
        assert "checked" not in states and "sensitive" not in states, (what, states)
    assert svc.proxy().Settings["pam.polkit"] is True, "on in the daemon, but PAM does not ask for a face"
    not_set_up = [n for n in desk.ask(cmd="names", role="label")["names"] if n and n.startswith("Not set up")]
    assert not_set_up == ["Not set up: sudo pam-auth-update --enable faceunlock"] * 2
    polkit.SetAnswer("org.faceunlock.configure", "no")
    desk.act("check box", sudo)
    desk.wait(lambda: desk.label("Not changed: "), 30, "the refusal")
    assert "checked" in desk.find("check box", sudo)["states"], "a refused change springs back"
    assert not (svc.store / "settings.json").exists() or svc.proxy().Settings["pam.sudo"] is True

    polkit.SetAnswer("org.faceunlock.configure", "yes")
    desk.act("check box", sudo)
    desk.wait(lambda: "checked" not in desk.find("check box", sudo)["states"], 30, "sudo off")
    desk.act("push button", "Security level strict")
    desk.wait(lambda: svc.proxy().Settings["verify.security_level"] == "strict", 30, "strict")
    assert "pressed" in desk.find("push button", "Security level strict")["states"]
    assert "pressed" not in desk.find("push button", "Security level balanced")["states"]
    assert json.loads((svc.store / "settings.json").read_text()) == {
        "pam.sudo": False,
        "verify.security_level": "strict",
    }
    svc.point_camera("straight")
    assert svc.proxy().Verify("nobody", 20000, timeout=60)[0] == "match"
    desk.act("push button", "Refresh")
    desk.wait(lambda: desk.find("list item", "match · dbus · *")["found"], 20, "the attempt in the list")
    desk.screenshot("settings", shots)
    svc.proxy().SetSetting("pam.sudo", GLib.Variant("b", True))
    desk.wait(lambda: "checked" in desk.find("check box", sudo)["states"], 20, "the change made elsewhere")
    svc.proxy().SetSetting("verify.security_level", GLib.Variant("s", "balanced"))

    desk.act("check box", "Face unlock*")
    desk.wait(lambda: svc.proxy().Settings["pam.enabled"] is False, 30, "face unlock off")
    desk.wait(lambda: "sensitive" not in desk.find("check box", sudo)["states"], 20, "the switches greyed")
    assert "checked" in desk.find("check box", sudo)["states"], "sudo keeps its own setting"
    desk.act("check box", "Face unlock*")
    desk.wait(lambda: "sensitive" in desk.find("check box", sudo)["states"], 30, "face unlock on again")
    assert svc.proxy().Settings["pam.enabled"] is True


def test_delete_from_the_list(ui_service, desktop):
    svc, desk = ui_service, desktop
    svc.polkit().SetAnswer("org.faceunlock.enroll", "yes")
    if not (svc.store / "nobody.json").exists():
        svc.point_camera("poses")
        svc.proxy().Enroll("nobody", "default", 0, timeout=180)
    page(desk, "Preview")
    page(desk, "Face")
    desk.wait(lambda: desk.find("push button", "Delete default")["found"], 20, "the enrolment in the list")
    empty = lambda: desk.find("list item", "No face enrolled yet")["found"]  # noqa: E731
    desk.act_until("push button", "Delete default", empty, 30, "the empty list")
    assert not (svc.store / "nobody.json").exists()
    assert wait_for(lambda: desk.app.poll() is None, 1), "the app is still running"


def test_an_enrolment_of_an_older_model_asks_to_enrol_again(ui_service, desktop):
    """After an upgrade that changed the face model, the Face page says so instead of an error."""
    from faceunlock.gui.face_page import STALE
    from faceunlock.store import TemplateStore

    svc, desk = ui_service, desktop
    path = svc.store / "nobody.json"
    if path.exists():
        svc.proxy().Delete("nobody", "")
    older = TemplateStore(svc.store, model_sha256="0" * 64)
    older.add("nobody", "default", np.full((3, 128), 0.1, np.float32))
    try:
        page(desk, "Settings")
        page(desk, "Face")
        desk.wait(lambda: desk.find("list item", STALE)["found"], 20, "the older enrolment")
        assert not desk.label("Enrolments: "), "no raw error"
    finally:
        path.unlink(missing_ok=True)


def test_a_learned_look_is_listed_as_learned_and_can_be_deleted(ui_service, desktop):
    """A look learned from a password after a near miss shows as such on the Face page, apart from
    the face the person enrolled, with its own delete button."""
    from faceunlock.gui.face_page import LEARNED
    from faceunlock.model import load_card
    from faceunlock.store import TemplateStore

    svc, desk = ui_service, desktop
    svc.polkit().SetAnswer("org.faceunlock.enroll", "yes")
    if not (svc.store / "nobody.json").exists():
        svc.point_camera("poses")
        svc.proxy().Enroll("nobody", "default", 0, timeout=180)
    card = load_card()
    store = TemplateStore(svc.store, model_sha256=card.sha256, embedding=card.embedding_id)
    learned = store.learn("nobody", store.load("nobody").enrolments[0].embeddings[:3])
    page(desk, "Preview")
    page(desk, "Face")
    desk.wait(lambda: desk.find("push button", f"Delete {learned}")["found"], 20, "the learned look")
    assert desk.label(LEARNED) == LEARNED and desk.find("push button", "Delete default")["found"]
    assert desk.label("enrolled face") == "enrolled face"
    gone = lambda: not desk.find("push button", f"Delete {learned}")["found"]  # noqa: E731
    desk.act_until("push button", f"Delete {learned}", gone, 30, "the look deleted")
    assert store.load("nobody").labels() == ["default"]


def test_without_the_daemon_the_app_says_what_to_do_and_retry_works(ui_service):
    """A bus without faceunlock (not installed yet): the app says so in words, with Retry; once the
    daemon is there, Retry brings the pages back."""
    need_gtk()
    folder = Path(tempfile.mkdtemp(prefix="faceunlock-nodaemon-"))
    os.chmod(folder, 0o755)
    (folder / "desk").mkdir()
    try:
        with Bus(folder) as bus:
            desk = Desktop(folder / "desk", bus.address)
            try:
                desk.start()
                said = desk.wait(lambda: desk.label("The face unlock service"), 30, "the missing daemon")
                assert said.startswith("The face unlock service is not installed") and "Retry" in said
                assert desk.find("push button", "Retry")["found"]
                with serving(bus, folder, ui_service.frames):
                    desk.act("push button", "Retry")
                    desk.wait(lambda: not desk.label("The face unlock service"), 30, "the problem gone")
                    desk.wait(lambda: desk.find("list item", "No face enrolled yet")["found"], 20, "the page")
            finally:
                desk.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_faceunlock_test_opens_its_window_on_the_display(ui_service, desktop):
    """`faceunlock test` where a display exists: a GTK window shows the frames until the source ends."""
    env = {**os.environ, "DISPLAY": desktop.env["DISPLAY"], "GSK_RENDERER": "cairo", "GDK_BACKEND": "x11"}
    screen = desktop.fb / "Xvfb_screen0"
    before = read_xwd(screen).astype(int)
    cmd = [sys.executable, "-m", "faceunlock", "test", "--source", str(ui_service.frames["straight"])]
    proc = subprocess.Popen([*cmd, "--threads", "1"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        changed = lambda: np.abs(read_xwd(screen).astype(int) - before).mean() > 5  # noqa: E731
        assert wait_for(lambda: proc.poll() is not None or changed(), 90), "nothing new on the screen"
        assert proc.poll() is None, proc.stderr.read()
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    finally:
        stop(proc)
