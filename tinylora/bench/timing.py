"""The timer of `tinylora bench`: interleaved medians, repetitions that fit a budget, peak memory.

Contenders are *interleaved*: each round calls every function a few times in a row and the order
rotates from round to round, so that a machine whose load drifts slows every contender alike.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc


def time_interleaved(fns: dict, rounds: int, inner: int, warmup: int) -> dict:
    """Median seconds per call of each function in `fns`.

    Each round calls every function `inner` times in a row (timing each call), and the order of
    the functions rotates from round to round; garbage collection is off while timing.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names, samples = list(fns), {name: [] for name in fns}
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for k in range(rounds):
            for name in names[k % len(names):] + names[: k % len(names)]:
                fn, out = fns[name], samples[name]
                for _ in range(inner):
                    t0 = time.perf_counter()
                    fn()
                    out.append(time.perf_counter() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return {name: statistics.median(s) for name, s in samples.items()}


def peak_bytes(fn) -> int:
    """Bytes allocated at the peak of one call of `fn`, above what was live before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, peak - before)


# How long to time each row: (seconds per row, fewest rounds, most rounds, most calls per round)
BUDGETS = {"full": (8.0, 5, 20, 5), "quick": (1.0, 3, 5, 3)}


def plan_repetitions(per_call: float, quick: bool) -> tuple[int, int]:
    """(rounds, inner) that fit the row's time budget, given the seconds one call of every
    contender takes together; slow rows get one call per round, and never fewer than the
    least rounds."""
    budget, least, most, max_inner = BUDGETS["quick" if quick else "full"]
    inner = max(1, min(max_inner, int(budget / (least * per_call))))
    rounds = max(least, min(most, int(budget / (inner * per_call))))
    return rounds, inner


def warm_up(fns: dict, times: int) -> float:
    """Call each function `times` times (state allocated, caches warm). -> the seconds that the
    last call of every function took, summed."""
    total = 0.0
    for fn in fns.values():
        for _ in range(times):
            t0 = time.perf_counter()
            fn()
            last = time.perf_counter() - t0
        total += last
    return total
