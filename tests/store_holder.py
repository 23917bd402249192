"""The template store held by another process: its flock on the store directory, as the root CLI
or the daemon takes it, for as long as a test needs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

HOLD = (
    "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
    "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(float(sys.argv[2]))"
)


@contextlib.contextmanager
def held_by_another_process(root: Path, seconds: float = 60.0):
    """The store at `root` locked by a child process until the block ends (at most `seconds`)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
