"""Log-log slopes with a confidence interval: "how does this quantity scale with the width?"

A quantity that behaves like ``c * n^s`` is a straight line of slope s in log-log axes:
``log y = log c + s log n``. We fit that line by least squares and give a 95 % interval for s
from the residuals (Student's t with ``k - 2`` degrees of freedom for k points): the textbook
interval of a regression slope, which assumes the scatter around the line is independent noise.

This module works on a handful of host floats (summaries, not training arrays), so it imports
numpy directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np  # host-side statistics on a few floats, never on device arrays

# Two-sided 95 % quantiles of Student's t, t_{0.975}(df), for df = 1..30 (any statistics table).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """t_{0.975} with `df` degrees of freedom (1.96, the normal value, beyond 30)."""
    if df < 1:
        raise ValueError(f"df: expected at least 1 degree of freedom, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass(frozen=True)
class SlopeFit:
    """``log y = intercept + slope * log x`` (natural logs), with a 95 % interval on the slope.

    `interval` is None with fewer than 3 points (no residual left to estimate the noise).
    """

    slope: float
    intercept: float
    interval: tuple[float, float] | None
    n_points: int

    def contains(self, value: float) -> bool | None:
        """Whether `value` lies inside the interval (None when there is no interval)."""
        if self.interval is None:
            return None
        return self.interval[0] <= value <= self.interval[1]

    def __str__(self) -> str:
        ci = "" if self.interval is None else f" [{self.interval[0]:.2f}, {self.interval[1]:.2f}]"
        return f"{self.slope:.3f}{ci}"


def loglog_slope(x, y) -> SlopeFit | None:
    """Fit ``|y| ~ c x^s``. Points with y = 0 or a non-finite y are left out (log undefined);
    None when fewer than 2 points remain (no slope can be drawn)."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.abs(np.asarray(y, dtype=float).ravel())
    if x.shape != y.shape:
        raise ValueError(f"x, y: expected the same number of points, got {x.size} and {y.size}")
    if np.any(x <= 0):
        raise ValueError("x: expected positive values (widths) for a log-log fit")
    keep = np.isfinite(y) & (y > 0)
    lx, ly = np.log(x[keep]), np.log(y[keep])
    k = lx.size
    if k < 2 or np.ptp(lx) == 0:
        return None
    mx = lx.mean()
    sxx = float(((lx - mx) ** 2).sum())
    slope = float(((lx - mx) * (ly - ly.mean())).sum() / sxx)
    intercept = float(ly.mean() - slope * mx)
    interval = None
    if k >= 3:
        resid = ly - (intercept + slope * lx)
        stderr = math.sqrt(float((resid**2).sum()) / (k - 2) / sxx)
        half = t975(k - 2) * stderr
        interval = (slope - half, slope + half)
    return SlopeFit(slope, intercept, interval, k)
