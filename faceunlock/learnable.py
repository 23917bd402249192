"""Which failed scans may become a learned look, and which matches renew one: the rules themselves,
shared by the daemon (which keeps a candidate until the password follows, faceunlock.service.learning)
and `eval sessions`."""

from __future__ import annotations

from faceunlock.decision import Decision
from faceunlock.store import is_learned

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


def renews(decision: Decision, strict_scan_threshold: float, strict_live_threshold: float) -> str | None:
    """The learned look this match renews (faceunlock.store.TemplateStore.renew), or None.

    Only a confident match renews: it matched, through a learned look, with a fused score under the
    strict level's scan threshold and a liveness score at or over the strict level's, whatever level
    is configured. A renewal changes no embedding, so no match can move the template toward anyone.
    """
    if decision.decision != "match" or not is_learned(decision.look):
        return None
    if decision.distance is None or not decision.distance < strict_scan_threshold:
        return None
    if decision.liveness != "pass" or decision.liveness_score is None:
        return None
    if not decision.liveness_score >= strict_live_threshold:
        return None
    return decision.look
