"""Learning from the password, the way Face ID does: a near miss followed by the password becomes a look.

When a PAM scan of a user fails and the same PAM application (the same process: the module's
account stage runs where its auth stage ran) then reports a password login for that user within
LEARN_WINDOW_S, the scan's best frames are kept as a new learned look (faceunlock.store.learn) if,
and only if:

- the scan judged a face and did not match (never an error, no face, a timeout or a lockout);
- the liveness check passed on that face (never doubt, never an attack);
- at least MIN_FRAMES quality frames of one tracked face were fused;
- their fused score is under the model card's per-pair threshold of the security level: the same
  person on another day or in other light, not someone else (the attempt-level threshold that
  decides a match is stricter).

Only requests the daemon scanned can leave a candidate, so nothing is learned from a remote or
refused request. A match, or any other scan of the user, clears the candidate. Learned looks are
bounded in number and age by the store, listed by `faceunlock list`, removable like any
enrolment, and every one is written to the audit log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from faceunlock.decision import Decision
from faceunlock.learnable import MIN_FRAMES, why_not

__all__ = ["LEARN_WINDOW_S", "MIN_FRAMES", "Candidate", "Learner", "why_not"]

LEARN_WINDOW_S = 120.0


@dataclass(frozen=True)
class Candidate:
    """A failed scan that may become a look once the password follows."""

    user: str
    pid: int
    at: float
    embeddings: np.ndarray
    distance: float


class Learner:
    """The daemon's candidates, one per user; the main loop's thread only."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.pending: dict[str, Candidate] = {}

    def after_scan(self, user: str, pid: int, decision: Decision, per_pair_threshold: float) -> str | None:
        """Keep a candidate of this scan, or drop the user's old one; returns why not kept, or None."""
        self.pending.pop(user, None)
        why = why_not(decision, per_pair_threshold)
        if why is None:
            emb = np.asarray(decision.embeddings, np.float32)
            self.pending[user] = Candidate(user, pid, self.clock(), emb, float(decision.distance))
        return why

    def after_password(self, user: str, pid: int) -> Candidate | None:
        """The user's candidate, when this password login comes from the process that asked for the
        scan, within LEARN_WINDOW_S; it is used up either way."""
        candidate = self.pending.pop(user, None)
        if candidate is None or candidate.pid != pid or self.clock() - candidate.at > LEARN_WINDOW_S:
            return None
        return candidate
