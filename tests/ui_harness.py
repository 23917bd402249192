"""The service for the desktop tests: a private bus, the logind and polkit stand-ins, and the real
daemon whose camera is a symlink to folders of real video frames.

Built from faceunlock.testing's parts (the bus with the system policy and
faceunlock's own, the logind stand-in, the daemon run as the unit runs it),
plus faceunlock.testing.polkit_standin, which grants or denies what the daemon
asks polkit. Nobody is enrolled at the start. Camera folders:

- "poses": live-person-c.mp4, 24 frames in a row of each head pose (straight
  20-43, left 100-123, right 260-283, down 370-393, up 450-473);
- "straight": live-person-c.mp4 frames 520-579 (looking straight, held out);
  "straight-long": the same five times over;
- "empty": an empty grey room (no face); "empty-long": the same for 3000 frames (minutes);
- "person-a": live-person-a.webm frames 0-39, another person.

Loaded as a pytest plugin from conftest.py; the fixture is shared by the
session, and only ever started by tests that ask for it (as root).
"""

from __future__ import annotations

import contextlib
import select
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from service_harness import NAME, PATH, Bus, need_root, stop, wait_for

from faceunlock.testing.service import SESSIONS, die_with_parent

POSE_FRAMES = {"straight": 20, "left": 100, "right": 260, "down": 370, "up": 450}
CONFIG = """insecure = true

[camera]
source = "{camera}"

[store]
path = "{store}"

[verify]
timeout = 10.0
max_failures = 100

[enroll]
per_pose = 1
timeout = 120.0

[daemon]
threads = 1
queue_size = 1
auto_unlock = false

[pam]
services = ["sudo", "su", "login", "polkit-1", "gdm-password", "swaylock"]
"""


def person_c_frames(video: Path, root: Path) -> dict[str, Path]:
    """The camera folders (see above) from live-person-c.mp4, and live-person-a.webm beside it."""
    import cv2
    import numpy as np

    folders = {"poses": root / "poses", "straight": root / "straight", "empty": root / "empty"}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    wanted = {i: folders["poses"] for start in POSE_FRAMES.values() for i in range(start, start + 24)}
    wanted.update({i: folders["straight"] for i in range(520, 580)})
    cap = cv2.VideoCapture(str(video))
    for i in range(max(wanted) + 1):
        ok, frame = cap.read()
        assert ok, f"{video} ended at frame {i}"
        if i in wanted:
            cv2.imwrite(str(wanted[i] / f"frame{i:04d}.png"), frame)
    for i in range(40):
        cv2.imwrite(str(folders["empty"] / f"frame{i:04d}.png"), np.full((480, 640, 3), 120, np.uint8))
    empty_long = folders["empty-long"] = root / "empty-long"
    empty_long.mkdir(exist_ok=True)
    for i in range(3000):
        (empty_long / f"frame{i:04d}.png").symlink_to(folders["empty"] / "frame0000.png")
    other = folders["person-a"] = root / "person-a"
    other.mkdir(exist_ok=True)
    cap = cv2.VideoCapture(str(video.parent / "live-person-a.webm"))
    for i in range(40):
        ok, frame = cap.read()
        assert ok, f"live-person-a.webm ended at frame {i}"
        cv2.imwrite(str(other / f"frame{i:04d}.png"), frame)
    long = folders["straight-long"] = root / "straight-long"
    long.mkdir(exist_ok=True)
    for loop in range(5):
        for frame in sorted(folders["straight"].iterdir()):
            (long / f"{loop}-{frame.name}").symlink_to(frame)
    return folders


def start(cmd: list[str], env: dict, what: str) -> subprocess.Popen:
    """A stand-in that prints "ready" once it owns its name."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    if not ready or proc.stdout.readline().strip() != "ready":
        stop(proc)
        raise RuntimeError(f"the {what} stand-in did not start")
    return proc


class UiService:
    """The running daemon and stand-ins; point_camera() swaps what the camera shows."""

    def __init__(self, bus: Bus, folder: Path, frames: dict[str, Path], log: Path):
        self.bus = bus
        self.folder = folder
        self.frames = frames
        self.log = log
        self.camera = folder / "camera"
        self.store = folder / "store"
        self.client = bus.connect()

    def point_camera(self, name: str) -> None:
        tmp = self.folder / "camera.new"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(self.frames[name])
        tmp.replace(self.camera)

    def proxy(self):
        return self.client.get(NAME, PATH)

    def polkit(self):
        return self.client.get("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority")[
            "org.faceunlock.test.PolkitStandIn"
        ]

    def logind(self):
        return self.client.get("org.freedesktop.login1", "/org/freedesktop/login1")[
            "org.faceunlock.test.LogindStandIn"
        ]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running(frames: dict[str, Path]):
    folder = Path(tempfile.mkdtemp(prefix="faceunlock-ui-"))
    folder.chmod(0o755)
    try:
        with Bus(folder) as bus, serving(bus, folder, frames) as svc:
            yield svc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def serving(bus: Bus, folder: Path, frames: dict[str, Path]):
    """The stand-ins and the real daemon on a bus that is already up (the camera shows "empty")."""
    config = folder / "faceunlock.toml"
    config.write_text(CONFIG.format(camera=folder / "camera", store=folder / "store"))
    log = folder / "daemon.log"
    procs = []
    try:
        cmd = [sys.executable, "-m", "faceunlock.testing.logind_standin"]
        for s in SESSIONS:
            cmd += ["--session", s]
        procs.append(start(cmd, bus.env(), "logind"))
        polkit = [sys.executable, "-m", "faceunlock.testing.polkit_standin"]
        procs.append(start(polkit, bus.env(), "polkit"))
        with open(log, "wb") as fh:
            daemon = subprocess.Popen(
                [sys.executable, "-I", "-m", "faceunlock", "daemon", "--config", str(config)],
                env=bus.env(),
                stdout=fh,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        procs.append(daemon)
        svc = UiService(bus, folder, frames, log)
        svc.point_camera("empty")
        up = wait_for(lambda: daemon.poll() is not None or svc.client.dbus.NameHasOwner(NAME), 120)
        if not up or daemon.poll() is not None:
            raise RuntimeError(f"the daemon did not start:\n{svc.log_text()}")
        yield svc
    finally:
        for proc in reversed(procs):
            stop(proc)


@pytest.fixture(scope="session")
def ui_service(video_dir, tmp_path_factory):
    need_root()
    frames = person_c_frames(video_dir / "live-person-c.mp4", tmp_path_factory.mktemp("ui-frames"))
    with running(frames) as svc:
        yield svc


def pixelate_faces(png: Path) -> int:
    """Pixelate every face the detector finds in a screenshot, in place; returns how many.

    The screenshots show frames of a shared recording of a real person, which the project may use for
    tests but must not publish: the copies committed under docs/screenshots keep the interface and
    the drawn boxes, not the face.
    """
    import cv2

    from faceunlock.vision.detect import Detector

    img = cv2.imread(str(png))
    faces = Detector(min_face_size=20, threads=1).detect(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).faces
    h, w = img.shape[:2]
    for face in faces:
        x1, y1, x2, y2 = face.box
        fw, fh = x2 - x1, y2 - y1
        x1, y1 = int(max(0, x1 - 0.3 * fw)), int(max(0, y1 - 0.5 * fh))
        x2, y2 = int(min(w, x2 + 0.3 * fw)), int(min(h, y2 + 0.3 * fh))
        small = cv2.resize(img[y1:y2, x1:x2], (max(1, (x2 - x1) // 24), max(1, (y2 - y1) // 24)))
        img[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(png), img)
    return len(faces)
