"""Keep the long-lived monitor's resident memory near its steady state (glibc's allocator).

Chosen once at import: on Linux glibc's ``mallopt``/``malloc_trim`` (loaded on first use; a
Linux with another C library, musl for one, has neither and gets the no-ops); elsewhere no-ops,
as the other systems' allocators have no such knobs.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

if sys.platform.startswith("linux"):
    @cache
    def _glibc() -> Any:
        """glibc's C library, or None (other C libraries have no malloc_trim)."""
        import ctypes

        try:
            libc = ctypes.CDLL("libc.so.6")
            return libc if hasattr(libc, "malloc_trim") else None
        except OSError:
            return None

else:
    def _glibc() -> Any:
        """No glibc off Linux."""
        return None


def limit_malloc_arenas() -> None:
    """One long-lived process with short-lived probe threads: glibc would give each thread its
    own malloc arena and keep their free pages; two arenas are plenty for this loop."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-8, 2)   # M_ARENA_MAX (malloc.h)


def release_free_memory() -> None:
    """Hand the pages freed by a measurement (audio buffers, FFTs) back to the OS, so the
    resident size stays near the steady state between measurements (glibc ``malloc_trim``)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
