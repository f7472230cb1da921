"""Lesson 4's exercises, solved. Try them in the lesson first."""

import math

import numpy as np

from tinylora.lab import landscape


def best_ratio(cells, at):
    """eta_B / eta_A of the best cell (lowest finite training loss at index at)."""
    finite = [c for c in cells if math.isfinite(landscape.cell_loss(c, "train", at))]
    best = min(finite, key=lambda c: landscape.cell_loss(c, "train", at))
    return best["eta_B"] / best["eta_A"]


def predicted_exponents(measurement, readout):
    """{"eta_A", "eta_B", "ratio"}: the exponents of n of the rates the measurement finds."""
    # Adam, Init[1]: delta2 ~ eta_B, delta1 ~ eta_A n eta_B. Balanced: both = c -> (-1, 0).
    # Loss-optimal: the output's step Theta(1); with sp a coordinated feature change is amplified
    # by sqrt(n), so delta2 ~ n^-1/2 -> eta_B ~ n^-1/2, and eta_A ~ n^-1 still.
    eta_B = -0.5 if (measurement, readout) == ("loss_optimal", "sp") else 0.0
    return {"eta_A": -1.0, "eta_B": eta_B, "ratio": eta_B + 1.0}


def slope_with_interval(widths, values, t):
    """-> (slope, lo, hi) of the log-log least-squares line."""
    lx, ly = np.log(widths), np.log(values)
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (intercept + slope * lx)
    stderr = math.sqrt((resid**2).sum() / (len(lx) - 2) / ((lx - lx.mean()) ** 2).sum())
    return slope, slope - t * stderr, slope + t * stderr
