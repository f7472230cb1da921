"""Out of memory, said in one line: which width, what the allocation asked, the device's memory.

A width too large for the card (or for the host) fails at its first large allocation: CuPy raises
``cupy.cuda.memory.OutOfMemoryError``, NumPy ``_ArrayMemoryError``, both `MemoryError`s. A command
that computes one part per width (`ResultsDir.cached`) turns it into `OutOfMemory`, one line that
the `tinylora` command prints as ``tinylora <command>: error: out of memory at width 32768: ...``,
naming the finished parts kept in the results folder (a rerun with widths that fit resumes from
them). The numbers are the device's own (``cudaMemGetInfo``) or the host's RAM.
"""

from __future__ import annotations

import os

GIB = 2.0**30


class OutOfMemory(RuntimeError):
    """A part of a command needed more memory than the device (or the host) has."""


def on_gpu(err: BaseException) -> bool:
    """Whether `err` is CuPy's (the GPU's memory), not NumPy's or Python's (the host's)."""
    return type(err).__module__.startswith("cupy")


def gpu_memory() -> tuple[str, int, int, int]:
    """(device name, total bytes, free bytes, CuPy's pool limit in bytes, 0 for none)."""
    import cupy  # noqa: PLC0415 (only after CuPy itself raised)

    free, total = cupy.cuda.runtime.memGetInfo()
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return name, total, free, cupy.get_default_memory_pool().get_limit()


def host_memory() -> int:
    """The host's RAM in bytes (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def memory_line(err: BaseException) -> str:
    """What the memory was: 'the GPU (NVIDIA H200) has 139.8 GiB, 12.0 GiB free' or the host's."""
    if not on_gpu(err):
        total = host_memory()
        return f"the host has {total / GIB:.1f} GiB of RAM" if total else "the host's RAM"
    try:
        name, total, free, limit = gpu_memory()
    except Exception:  # noqa: BLE001 (a report of a failure must not fail itself)
        return "the GPU's memory could not be read"
    pool = f", CuPy's memory pool limited to {limit / GIB:.1f} GiB" if limit else ""
    return f"the GPU ({name}) has {total / GIB:.1f} GiB, {free / GIB:.1f} GiB free{pool}"


def out_of_memory(err: MemoryError, what: str, folder, kept: list) -> OutOfMemory:
    """The one-line error for `what` (e.g. "width 32768") that ran out of memory, `kept` being
    the finished parts in `folder`."""
    said = " ".join(str(err).split()) or type(err).__name__
    done = (f"the finished parts are kept in {folder}: {', '.join(kept)}; run again with the "
            f"widths that fit to resume from them" if kept else "no part had finished")
    return OutOfMemory(f"out of memory at {what}: {said.rstrip('.')} ({memory_line(err)}); "
                       f"{done}")
