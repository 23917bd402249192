"""A booted systemd container for the system tests, kept up while a test module runs.

It calls the shared ``systemd-sandbox/run.sh`` (read-only shared input, never
copied): run.sh boots a real systemd as PID 1 of a systemd-nspawn container whose
root is a copy-on-write view of this machine's own root (or, with ``rootfs``, a clean Debian
release such as ``debian:trixie``), with a private network (or the host's, to reach the mirror),
and tears it down when its command ends. The command given here only writes the
container's leader PID into a bound folder and waits for a stop file, so one boot
serves many ``run()`` calls, each an ``nsenter`` into all of the container's
namespaces with a clean environment, like run.sh's own command.

The host's files are reachable at ``/proc/<leader>/root`` for reading results.
Nothing written inside survives: the container's root is an overlay on a tmpfs.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STATE_MOUNT = "/run/faceunlock-sandbox"
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
WAIT = (
    f'echo "$SDSB_LEADER_PID" > {STATE_MOUNT}/leader; while [ ! -e {STATE_MOUNT}/stop ]; do sleep 0.2; done'
)


class SandboxError(RuntimeError):
    """The container did not boot, or a command in it failed."""


@dataclass
class Result:
    """What one command inside the container did."""

    cmd: str
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    def check(self) -> Result:
        if self.returncode != 0:
            raise SandboxError(f"{self.cmd!r} exited {self.returncode}:\n{self.stdout}\n{self.stderr}")
        return self


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the test process dies (run.sh then tears down)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class Sandbox:
    """One booted container. Use as a context manager."""

    def __init__(
        self,
        run_sh: Path,
        binds_ro: tuple[str, ...] = (),
        lifetime_s: int = 3600,
        rootfs: str = "host",
        host_network: bool = False,
    ):
        self.run_sh = run_sh
        self.binds_ro = binds_ro
        self.rootfs = rootfs
        self.host_network = host_network
        self.lifetime_s = lifetime_s
        self.proc: subprocess.Popen | None = None
        self.leader = 0
        self.boot_s = 0.0

    def __enter__(self) -> Sandbox:
        self.state = Path(tempfile.mkdtemp(prefix="faceunlock-sandbox-"))
        self.log = self.state / "run.log"
        cmd = [str(self.run_sh), "--rootfs", self.rootfs, "--timeout", str(self.lifetime_s)]
        cmd += ["--bind", f"{self.state}:{STATE_MOUNT}"] + (["--host-network"] if self.host_network else [])
        for bind in self.binds_ro:
            cmd += ["--bind-ro", bind]
        cmd += ["--", "/bin/sh", "-c", WAIT]
        started = time.monotonic()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_parent
            )
        leader = self.state / "leader"
        while not (leader.exists() and leader.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() - started > 300:
                text = self.log.read_text(errors="replace")
                self.__exit__(None, None, None)
                raise SandboxError(f"the container did not boot:\n{text[-4000:]}")
            time.sleep(0.05)
        self.leader = int(leader.read_text())
        self.boot_s = time.monotonic() - started
        return self

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by everything in the container (its cgroup v2 cpu.stat), if readable."""
        try:
            line = next(
                x for x in Path(f"/proc/{self.leader}/cgroup").read_text().splitlines() if x[:3] == "0::"
            )
            top = "/" + line[3:].strip("/").split("/")[0]
            root = Path("/sys/fs/cgroup/unified")
            stat = (
                (root if root.is_dir() else Path("/sys/fs/cgroup")) / top.lstrip("/") / "cpu.stat"
            ).read_text()
        except (OSError, StopIteration):
            return None
        return int(stat.split()[1]) / 1e6

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        self.cpu_s = self.cpu_seconds()
        if self.cpu_s is not None:
            print(f"\n[container CPU time: {self.cpu_s:.1f} s]")
        (self.state / "stop").touch()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.proc = None

    def path(self, inside: str) -> Path:
        """A path inside the container, as the host sees it."""
        return Path(f"/proc/{self.leader}/root") / inside.lstrip("/")

    def run(
        self,
        cmd: str | list[str],
        timeout: float = 120,
        check: bool = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        """Run a command (a list, or a string for bash) as root inside the container."""
        argv = ["/bin/bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        pairs = [f"{k}={v}" for k, v in {**ENV, **(env or {})}.items()]
        full = [
            "nsenter",
            "-t",
            str(self.leader),
            "-a",
            "-r",
            "-w",
            "--",
            "/usr/bin/env",
            "-i",
            *pairs,
            *argv,
        ]
        started = time.monotonic()
        try:
            proc = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise SandboxError(f"{shlex.join(argv)!r} ran longer than {timeout} s: {exc.stdout}") from None
        result = Result(
            cmd if isinstance(cmd, str) else shlex.join(cmd),
            proc.returncode,
            proc.stdout,
            proc.stderr,
            time.monotonic() - started,
        )
        return result.check() if check else result

    def out(self, cmd: str | list[str], **kw) -> str:
        """A command's stdout, stripped; it must succeed."""
        return self.run(cmd, **kw).stdout.strip()

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        path = self.path(inside)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)

    def wait_until(self, cmd: str, timeout: float, step: float = 0.1) -> bool:
        """Poll a shell condition inside until it succeeds or the timeout passes."""
        deadline = time.monotonic() + timeout
        while True:
            if self.run(cmd, check=False, timeout=max(5.0, timeout)).returncode == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(step)
