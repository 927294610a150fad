"""Keep memory the model frees inside the process, for the next layer to reuse.

On CPU, torch allocates every activation afresh: BLIP-base at batch 8 asks for tens of MB per
layer (a 64 MB attention matrix per vision layer in bfloat16). glibc hands blocks that large to
the kernel with mmap and gives them back with munmap when freed, and the threads' own arenas
trim their heaps as they shrink, so the next layer's buffers are page-faulted and zeroed again:
23k faults per image for a bare ``generate`` on the main thread, 65k-90k in the service, whose
model runs on a thread of its own (measured on BLIP-base, batch 8; evaluation/results/bench/README.md).

``keep_freed_memory`` tells glibc (mallopt) to serve large blocks from its heaps and not to
give freed memory back until at least ``TRIM_BYTES`` sit unused at the top: once the heaps have
settled (a few batches) the faults drop to about none. Costs and limits: the process keeps the
memory of its largest batches (a few copies of the biggest buffers; RSS stays near its peak
instead of falling between batches), and a thread other than the main one still gets blocks
over 64 MB mapped afresh (glibc's per-thread heaps are at most 64 MB). Process-wide, so it is
applied once, by the backend that loads a model on CPU when asked to
(``ALTTEXT_KEEP_FREED_MEMORY``, on by default in the service).

Kept memory is not given back at all, and batches of different sizes carve the heaps into
holes of different sizes, so under a long load RSS crept up (about 50 MB over 7 minutes for
BLIP-base in float32 at 16 clients, evaluation/results/bench/README.md). ``trim_if_due``, called
by the backend after each batch, hands every free page back (``malloc_trim``) at most once per
``TRIM_EVERY_S``: RSS falls back to what is in use, and only the next batch faults its buffers
in again, once a minute instead of every layer.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from functools import lru_cache

log = logging.getLogger(__name__)

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

TRIM_BYTES = 1 << 30  # freed memory above this at a heap's top goes back to the OS
TOP_PAD_BYTES = 64 << 20  # each heap grows by at least this, so growth is rare

TRIM_EVERY_S = 60.0

_lock = threading.Lock()
_applied: bool | None = None
_last_trim = time.monotonic()


def keep_freed_memory() -> bool:
    """Apply the policy to this process once; False where the C library is not glibc."""
    global _applied
    with _lock:
        if _applied is None:
            _applied = _mallopt_all()
            if _applied:
                log.info("allocator keeps freed memory for reuse", extra={"trim_bytes": TRIM_BYTES})
        return _applied


def trim_if_due(every_s: float = TRIM_EVERY_S) -> bool:
    """Give the heaps' free pages back to the OS if the policy is applied and ``every_s`` seconds
    have passed since the last time; True when it trimmed."""
    global _last_trim
    with _lock:
        if not _applied or time.monotonic() - _last_trim < every_s:
            return False
        _last_trim = time.monotonic()
    _glibc().malloc_trim(0)
    return True


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (musl and others have no such tunables), else None. Found
    once: ``find_library`` runs ldconfig, which the model thread should not do every minute."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.gnu_get_libc_version
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def _mallopt_all() -> bool:
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt answers 1 for a value taken. M_MMAP_MAX=0: no mmap for large blocks, which also
    # stops the threshold from moving; trimming only past TRIM_BYTES of unused top.
    return all(mallopt(param, value) == 1 for param, value in
               ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_BYTES), (M_TOP_PAD, TOP_PAD_BYTES)))
