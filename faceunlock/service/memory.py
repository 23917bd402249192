"""Hand freed heap memory back to the system, so the idle daemon stays small.

After loading the networks and after each camera job, glibc keeps the freed buffers (frames,
activations) mapped for reuse; malloc_trim returns them. Elsewhere (not glibc) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util


def release_free_memory() -> bool:
    """malloc_trim(0) where the C library has it; True if it returned memory."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return False
    return bool(trim(0))
