"""The one place that sets torch's thread count (process-wide, so every network shares it)."""

from __future__ import annotations

import torch

DEFAULT_CAP = 2
"""Without an explicit count, at most this many: under CPU contention more threads are slower."""


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count to threads (>= 1), or cap it at DEFAULT_CAP; returns it."""
    if threads is None:
        threads = min(DEFAULT_CAP, torch.get_num_threads())
    elif threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads
