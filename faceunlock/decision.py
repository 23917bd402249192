"""The outcome of a verification scan: a plain record, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

DECISIONS = ("match", "no-match", "no-face", "timeout", "not-enrolled", "locked-out", "error")


@dataclass
class Decision:
    """The outcome of one scan, with the reason and what was seen."""

    user: str
    decision: str
    distance: float | None = None
    threshold: float | None = None
    frames: int = 0
    elapsed_ms: float = 0.0
    reason: str = ""
    judged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    liveness: str = "not-checked"
    liveness_score: float | None = None
    liveness_reason: str = ""
    liveness_cues: dict[str, float] = field(default_factory=dict)
    first_judged_ms: float | None = None
    look: str = ""
    """The enrolment (label) the best fused window came closest to; "" when none was fused."""
    frame: Any = field(default=None, repr=False, compare=False)
    embeddings: Any = field(default=None, repr=False, compare=False)
    """The quality frames' embeddings of the best-scoring track (for learning a look), or None."""

    @property
    def matched(self) -> bool:
        return self.decision == "match"

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("frame", "embeddings")}
        out["skipped"] = dict(self.skipped)
        out["liveness_cues"] = dict(self.liveness_cues)
        if self.liveness_score is not None:
            out["liveness_score"] = round(float(self.liveness_score), 4)
        out["elapsed_ms"] = round(self.elapsed_ms, 1)
        if self.distance is not None:
            out["distance"] = round(float(self.distance), 4)
        if self.first_judged_ms is not None:
            out["first_judged_ms"] = round(self.first_judged_ms, 1)
        return out
