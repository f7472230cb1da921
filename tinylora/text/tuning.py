"""Tuning one learning rate on a half-octave lattice that grows until its optimum is interior.

The lattice (index k, any integer; neighbours differ by a factor sqrt(2), half an octave):

    lr(k) = lr0 * 2^(k / 2)

`tune` evaluates the objective (in the study: the mean final validation loss over the tuning
seeds, inf if any of them diverged) at ``start - 1, start, start + 1``; while the lowest point
tried is at an end of what was tried, it tries one more point beyond that end. It stops when
the lowest point has a tried neighbour on each side (*interior*: the optimum is bracketed) or
after `max_points` points (then ``interior`` is False and the report says so). Ties go to the
smaller rate; a diverged point is inf, worse than any finite one, so a lattice whose top
diverges is bracketed from above by the divergence.

Where to start matters only for the cost. Under LoRA+ with lr_ratio R = lr_B / lr_A, the study
starts each lr_ratio where the previous one's optimum predicts it (`next_start`): if the optimum
keeps lr_A * lr_B fixed, lr_A moves by (R / R_prev)^-1/2, which is -log2(R / R_prev) lattice
steps. The grid of lr_ratios grows the same way as a lattice, an octave past an end while its
best lr_ratio lies there (`grow_at`).

Host-only arithmetic: the objective is a callable, so the rule is tested without a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

MAX_POINTS = 12  # 12 points span 2^5.5 = 45x in lr


def lattice_lr(lr0: float, k: int) -> float:
    """lr(k) = lr0 * 2^(k / 2)."""
    return float(lr0) * 2.0 ** (k / 2)


def lattice_index(lr0: float, lr: float) -> int:
    """The k with lattice_lr(lr0, k) == lr (to rounding)."""
    return round(2.0 * math.log2(lr / lr0))


def next_start(best_k: int, lr_ratio_prev: float, lr_ratio: float) -> int:
    """Where `lr_ratio` starts its lattice, from the optimum `best_k` of `lr_ratio_prev`:
    the point that keeps lr_A * lr_B = lr_A^2 R where it was (see the module docstring)."""
    return best_k - round(math.log2(lr_ratio / lr_ratio_prev))


def grow_at(found: dict):
    """The end of the lr_ratio grid to grow past, from `found` {lr_ratio: `Tuned`}: the lr_ratio
    with the lowest tuning-seed loss if it is the smallest or the largest tried (ties: the
    smaller one), else None (bracketed)."""
    best = min(sorted(found), key=lambda lr_ratio: found[lr_ratio].losses[found[lr_ratio].best])
    return best if best in (min(found), max(found)) else None


@dataclass(frozen=True)
class Tuned:
    """What `tune` found: `losses` {k: objective} for every point tried, `best` the lowest."""

    losses: dict
    best: int
    interior: bool

    def lr(self, lr0: float) -> float:
        return lattice_lr(lr0, self.best)


def lowest(losses: dict) -> int:
    """The k with the lowest value (ties: the smaller k)."""
    return min(sorted(losses), key=lambda k: losses[k])


def is_interior(losses: dict, k: int) -> bool:
    """Whether k's two lattice neighbours were both tried."""
    return k - 1 in losses and k + 1 in losses


def tune(objective: Callable[[int], float], start: int, max_points: int = MAX_POINTS) -> Tuned:
    """Grow the lattice from ``start - 1 .. start + 1`` until the optimum is interior."""
    if max_points < 3:
        raise ValueError(f"max_points: expected at least 3, got {max_points}")
    losses = {k: float(objective(k)) for k in (start - 1, start, start + 1)}
    while True:
        best = lowest(losses)
        if is_interior(losses, best) or len(losses) >= max_points:
            return Tuned(losses, best, is_interior(losses, best))
        k = best - 1 if best - 1 not in losses else best + 1
        losses[k] = float(objective(k))
