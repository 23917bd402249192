"""The service on a private bus, for the tests and the benchmarks; every part started is stopped.

- a private system bus: a real dbus-daemon on a unix socket, with the default
  policy of Debian's system.conf and the project's own bus policy included;
- the logind stand-in (faceunlock.testing.logind_standin) owning org.freedesktop.login1 and,
  for which unit a process runs in, org.freedesktop.systemd1 (the bus also lets
  faceunlock.testing.polkit_standin own org.freedesktop.PolicyKit1);
- the real daemon (`python -I -m faceunlock daemon`, as the unit runs it) on
  that bus, whose camera is a symlink that callers point at folders of real
  video frames. A folder is not a camera device, so the config says
  `insecure = true`, as a test rig must. The daemon is started with
  PYTHONPATH and GI_TYPELIB_PATH pointing at a folder of planted code, which
  must change nothing (tests/test_service_isolation.py checks it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faceunlock.paths import package_data
from faceunlock.service.names import BUS_NAME as NAME
from faceunlock.service.names import OBJECT_PATH as PATH

VENV_BIN = Path(sys.executable).parent
SESSIONS = (
    "c1:1000:alice",
    "c2:1001:bob",
    "c3:1000:alice:remote",
    "c4:65534:nobody",
    "c5:65534:nobody:remote",
)
PAM_SERVICES = (
    "faceunlock-test",
    "faceunlock-test-down",
    "faceunlock-test-nobus",
    "faceunlock-confirm",
    "sudo",
    "su",
    "swaylock",
)
CONFIRM_SERVICES = ("faceunlock-confirm",)

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>
  <policy user="root">
    <allow own="org.freedesktop.login1"/>
    <allow send_destination="org.freedesktop.login1"/>
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
    <allow own="org.freedesktop.systemd1"/>
    <allow send_destination="org.freedesktop.systemd1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"
           send_interface="org.freedesktop.PolicyKit1.Authority"/>
    <!-- As systemd-logind's own policy: anyone may look sessions up and read their properties. -->
    <allow send_destination="org.freedesktop.login1" send_interface="org.freedesktop.login1.Manager"
           send_member="GetSession"/>
    <allow send_destination="org.freedesktop.login1" send_interface="org.freedesktop.login1.Manager"
           send_member="GetSessionByPID"/>
    <allow send_destination="org.freedesktop.login1" send_interface="org.freedesktop.login1.Manager"
           send_member="GetUserByPID"/>
    <allow send_destination="org.freedesktop.login1" send_interface="org.freedesktop.login1.Manager"
           send_member="ListSessions"/>
    <allow send_destination="org.freedesktop.login1" send_interface="org.freedesktop.DBus.Properties"
           send_member="Get"/>
    <allow send_destination="org.freedesktop.login1" send_interface="org.freedesktop.DBus.Properties"
           send_member="GetAll"/>
    <!-- As systemd's own policy: anyone may ask which unit a process runs in and read unit properties. -->
    <allow send_destination="org.freedesktop.systemd1" send_interface="org.freedesktop.systemd1.Manager"
           send_member="GetUnitByPID"/>
    <allow send_destination="org.freedesktop.systemd1" send_interface="org.freedesktop.systemd1.Manager"
           send_member="GetUnit"/>
    <allow send_destination="org.freedesktop.systemd1" send_interface="org.freedesktop.DBus.Properties"
           send_member="Get"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""

DAEMON_CONFIG = """insecure = true

[camera]
source = "{camera}"

[store]
path = "{store}"

[verify]
timeout = 20.0
max_failures = 100

[daemon]
auto_unlock = {auto_unlock}
grace_period = {grace}
max_scans_per_lock = 2
scan_timeout = 20.0
queue_size = 1
threads = 1

