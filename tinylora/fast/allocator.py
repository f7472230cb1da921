"""Keep freed memory in the process: glibc's malloc tuned for a loop of same-sized arrays.

A training step allocates its activations and gradients, frees them, and the next step asks for
the same sizes again. glibc's defaults fit that loop badly: a freed block at the top of the heap
larger than a "trim threshold" (a few hundred KB after its dynamic adjustment) is returned to the
operating system, and blocks above an "mmap threshold" get their own mapping, unmapped on free.
Either way the next step touches fresh pages, and each first touch is a page fault that the
kernel fills with zeros: thousands per step for a Transformer block at d_model 128 (30 MB of
zeroed pages), a third of the step's time. PyTorch's CPU tuning guide meets the same problem by
swapping in jemalloc or tcmalloc; here two ``mallopt`` calls suffice:

    M_MMAP_THRESHOLD = 32 MB   blocks below this come from the heap, not from their own mapping
    M_TRIM_THRESHOLD = 1 GB    free memory at the top of the heap stays until it exceeds this

(the same as running with ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824``).
The cost: memory a step freed stays reserved for the next one (the process does not shrink).

This changes the whole process, so the library never does it on import: the `tinylora` command,
which owns its process, calls `keep_freed_memory` (set ``TINYLORA_MALLOC=default`` to skip it).
In a notebook or script of your own, call it once yourself if you like. Elsewhere than Linux with
glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 2**30
ENV_VAR = "TINYLORA_MALLOC"

_state = {"tuned": False}


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above. -> True when it is in force (now or before)."""
    if _state["tuned"]:
        return True
    if os.environ.get(ENV_VAR, "").strip().lower() == "default":
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _state["tuned"] = ok
    return ok


def is_tuned() -> bool:
    """Whether `keep_freed_memory` has taken effect in this process."""
    return _state["tuned"]
