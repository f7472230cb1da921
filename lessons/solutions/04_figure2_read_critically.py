"""Lesson 4's exercises, solved. Try them in the lesson first."""

import math

import numpy as np


def best_constant_loss(y):
    """The lowest mean squared error of a constant prediction f = c of the targets y."""
    # d/dc mean((y - c)^2) = -2 mean(y - c) = 0 at c = mean(y): the loss left is the variance.
    y = np.asarray(y, dtype=float)
    return float(np.mean((y - y.mean()) ** 2))


def circled_ratios(cells, at, tol):
    """-> (min, max) of eta_B / eta_A over the cells within a factor 1 + tol of the best."""
    def loss(c):
        values = [float(v[at]) for v in c["train"]]
        return sum(values) / len(values) if all(math.isfinite(v) for v in values) else math.inf

    best = min(loss(c) for c in cells)
    ratios = [c["eta_B"] / c["eta_A"] for c in cells if loss(c) <= (1 + tol) * best]
    return min(ratios), max(ratios)


def diagonal_best_loss(cells, at):
    """The lowest training loss at index at among the cells with eta_A == eta_B."""
    from tinylora.lab import landscape

    return min(landscape.cell_loss(c, "train", at) for c in cells if c["kA"] == c["kB"])
