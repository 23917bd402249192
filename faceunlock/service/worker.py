"""The one thread that uses the camera: jobs run one at a time, in order, from a bounded queue.

submit() is called on the main loop's thread and never blocks: when one job is
running and ``waiting`` more are queued, it refuses (the caller answers Busy).
Each job's start and result are handed back to the main loop with
GLib.idle_add, so all service state is touched by one thread only. A job
carries its deadline, so the main loop can tell a job that overran it (a
camera stuck in a driver call) from one that is merely slow: the systemd
watchdog is fed only while no job is stuck.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gi.repository import GLib

log = logging.getLogger("faceunlock.worker")


@dataclass
class Job:
    """What to run on the worker, and what to call on the main loop when it starts and ends."""

    kind: str
    run: Callable[[], Any]
    done: Callable[[Any, BaseException | None], None]
    started: Callable[[], None] | None = None
    deadline: float | None = None
    """time.monotonic() by which run() must have returned."""


class Worker:
    def __init__(self, waiting: int, on_state: Callable[[str], None] | None = None):
        self.capacity = 1 + waiting
        self.pending = 0
        self.on_state = on_state
        self.current: Job | None = None
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self.loop, name="faceunlock-camera", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full."""
        if self.pending >= self.capacity:
            return False
        self.pending += 1
        self.jobs.put(job)
        return True

    def loop(self) -> None:
        while True:
            job = self.jobs.get()
            self.current = job
            GLib.idle_add(self.begin, job)
            result, error = None, None
            try:
                result = job.run()
            except BaseException as exc:  # noqa: BLE001  (handed to the main loop, which answers)
                error = exc
            self.current = None
            GLib.idle_add(self.finish, job, result, error)

    def stuck(self, grace: float) -> bool:
        """The running job is more than grace seconds past its deadline."""
        job = self.current
        return job is not None and job.deadline is not None and time.monotonic() > job.deadline + grace

    def begin(self, job: Job) -> bool:
        with logged(job, "start"):
            if self.on_state:
                self.on_state(job.kind)
            if job.started:
                job.started()
        return False

    def finish(self, job: Job, result, error) -> bool:
        self.pending -= 1
        with logged(job, "end"):
            if self.on_state and self.pending == 0:
                self.on_state("idle")
            job.done(result, error)
        return False


@contextlib.contextmanager
def logged(job: Job, stage: str):
    """Log what a main-loop callback raises instead of losing it in GLib."""
    try:
        yield
    except Exception:  # noqa: BLE001  (the loop must go on; the caller's answer is sent by done())
        log.exception("the %s of a %s job failed", stage, job.kind)
