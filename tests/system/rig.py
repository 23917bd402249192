"""faceunlock inside a booted container: packages, users, camera stand-in, config, sessions, journal.

A ``Rig`` wraps one Sandbox. The camera stand-in is a symlink that tests point
at folders of real video frames (bound read-only into the container), so the
daemon's config never changes between cases.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox import Sandbox, SandboxError

HERE = Path(__file__).resolve().parent
HELPERS = "/usr/local/lib/faceunlock-test"
FRAMES = "/srv/faceunlock-frames"
CAMERA = "/srv/faceunlock-camera/current"
BUS_NAME = "org.faceunlock.FaceUnlock1"
OBJECT = "/org/faceunlock/FaceUnlock1"
LOGIND = "org.freedesktop.login1"
USERS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}
DEB_CACHE = Path("/var/cache/faceunlock-systemtest/debs")
GRACE_S = 2.0
SNAPSHOT_ROOTS = ("/etc", "/usr", "/var/lib", "/opt", "/srv")
SNAPSHOT_NOISE = (
    # package managers' and services' own bookkeeping, caches and logs
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/lib/systemd",
    "/var/lib/ucf",
    "/var/lib/man-db",
    "/var/lib/polkit-1",
    "/var/lib/sudo",
    "/var/lib/PackageKit",
    "/etc/ld.so.cache",
    # the test's own camera stand-in and frames
    "/srv/faceunlock-frames",
    "/srv/faceunlock-camera",
    "/srv/faceunlock-video",
    "/srv/faceunlock-deb",
)
ACCOUNTS = ("passwd", "group", "shadow", "gshadow", "subuid", "subgid")

CONFIG = """{insecure}[camera]
source = "{camera}"

[verify]
timeout = 10.0
max_failures = 100

[daemon]
grace_period = {grace}
max_scans_per_lock = 3
scan_timeout = 10.0
threads = 1

