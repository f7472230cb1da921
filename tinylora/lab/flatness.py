"""The forward check the theory really states: with eta_A = a / n and eta_B = b for fixed (a, b),
the sizes RMS(delta1) and RMS(delta2) of the LoRA layer do not depend on the width, at every
step t = 1..T. For which (a, b, T) that holds is measured here, beside the balanced roots.

For each (a, b), the sizes at every step are measured at every width (seed means, the same
runs as `tinylora.lab.balance.Evaluator`: all (a, b) of a width in one stacked pass) and their
log-log slope against n is fitted per step. A step is *flat* when both slopes are within
`FLAT` of 0 (a size that is exactly 0, delta1 at t = 1 under Init[1], counts as flat); `T_flat`
is the last step up to which every step is flat.
"""

from __future__ import annotations

import math

from tinylora.lab.fit import loglog_slope

FLAT = 0.1  # |slope| of log(size) against log(n) below which a size counts as width-independent
A_VALUES = (0.25, 1.0, 4.0)  # eta_A * n
B_VALUES = (1e-3, 3e-3, 1e-2, 3e-2)  # eta_B


def _slope(widths, values):
    if all(v == 0 for v in values):
        return 0.0
    if not all(v is not None and math.isfinite(v) and v > 0 for v in values):
        return None
    fit = loglog_slope(widths, values)
    return None if fit is None else fit.slope


def check(evaluator_for, widths, layer: str, steps: int, a_values=A_VALUES,
          b_values=B_VALUES) -> list[dict]:
    """`evaluator_for(width)` -> an evaluate(points) (`balance.Evaluator`). -> one row per
    (a, b): the slopes of delta1 and delta2 at each step, and T_flat (0: not even step 1)."""
    pairs = [(a, b) for a in a_values for b in b_values]
    sizes = {}
    for w in widths:
        for (a, b), res in zip(pairs, evaluator_for(w)([(a / w, b) for a, b in pairs])):
            sizes[(a, b, w)] = res
    rows = []
    for a, b in pairs:
        per_step, t_flat = [], 0
        for t in range(1, steps + 1):
            key = f"{t}:{layer}"
            s1 = _slope(widths, [sizes[(a, b, w)][key]["delta1"] for w in widths])
            s2 = _slope(widths, [sizes[(a, b, w)][key]["delta2"] for w in widths])
            flat = s1 is not None and s2 is not None and abs(s1) <= FLAT and abs(s2) <= FLAT
            per_step.append({"t": t, "delta1": s1, "delta2": s2, "flat": flat})
            t_flat = t if flat and t_flat == t - 1 else t_flat
        rows.append({"a": a, "b": b, "T_flat": t_flat, "steps": per_step})
    return rows
