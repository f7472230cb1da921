"""Lesson 4's exercises, solved. Try them in the lesson first."""

import math

import numpy as np

from tinylora.lab import landscape


def best_ratio(cells, at):
    """eta_B / eta_A of the best cell (lowest finite training loss at index at)."""
    finite = [c for c in cells if math.isfinite(landscape.cell_loss(c, "train", at))]
    best = min(finite, key=lambda c: landscape.cell_loss(c, "train", at))
    return best["eta_B"] / best["eta_A"]


def ratio_interval(near_ratios, seed_ratios, per_decade):
    """-> (lo, hi): the ratios' range, widened by half a lattice step on each side."""
    half_step = 10 ** (0.5 / per_decade)
    ratios = list(near_ratios) + list(seed_ratios)
    return min(ratios) / half_step, max(ratios) * half_step


def slope_with_interval(widths, values, t):
    """-> (slope, lo, hi) of the log-log least-squares line."""
    lx, ly = np.log(widths), np.log(values)
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (intercept + slope * lx)
    stderr = math.sqrt((resid**2).sum() / (len(lx) - 2) / ((lx - lx.mean()) ** 2).sum())
    return slope, slope - t * stderr, slope + t * stderr