[pam]
services = ["sudo", "su", "login", "polkit-1", "gdm-password", "swaylock"]
confirm = {confirm}
"""


def config_text(camera: str = CAMERA, grace: float = GRACE_S, confirm: tuple[str, ...] = ()) -> str:
    """The test config: sudo, su, login and polkit-1 opted in, none in confirm mode unless asked;
    ``insecure = true`` (a video stand-in camera)."""
    listed = "[" + ", ".join(f'"{s}"' for s in confirm) + "]"
    return CONFIG.format(insecure="insecure = true\n\n", camera=camera, grace=grace, confirm=listed)


@dataclass
class Session:
    """A logind session opened through pam_systemd, whose leader is the lock screen stand-in."""

    sid: str
    path: str
    user: str
    unit: str


class Rig:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.units = 0

    # ------------------------------------------------------------------ set-up
    def install_packages(self, *packages: str, online: bool = False) -> None:
        """Install those of the packages that are missing, from the host-side download cache (the container
        has no network), or with online, from the mirror; packages already there are left as they
        are. Services may start (no policy-rc.d)."""
        self.sb.run("rm -f /usr/sbin/policy-rc.d")
        query = ["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *packages]
        status = self.sb.run(query, check=False).stdout
        installed = {line.split()[0] for line in status.splitlines() if line.endswith(" installed")}
        wanted = [p for p in packages if p not in installed]
        if wanted and online:
            self.sb.run("apt-get -qq update", timeout=600)
            self.sb.run(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                + " ".join(wanted),
                timeout=900,
            )
        elif wanted:
            self.sb.run(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download --no-install-recommends "
                f"-o Dir::Cache::archives={DEB_CACHE} " + " ".join(wanted),
                timeout=600,
            )

    def add_users(self) -> None:
        for user, password in USERS.items():
            self.sb.run(f"id {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}")
            self.sb.run(["chpasswd"], input=f"{user}:{password}\n")

    def copy_helpers(self) -> None:
        """The in-container helper scripts, readable by every user."""
        for name in ("locker.py", "converse.py"):
            self.sb.write(f"{HELPERS}/{name}", (HERE / "inside" / name).read_text())

    def write_config(self, text: str | None = None) -> None:
        self.sb.write("/etc/faceunlock/config.toml", text or config_text(), 0o644)

    def point_camera(self, folder: str) -> None:
        """Make the camera stand-in show a frame folder (an atomic symlink swap)."""
        self.sb.run(
            f"mkdir -p {Path(CAMERA).parent} && ln -sfn {FRAMES}/{folder} {CAMERA}.new && "
            f"mv -T {CAMERA}.new {CAMERA}"
        )

    # ------------------------------------------------------------------ the daemon
    def call(self, method: str, signature: str, *args, timeout: int = 120, check: bool = True):
        """busctl call on the daemon; returns the Result (stdout in busctl's --json=short form)."""
        cmd = ["busctl", "--json=short", f"--timeout={timeout}", "call", BUS_NAME, OBJECT, BUS_NAME, method]
        if signature:
            cmd += [signature, *map(str, args)]
        return self.sb.run(cmd, timeout=timeout + 30, check=check)

    def prop(self, name: str) -> str:
        out = self.sb.out(["busctl", "--json=short", "get-property", BUS_NAME, OBJECT, BUS_NAME, name])
        return json.loads(out)["data"]

    def verify(self, user: str, timeout_ms: int = 10000) -> tuple[str, str, dict]:
        data = json.loads(self.call("Verify", "su", user, timeout_ms).stdout)["data"]
        decision, reason, details = data
        return decision, reason, {k: v["data"] for k, v in details.items()}

    def doctor(self, command: str) -> tuple[int, dict]:
        """`faceunlock doctor --json` as root in the container: its exit status and its report."""
        result = self.sb.run(f"{command} doctor --json --frames 10", check=False, timeout=120)
        return result.returncode, json.loads(result.stdout)

    def enrol(self, user: str, folder: str, frames: int = 10) -> int:
        """A plain enrolment of `frames` good frames (0: guided, which needs the poses the frames
        show; these 2 s clips look straight ahead)."""
        self.point_camera(folder)
        return json.loads(self.call("Enroll", "ssu", user, "default", frames).stdout)["data"][0]

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.sb.out(["systemctl", "show", unit, *(f"-p{p}" for p in props)])
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, ident: str = "faceunlock") -> list[str]:
        """Journal lines with this syslog identifier, and for the daemon systemd's lines on its unit.

        Matching the identifier rather than the unit keeps a process's last lines, which lose
        their unit field when it has exited before journald reads them."""
        match = ["SYSLOG_IDENTIFIER=" + ident]
        if ident == "faceunlock":
            match += ["+", "UNIT=faceunlock.service"]
        return self.sb.out(["journalctl", "-o", "cat", "--no-pager", *match]).splitlines()

    def wait_journal(self, pattern: str, after: int, timeout: float, ident: str = "faceunlock") -> str:
        """The first journal line of ident, past line ``after``, that matches pattern."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            for line in self.journal(ident)[after:]:
                if regex.search(line):
                    return line
            if time.monotonic() > deadline:
                tail = "\n".join(self.journal(ident)[after:])
                raise AssertionError(
                    f"no journal line of {ident} matches {pattern!r} in {timeout} s:\n{tail}"
                )
            time.sleep(0.1)

    def snapshot(self) -> dict[str, str]:
        """Every path under SNAPSHOT_ROOTS (but the noise) with its type and mode, and for /etc its
        content's sha256: what an install may add and an uninstall must take away again."""
        prune = " -o ".join(f"-path {p}" for p in SNAPSHOT_NOISE)
        listing = self.sb.out(
            f"find {' '.join(SNAPSHOT_ROOTS)} -xdev \\( {prune} \\) -prune -o -printf '%p\\t%y %m\\n'",
            timeout=300,
        )
        found = dict(line.split("\t", 1) for line in listing.splitlines())
        hashes = self.sb.out("find /etc -xdev -type f -print0 | xargs -0 sha256sum", timeout=300)
        for line in hashes.splitlines():
            digest, path = line.split("  ", 1)
            if path in found and Path(path).name.rstrip("-") not in ACCOUNTS:
                found[path] += " " + digest
        return found

    # ------------------------------------------------------------------ logind
    def session_env(self, user: str) -> list[str]:
        """systemd-run options for a local graphical session of user on seat0 (through pam_systemd)."""
        return [
            "-p",
            "PAMName=login",
            "-p",
            f"User={user}",
            "-E",
            "XDG_SESSION_TYPE=wayland",
            "-E",
            "XDG_SESSION_CLASS=user",
            "-E",
            "XDG_SEAT=seat0",
        ]

    def open_session(self, user: str) -> Session:
        """A new session of user whose leader is the lock screen stand-in; returns once it is listening."""
        self.units += 1
        unit = f"locker-{user}-{self.units}"
        locker = f"{HELPERS}/locker.py"
        cmd = ["systemd-run", "-q", f"--unit={unit}", "-p", f"SyslogIdentifier={unit}"]
        self.sb.run([*cmd, *self.session_env(user), "/usr/bin/python3", locker])
        line = self.wait_journal(r"locker: ready for session", 0, 20, ident=unit)
        *_, sid, _, path = line.split()
        return Session(sid, path, user, unit)

    def close_session(self, session: Session) -> None:
        """End a session open_session made (its unit, and so its logind session)."""
        self.sb.run(["systemctl", "stop", f"{session.unit}.service"], check=False)

    @contextlib.contextmanager
    def session_of(self, user: str):
        """A session of user (open_session) for the length of a with block."""
        session = self.open_session(user)
        try:
            yield session
        finally:
            self.close_session(session)

    def session_prop(self, session: Session, name: str) -> str:
        return self.sb.out(["loginctl", "show-session", session.sid, f"-p{name}", "--value"])

    def set_idle(self, session: Session, idle: bool) -> None:
        self.sb.run(
            [
                "busctl",
                "call",
                LOGIND,
                session.path,
                f"{LOGIND}.Session",
                "SetIdleHint",
                "b",
                "true" if idle else "false",
            ]
        )

    def wait_locked(self, session: Session, locked: bool, timeout: float) -> float:
        """Seconds until the session's LockedHint has the wanted value; raises if it does not in time."""
        want = "yes" if locked else "no"
        started = time.monotonic()
        while self.session_prop(session, "LockedHint") != want:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"LockedHint of session {session.sid} is not {want} after {timeout} s")
            time.sleep(0.05)
        return time.monotonic() - started

    # ------------------------------------------------------------------ PAM applications
    def converse(
        self, user: str | None, command: list[str], password: str, send=(), timeout: float = 60
    ) -> dict:
        """Run a PAM application on a pty: as user inside a new local seat session of that user, or
        (user None) as root in a system service outside any session. Returns converse.py's JSON."""
        inner = [
            "/usr/bin/python3",
            f"{HELPERS}/converse.py",
            "--password",
            password,
            "--timeout",
            str(timeout),
        ]
        for item in send:
            inner += ["--send", item]
        session = self.session_env(user) if user else []
        cmd = ["systemd-run", "-q", "--pipe", "--wait", *session, *inner, "--", *command]
        result = self.sb.run(cmd, timeout=timeout + 30, check=False)
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise SandboxError(
                f"{shlex.join(cmd)} gave no result:\n{result.stdout}\n{result.stderr}"
            ) from None
