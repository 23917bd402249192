"""One verification attempt under the full policy: lockout and password rules, the scan, the audit
trail. The CLI and the daemon both go through here, so the policy is the same everywhere."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from faceunlock.audit import log_attempt, save_snapshot
from faceunlock.config import Config
from faceunlock.decision import Decision
from faceunlock.lockout import Lockout


def attempt(
    pipeline,
    frames: Iterable[np.ndarray],
    user: str,
    anchors: np.ndarray,
    threshold: float,
    cfg: Config,
    service: str = "cli",
    timeout: float | None = None,
    deadline: float | None = None,
    meter: Callable | None = None,
) -> Decision:
    """Check the lockout, scan, record the outcome, and log it. Never raises for a failed scan.

    The scan ends at deadline (time.monotonic()) when given, else after timeout seconds (default:
    [verify] timeout). meter: the camera's FrameSource.meter, told where the face is.
    """
    from faceunlock.verify import scan

    started = time.monotonic()
    guard = Lockout(cfg.store.path, cfg.verify)
    blocked = guard.blocked(user)
    if blocked:
        decision = Decision(
            user=user,
            decision="locked-out",
            threshold=threshold,
            reason=blocked,
            elapsed_ms=(time.monotonic() - started) * 1e3,
        )
    else:
        decision = scan(
            pipeline, frames, user, anchors, threshold, cfg.verify, timeout, cfg.liveness, deadline, meter
        )
        guard.record(user, decision.matched, judged=decision.judged > 0)
        save_snapshot(decision.frame, decision, cfg.audit)
    log_attempt(decision, service, cfg.insecure)
    return decision
