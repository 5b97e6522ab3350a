"""The process heap: memory that torch frees is kept for its next allocation instead of going back to the kernel.

glibc's malloc serves every block over its mmap threshold (at most 32 MB) with a fresh ``mmap`` and unmaps it on
``free``, and gives the top of its heap back to the kernel once enough of it is free. A training step allocates
the same large activations and gradients every time (seed S3 at batch 1,024: 28x28x128 maps of about 400 MB), so
every step got its memory anew from the kernel and paid a page fault, and the zeroing, for each 4 KB of it: 11 GB
faulted a step, a third of the step's time (``benchmarks/RESULTS.md``). With mmap off for the heap
and trimming off, a freed block is reused by the next step's allocation of the same size. The arithmetic is the
same, so results do not change; the price is a higher resident set (the heap keeps its high-water mark).

Why ``mallopt`` and not jemalloc or tcmalloc, which do the same: they must be preloaded (``LD_PRELOAD``) before
Python starts, which neither ``python -m ganbench`` nor a joblib worker can do; ``mallopt`` is glibc's own switch
for this, set from inside the process. Elsewhere (macOS, musl, Windows) this module does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NO_TRIM = 2**31 - 1  # mallopt takes an int: about 2 GB of free heap top before glibc would trim it


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (the one with mallopt and these parameters), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the heap for reuse (no mmap per large block, no trimming).

    Returns whether the setting is in force: False where the C library is not glibc. Safe to call more than once.
    """
    libc = _glibc()
    if libc is None:
        return False
    # Both must hold: without mmap every block comes from the heap, and without trimming the heap keeps it.
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, NO_TRIM))