[pam]
services = {services}
confirm = {confirm}
"""
GRACE_S = 2.0


class MissingTool(RuntimeError):
    """A system tool the harness runs is not installed."""


def tool(name: str) -> str:
    """The path of a system tool, or MissingTool."""
    path = shutil.which(name)
    if path is None:
        raise MissingTool(f"{name} is not installed (scripts/setup.sh installs it)")
    return path


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM if the test process dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def stop(proc: subprocess.Popen | None) -> None:
    """Terminate a process we started, then kill it if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class Bus:
    """A private dbus-daemon with the system bus's policy. Use as a context manager."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.socket = folder / "system_bus_socket"
        self.address = f"unix:path={self.socket}"
        self.proc = None

    def __enter__(self) -> Bus:
        config = self.folder / "bus.conf"
        policy = package_data("dbus", "org.faceunlock.FaceUnlock1.conf")
        config.write_text(BUS_CONFIG.format(socket=self.socket, policy=policy))
        self.proc = subprocess.Popen(
            [tool("dbus-daemon"), f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        if not ready or not self.proc.stdout.readline().strip():
            stop(self.proc)
            raise RuntimeError(f"dbus-daemon did not start: {self.proc.stderr.read()}")
        return self

    def __exit__(self, *exc) -> None:
        stop(self.proc)

    def env(self) -> dict:
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}

    def connect(self):
        import pydbus

        return pydbus.connect(self.address)


def wait_for(predicate, timeout: float, step: float = 0.05) -> bool:
    """Poll predicate, dispatching this process's D-Bus signals meanwhile."""
    from gi.repository import GLib

    context = GLib.MainContext.default()
    deadline = time.monotonic() + timeout
    while True:
        while context.pending():
            context.iteration(False)
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def extract(video: Path, out: Path, frames: range, jpeg_quality: int | None = None) -> Path:
    """The given frames of a video as a folder of PNG files (JPEG at jpeg_quality, when given)."""
    import cv2

    suffix, params = "png", []
    if jpeg_quality is not None:
        suffix, params = "jpg", [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]

    out.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    i = 0
    while i < frames.stop:
        ok, frame = cap.read()
        if not ok:
            break
        if i in frames:
            cv2.imwrite(str(out / f"frame{i:04d}.{suffix}"), frame, params)
        i += 1
    cap.release()
    assert len(list(out.iterdir())) == len(frames), f"{video} has fewer than {frames.stop} frames"
    return out


class Service:
    """The running daemon, its bus, the stand-in, and the camera symlink."""

    def __init__(self, bus: Bus, folder: Path, frames: dict[str, Path], log: Path, daemon):
        self.bus = bus
        self.folder = folder
        self.camera = folder / "camera"
        self.config = folder / "faceunlock.toml"
        self.frames = frames
        self.log = log
        self.daemon = daemon
        self.client = bus.connect()
        self.status: list[tuple[str, str, bool]] = []
        self.client.subscribe(
            iface="org.faceunlock.FaceUnlock1",
            signal="VerifyStatus",
            signal_fired=lambda sender, path, iface, name, args: self.status.append(tuple(args)),
        )

    def point_camera(self, name: str) -> None:
        """Make the daemon's camera show one of the frame folders (atomic symlink swap)."""
        tmp = self.folder / "camera.new"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(self.frames[name])
        os.replace(tmp, self.camera)

    def proxy(self):
        return self.client.get(NAME, PATH)

    def authenticate(self, user: str, service: str, step: str = "check", **items: str) -> tuple[str, str]:
        """The daemon's Authenticate as a root PAM application asks it (ruid 0 unless given)."""
        request = {"user": user, "service": service, "ruid": "0", "step": step, **items}
        return tuple(self.proxy().Authenticate(request, 20000, timeout=60))

    def session(self, sid: str):
        return self.client.get("org.freedesktop.login1", f"/org/freedesktop/login1/session/{sid}")

    def manager(self):
        return self.client.get("org.freedesktop.login1", "/org/freedesktop/login1")

    def standin(self):
        return self.manager()["org.faceunlock.test.LogindStandIn"]

    def systemd(self):
        return self.client.get("org.freedesktop.systemd1", "/org/freedesktop/systemd1")[
            "org.faceunlock.test.SystemdStandIn"
        ]

    @contextlib.contextmanager
    def in_unit(self, unit: str, display_manager: str = ""):
        """Make this test process (and the PAM clients it starts) run in a systemd unit, outside any
        session; display_manager: the unit display-manager.service names meanwhile."""
        self.systemd().MapPidUnit(os.getpid(), unit)
        self.systemd().SetDisplayManager(display_manager)
        try:
            yield
        finally:
            self.systemd().MapPidUnit(os.getpid(), "")
            self.systemd().SetDisplayManager("")

    def unlock_calls(self, sid: str) -> list[float]:
        return list(self.standin().UnlockCalls(sid))

    def done_scans(self, user: str) -> list[str]:
        """Decisions of the user's finished scans so far, from the daemon's audit lines."""
        marker = f"attempt user={user} "
        return [
            line.split(" decision=", 1)[1].split(" ", 1)[0]
            for line in self.log_text().splitlines()
            if marker in line
        ]

    @contextlib.contextmanager
    def in_session(self, sid: str):
        """Make this test process (and so the PAM clients and callers it starts) belong to session sid."""
        self.standin().MapPid(os.getpid(), sid)
        try:
            yield
        finally:
            self.standin().MapPid(os.getpid(), "")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def last_attempt(self, user: str) -> str:
        """The daemon's audit line of the user's latest attempt."""
        lines = [line for line in self.log_text().splitlines() if f"attempt user={user} " in line]
        return lines[-1] if lines else ""


