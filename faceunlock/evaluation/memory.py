"""Resident memory of a process kind, measured in a fresh process: the daemon's path (idle, and its
peak during a scan) without the bus, so it needs no D-Bus and no root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DAEMON_PROBE = """
import json, sys, time
from pathlib import Path
from faceunlock import config as config_mod, runtime
from faceunlock.model import load_card
from faceunlock.service import daemon
from faceunlock.service.memory import release_free_memory
frames, store, user = sys.argv[1:4]
cfg = config_mod.replace(config_mod.Config(), "camera", source=frames)
cfg = config_mod.replace(cfg, "store", path=store)
card = load_card()
pipeline = runtime.load_pipeline(cfg, card, cfg.daemon.threads)
daemon.warm_up(pipeline)
def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
idle = status("VmRSS")
anchors = runtime.open_store(cfg, card).load(user).anchors()
threshold = card.threshold(cfg.verify.security_level)
d = runtime.verify_scan(pipeline, cfg, user, anchors, threshold, time.monotonic() + 30, "bench")
peak = status("VmHWM")
release_free_memory()
after = status("VmRSS")
print(json.dumps({"idle": round(idle, 1), "scan_peak": round(peak, 1), "idle_after_scan": round(after, 1),
                  "decision": d.decision, "torch": "torch" in sys.modules}))
"""


def daemon_rss_mb(frames: Path, store: Path, user: str) -> dict:
    """VmRSS of the daemon's pipeline, loaded and warmed as `faceunlock daemon` does, while idle; its
    high-water mark (VmHWM: loading included) after one scan of the frames; and VmRSS after that scan,
    once freed memory is handed back as the daemon's worker does. The D-Bus layer is imported too."""
    proc = subprocess.run(
        [sys.executable, "-c", DAEMON_PROBE, str(frames), str(store), user],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the daemon memory probe failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
