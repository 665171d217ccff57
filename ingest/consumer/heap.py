"""Hand large freed buffers back to the system, so a consumer's memory stays bounded (§10).

glibc keeps what a thread frees in that thread's arena, and after a large buffer is freed it
raises the size from which it maps buffers of their own (up to 32 MB). The writer builds each
insert's data, several MB, in a worker thread: their pages stayed behind, ~70 MB more anonymous
memory at the benchmark's peak. With a fixed threshold such buffers are mapped, and unmapped
when freed; two arenas serve the event loop and the worker threads.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # mallopt's parameters in glibc's malloc.h
MMAP_THRESHOLD = 1 << 20
ARENAS = 2


def return_large_frees() -> None:
    """Tune this process's malloc; nothing where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_ARENA_MAX, ARENAS)