def black_frames(root: Path, count: int = 4000) -> Path:
    """A folder that plays a covered lens for a long time: one black frame, linked count times."""
    import cv2
    import numpy as np

    out = root / "black"
    out.mkdir(parents=True, exist_ok=True)
    frame = out / "frame00000.png"
    cv2.imwrite(str(frame), np.zeros((480, 640, 3), np.uint8))
    for i in range(1, count):
        (out / f"frame{i:05d}.png").symlink_to(frame.name)
    return out


def frame_folders(video_dir: Path, root: Path) -> dict[str, Path]:
    """Frame folders: enrolment (live 0-59), live (60-89), replay (0-29), another person (LFW photos)."""
    live, replay = video_dir / "live-person-a.webm", video_dir / "replay-person-a.webm"
    return {
        "enrol-a": extract(live, root / "enrol-a", range(0, 60)),
        "live-a": extract(live, root / "live-a", range(60, 90)),
        "replay-a": extract(replay, root / "replay-a", range(0, 30)),
        "photos-b": video_dir.parent / "lfw" / "lfw-deepfunneled" / "George_W_Bush",
        "black": black_frames(root),
    }


PLANTED_MARKER = "planted-code-ran"


def planted_code(folder: Path) -> dict:
    """Environment that would load code from a user's folder into a process that honours it.

    A sitecustomize.py on PYTHONPATH writes a marker file when Python imports it; a garbage
    Gio typelib on GI_TYPELIB_PATH would break (or, crafted, subvert) gi's Gio.
    """
    evil = folder / "planted"
    (evil / "typelib").mkdir(parents=True, exist_ok=True)
    (evil / "sitecustomize.py").write_text(f"open({str(folder / PLANTED_MARKER)!r}, 'w').write('ran')\n")
    for name in ("Gio-2.0.typelib", "GLib-2.0.typelib", "GObject-2.0.typelib"):
        (evil / "typelib" / name).write_bytes(b"not a typelib\n" * 8)
    return {"PYTHONPATH": str(evil), "GI_TYPELIB_PATH": str(evil / "typelib"), "GIO_EXTRA_MODULES": str(evil)}


@contextlib.contextmanager
def running_service(frames: dict[str, Path], grace: float = GRACE_S, auto_unlock: bool = True):
    """Bus, logind stand-in and daemon, with alice enrolled from live video and bob from LFW photos."""
    folder = Path(tempfile.mkdtemp(prefix="faceunlock-service-"))
    os.chmod(folder, 0o755)
    config = folder / "faceunlock.toml"
    config.write_text(
        DAEMON_CONFIG.format(
            camera=folder / "camera",
            store=folder / "store",
            grace=grace,
            auto_unlock=str(auto_unlock).lower(),
            services=toml_list(PAM_SERVICES),
            confirm=toml_list(CONFIRM_SERVICES),
        )
    )
    log = folder / "daemon.log"
    try:
        with Bus(folder) as bus:
            logind = daemon = None
            try:
                cmd = [sys.executable, "-m", "faceunlock.testing.logind_standin"]
                for s in SESSIONS:
                    cmd += ["--session", s]
                logind = subprocess.Popen(
                    cmd, env=bus.env(), stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent
                )
                ready, _, _ = select.select([logind.stdout], [], [], 20)
                if not ready or logind.stdout.readline().strip() != "ready":
                    raise RuntimeError("the logind stand-in did not start")
                with open(log, "wb") as fh:
                    daemon = subprocess.Popen(
                        [sys.executable, "-I", "-m", "faceunlock", "daemon", "--config", str(config)],
                        env={**bus.env(), **planted_code(folder)},
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        preexec_fn=die_with_parent,
                    )
                svc = Service(bus, folder, frames, log, daemon)
                up = wait_for(lambda: daemon.poll() is not None or svc.client.dbus.NameHasOwner(NAME), 90)
                if not up or daemon.poll() is not None:
                    raise RuntimeError(f"the daemon did not start:\n{svc.log_text()}")
                enrol(svc, "alice", "enrol-a")
                enrol(svc, "bob", "photos-b")
                yield svc
            finally:
                stop(daemon)
                stop(logind)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def toml_list(items) -> str:
    return "[" + ", ".join(f'"{s}"' for s in items) + "]"


def enrol(svc: Service, user: str, frames: str) -> None:
    svc.point_camera(frames)
    assert svc.proxy().Enroll(user, "default", 10, timeout=120) == 10
