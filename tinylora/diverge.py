"""When a run has diverged: one rule for `tinylora.train.train`, the lab's grids and the
fine-tuning on text.

A run has *diverged* at step t when its loss there is not finite, or is more than `DIVERGED`
times its starting loss (the loss before any update). From that step on tinylora records its
loss as inf, and says so: `train` warns with `Diverged`, naming the step, and the results
files mark the run as diverged. A non-finite number is never passed on as if it were data.
"""

from __future__ import annotations

import contextlib
import math

DIVERGED = 1e6  # a loss this many times the starting loss counts as diverged


class Diverged(RuntimeWarning):
    """A training run diverged (its message names the step and the loss)."""


def diverged(loss: float, start: float) -> bool:
    """True when `loss` (a host float) is not finite or exceeds DIVERGED * `start`.

    A starting loss of 0 (or below) only lets the first part of the rule apply: 0 times any
    multiple would call every later loss > 0 diverged.
    """
    loss, start = float(loss), float(start)
    if not (math.isfinite(loss) and math.isfinite(start)):
        return True
    return start > 0 and loss > DIVERGED * start


def message(step: int, loss: float, start: float, what: str = "training") -> str:
    """The one line that reports a divergence: the step, the loss, the rule it broke."""
    return (f"{what} diverged at step {step}: loss {loss:.4g} (start {start:.4g}); the rule is "
            f"'not finite, or above {DIVERGED:g} times the starting loss'")


def quiet_overflow(xp):
    """A context in which NumPy does not warn about the overflows of a diverging run (the run
    is reported as diverged instead); a no-op for a backend without ``errstate``."""
    errstate = getattr(xp, "errstate", None)
    return errstate(all="ignore") if errstate else contextlib.nullcontext()
