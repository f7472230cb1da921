"""How much faster is the batched grid than training the same cells one by one?

Both sides train the same cells of the fine-tuning toy (Adam, shared frozen model and data) for
the same steps; the batched side stacks every cell into one model
(`tinylora.lab.grid.train_cells`), the other trains plain models in a loop
(`tinylora.lab.grid.train_one_by_one`). Wall-clock seconds, best of `repeats` (the least
disturbed by other work on the machine). A measurement, not a test.
"""

from __future__ import annotations

import time

from tinylora.lab import grid
from tinylora.lab.finetune_toy import toy_task


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def speedup(width: int, n_cells: int = 16, steps: int = 10, n_train: int = 64, repeats: int = 2,
            backend_name=None, dtype=None) -> dict:
    """-> {"width", "cells", "steps", "batched_s", "one_by_one_s", "speedup"} for one width."""
    task = toy_task(width, "finetune", "adam", steps, (steps,), n_train=n_train, n_test=16,
                    backend_name=backend_name, dtype=dtype)
    side = int(n_cells**0.5)
    cells = [(grid.eta(a), grid.eta(b))
             for a in range(-12, -12 + side) for b in range(-8, -8 + side)]
    batched = _best_time(lambda: grid.train_cells(task, cells, [0]), repeats)
    single = _best_time(lambda: grid.train_one_by_one(task, cells, [0]), repeats)
    return {"width": width, "cells": len(cells), "steps": steps, "batched_s": batched,
            "one_by_one_s": single, "speedup": single / batched}
