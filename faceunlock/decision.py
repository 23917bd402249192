"""The outcome of a verification scan: a plain record, importable without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DECISIONS = ("match", "no-match", "no-face", "timeout", "not-enrolled", "error")


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

    @property
    def matched(self) -> bool:
        return self.decision == "match"

    def as_dict(self) -> dict:
        out = asdict(self)
        out["elapsed_ms"] = round(self.elapsed_ms, 1)
        if self.distance is not None:
            out["distance"] = round(float(self.distance), 4)
        return out
