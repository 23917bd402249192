"""Service latency and memory: the PAM module, the logind hook, the idle daemon. Run as root.

Starts the same real parts as the service tests (private dbus-daemon, logind
stand-in, the daemon with a folder of live-person-a frames as its camera) and
measures, with the daemon warm and person A in view:

- a face match through pamtester + libpam + pam_faceunlock.so (pam.pamtester_ms), against the
  daemon's own scan time for the same attempts (pam.scan_ms, from its audit lines): the module's
  share is the difference; the same through pam_exec.so and the Python fallback client, and the
  client run directly;
- trigger (IdleHint false) to the stand-in's Unlock() call, median of N runs;
- with the daemon not on the bus: the password prompt through pamtester and the module
  (pamtester_no_daemon_ms) and through the fallback, the fallback's start-up and its peak RSS;
- the daemon's resident memory (VmRSS) while idle, and its peak (VmHWM) over all the scans;
- the camera stand-in's share: reading and decoding the frames of one match from the folder.

    .venv/bin/python benchmarks/service_latency.py [--data ../shared/data] [--runs 10] [--json out.json]
        [--pam-name faceunlock-bench]   (the /etc/pam.d file for the no-daemon run, then removed;
        the warm run writes /etc/pam.d/faceunlock-test, which the test config allows)
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faceunlock.testing.service import (
    GRACE_S,
    PAM_SERVICES,
    VENV_BIN,
    Bus,
    frame_folders,
    running_service,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent

CLIENT = str(VENV_BIN / "faceunlock-pam")
MODULE = ROOT / "pam" / "pam_faceunlock.so"
TIME = "/usr/bin/time"  # GNU time (Debian package "time")


def timed(cmd: list[str], env: dict) -> tuple[float, int, int]:
    """Wall seconds, exit status and peak RSS (KiB, from GNU time: a child forked by this large
    process would inherit its high-water mark in ru_maxrss) of one command."""
    with tempfile.NamedTemporaryFile("r") as rss:
        started = time.monotonic()
        proc = subprocess.run(
            [TIME, "-q", "-f", "%M", "-o", rss.name, *cmd],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        elapsed = time.monotonic() - started
        return elapsed, proc.returncode, int(rss.read().split()[-1])


def summary(values: list[float], scale: float = 1e3) -> dict:
    return {
        "median": round(statistics.median(values) * scale, 1),
        "min": round(min(values) * scale, 1),
        "max": round(max(values) * scale, 1),
    }


def vm_rss_kib(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def stand_in_ms(folder: Path, frames: int, runs: int) -> dict:
    """What the camera stand-in costs per scan: reading and decoding `frames` images of the folder."""
    from faceunlock.camera import open_source

    times = []
    for _ in range(runs):
        started = time.monotonic()
        with open_source(str(folder)) as source:
            for _, _ in zip(range(frames), source.frames(), strict=False):
                pass
        times.append(time.monotonic() - started)
    return {"frames": frames, **summary(times)}


def module_line(address: str) -> str:
    return f"auth [success=done default=ignore] {MODULE} bus={address} timeout=20 quiet"


def client_line(address: str) -> str:
    return (
        f"auth [success=done default=ignore] pam_exec.so quiet {CLIENT} --bus-address {address} --timeout 20"
    )


@contextlib.contextmanager
def pam_service(name: str, line: str):
    """A PAM service file with one face line, then pam_deny; removed afterwards."""
    path = Path("/etc/pam.d") / name
    path.write_text(f"{line}\nauth requisite pam_deny.so\naccount required pam_permit.so\n")
    try:
        yield name
    finally:
        path.unlink()


def scan_ms(svc, user: str, count: int) -> dict:
    """The daemon's own duration of the user's last `count` scans (its audit lines)."""
    lines = [line for line in svc.log_text().splitlines() if f"attempt user={user} " in line][-count:]
    return summary([int(line.split("duration_ms=")[1].split()[0]) / 1e3 for line in lines])


def pam_latency(svc, runs: int) -> dict:
    """From alice's local session c1, as presence requires, through a PAM service that the test
    config allows (faceunlock.testing.service.PAM_SERVICES)."""
    name = PAM_SERVICES[0]
    env = {"PAM_USER": "alice", "PAM_SERVICE": name, "PATH": "/usr/bin:/bin"}
    tester = ["pamtester", name, "alice", "authenticate"]
    out = {}
    with svc.in_session("c1"):
        with pam_service(name, module_line(svc.bus.address)):
            module = [timed(tester, env) for _ in range(runs)]
        out["scan_ms"] = scan_ms(svc, "alice", runs)
        with pam_service(name, client_line(svc.bus.address)):
            fallback = [timed(tester, env) for _ in range(runs)]
        client = [
            timed([CLIENT, "--bus-address", svc.bus.address, "--timeout", "20"], env) for _ in range(runs)
        ]
    for results in (module, fallback, client):
        assert all(code == 0 for _, code, _ in results), results
    out["pamtester_ms"] = summary([t for t, _, _ in module])
    out["pamtester_peak_rss_kib"] = max(r for _, _, r in module)
    out["module_share_ms"] = round(out["pamtester_ms"]["median"] - out["scan_ms"]["median"], 1)
    out["pamtester_fallback_ms"] = summary([t for t, _, _ in fallback])
    out["client_ms"] = summary([t for t, _, _ in client])
    out["client_peak_rss_kib"] = max(r for _, _, r in client)
    return out


def unlock_latency(svc, runs: int) -> dict:
    latencies = []
    session = svc.session("c1")
    for _ in range(runs):
        svc.manager().LockSession("c1")
        time.sleep(GRACE_S + 0.2)
        session.SetIdleHint(True)
        calls = len(svc.unlock_calls("c1"))
        started = time.monotonic()
        session.SetIdleHint(False)
        assert wait_for(lambda n=calls: len(svc.unlock_calls("c1")) > n, 60), svc.log_text()
        latencies.append(svc.unlock_calls("c1")[-1] - started)
    return {"trigger_to_unlock_ms": summary(latencies)}


def client_startup(runs: int, pam_name: str) -> dict:
    """No daemon to ask: how soon the password prompt comes through the module and the fallback;
    the fallback client's own start-up (Python, imports, one D-Bus call)."""
    env = {"PAM_USER": "alice", "PAM_SERVICE": "sudo", "PATH": "/usr/bin:/bin"}
    with tempfile.TemporaryDirectory() as folder, Bus(Path(folder)) as bare:
        no_daemon = [timed([CLIENT, "--bus-address", bare.address], env) for _ in range(runs)]
        with pam_service(f"{pam_name}-down", module_line(bare.address)) as name:
            tester = [timed(["pamtester", name, "alice", "authenticate"], env) for _ in range(runs)]
        with pam_service(f"{pam_name}-down", client_line(bare.address)) as name:
            fallback = [timed(["pamtester", name, "alice", "authenticate"], env) for _ in range(runs)]
        assert all(code != 0 for _, code, _ in tester + fallback), tester + fallback
    no_bus = [timed([CLIENT, "--bus-address", "unix:path=/nonexistent"], env) for _ in range(runs)]
    python = [timed([sys.executable, "-c", "pass"], env) for _ in range(runs)]
    return {
        "client_no_daemon_ms": summary([t for t, _, _ in no_daemon]),
        "client_no_bus_ms": summary([t for t, _, _ in no_bus]),
        "pamtester_no_daemon_ms": summary([t for t, _, _ in tester]),
        "pamtester_no_daemon_fallback_ms": summary([t for t, _, _ in fallback]),
        "bare_python_ms": summary([t for t, _, _ in python]),
        "client_peak_rss_kib": max(r for _, _, r in no_daemon),
        "bare_python_peak_rss_kib": max(r for _, _, r in python),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=os.environ.get("FACEUNLOCK_DATA", str(ROOT.parent / "shared" / "data"))
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pam-name", default="faceunlock-bench", help="PAM service file name for the run")
    parser.add_argument("--json")
    args = parser.parse_args()
    result = {"load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as folder:
        frames = frame_folders(Path(args.data) / "video", Path(folder))
        result.update(client_startup(args.runs, args.pam_name))
        with running_service(frames) as svc:
            svc.point_camera("live-a")
            time.sleep(1.0)
            result["daemon_idle_vmrss_kib_after_enrol"] = vm_rss_kib(svc.daemon.pid)
            result["pam"] = pam_latency(svc, args.runs)
            result["logind"] = unlock_latency(svc, args.runs)
            time.sleep(1.0)
            result["daemon_idle_vmrss_kib_after_scans"] = vm_rss_kib(svc.daemon.pid)
            result["daemon_peak_vmhwm_kib"] = vm_rss_kib(svc.daemon.pid, "VmHWM")
        result["camera_stand_in_ms"] = stand_in_ms(frames["live-a"], 8, args.runs)
    result["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
