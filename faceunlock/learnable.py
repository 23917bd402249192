"""Which failed scans may become a learned look: the rule itself, shared by the daemon (which keeps
a candidate until the password follows, faceunlock.service.learning) and `eval sessions`."""

from __future__ import annotations

from faceunlock.decision import Decision

MIN_FRAMES = 3
"""Quality frames of one tracked face a learned look needs at least."""


def why_not(decision: Decision, per_pair_threshold: float) -> str | None:
    """Why this scan's frames may not be learned, or None."""
    if decision.decision != "no-match":
        return f"the scan ended {decision.decision}"
    if decision.liveness != "pass":
        return f"liveness was {decision.liveness}, not passed"
    if decision.embeddings is None or len(decision.embeddings) < MIN_FRAMES:
        return f"fewer than {MIN_FRAMES} quality frames of one face"
    if decision.distance is None or not decision.distance < per_pair_threshold:
        return f"fused score {decision.distance} is not under the per-pair threshold {per_pair_threshold:.3f}"
    return None
