"""The parts of the isolation that need no daemon: the environment scrub, the watchdog plumbing,
logind's sender check, and password-used from PAM's environment."""

import os
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from faceunlock.errors import EXIT_ERROR
from faceunlock.service import notify


def test_scrub_drops_glib_and_loader_variables():
    code = (
        "import os; from faceunlock.service.isolate import scrub_environment; "
        "print(','.join(scrub_environment())); import gi; "
        "print(sorted(k for k in os.environ if k.startswith(('G', 'LD_'))))"
    )
    env = {"GI_TYPELIB_PATH": "/x", "GIO_EXTRA_MODULES": "/x", "G_DEBUG": "fatal", "LD_PRELOAD": "/x.so"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code], env={**env, "PATH": "/usr/bin"}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    removed, left = proc.stdout.splitlines()
    assert removed == "GIO_EXTRA_MODULES,GI_TYPELIB_PATH,G_DEBUG,LD_PRELOAD" and left == "[]"


def test_scrub_refuses_to_run_after_gi():
    code = "import gi; from faceunlock.service.isolate import scrub_environment; scrub_environment()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "gi was imported before" in proc.stderr


def test_sd_notify_datagram(tmp_path, monkeypatch):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify.notify("WATCHDOG=1")
        assert sock.recv(64) == b"WATCHDOG=1"
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert notify.watchdog_interval() is None
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not notify.notify("WATCHDOG=1")


def test_worker_reports_a_job_stuck_past_its_deadline():
    from faceunlock.service.worker import Job, Worker

    worker = Worker(0)
    started, release, ended = threading.Event(), threading.Event(), threading.Event()

    def run() -> None:
        started.set()
        release.wait(30)

    def ending() -> None:
        release.wait(30)
        while worker.current is not None:
            time.sleep(0.01)
        ended.set()

    job = Job("verifying", run, lambda r, e: None, deadline=time.monotonic() - 1.0)
    assert worker.submit(job)
    assert started.wait(30), "the worker never ran the job"
    assert worker.stuck(0.1), "a running job 1 s past its deadline is stuck after a 0.1 s grace"
    assert not worker.stuck(3600.0)
    threading.Thread(target=ending, daemon=True).start()
    release.set()
    assert ended.wait(30)
    assert not worker.stuck(0.0), "no job runs any more"


def test_logind_signals_from_other_senders_are_dropped():
    from faceunlock.config import DaemonConfig
    from faceunlock.service.logind import Logind

    seen = []
    watcher = Logind(SimpleNamespace(), DaemonConfig(), lambda user: True, lambda *a: True)
    handler = watcher.only_logind(lambda *args: seen.append(args))
    handler(":1.5", "/s", "i", "Lock", ())
    watcher.owner = ":1.2"
    handler(":1.5", "/s", "i", "Unlock", ())
    handler(":1.2", "/s", "i", "Unlock", ())
    assert [a[0] for a in seen] == [":1.2"]


def test_password_used_reads_pam_user(tmp_path):
    store = tmp_path / "store"
    env = {"PAM_USER": "alice", "PAM_TYPE": "auth", "PATH": "/usr/bin"}
    proc = subprocess.run(
        [sys.executable, "-I", "-m", "faceunlock", "password-used", "--store", str(store)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "recorded a password login for alice" in proc.stdout, proc.stderr
    assert (store / "state" / "alice.json").is_file()
    proc = subprocess.run(
        [sys.executable, "-I", "-m", "faceunlock", "password-used", "--store", str(store)],
        env={"PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_ERROR and "no user" in proc.stderr
