"""Reading a learning-rate grid: the best cell, the cells within 1 % of it, the best ratio
eta_B / eta_A with an interval, and plain LoRA's best (the eta_A = eta_B diagonal).

A cell is a dict ``{"kA", "kB", "eta_A", "eta_B", "train", "test"}`` where k are lattice indices
(``eta = 10^(k / per_decade)``, see `tinylora.lab.grid`) and ``train[s][j]`` is seed s's loss at the
j-th recorded step. A cell's loss is the mean over its seeds; one diverged seed makes it inf.

The interval of the best ratio (per width) is the range of eta_B / eta_A over
  - the cells whose seed-mean loss is within 1 % of the best (how flat the optimum is), and
  - each seed's own best cell (how much it moves with the seed),
widened by half a lattice step on each side (the optimum can lie anywhere between grid points).
That describes one grid as it is (the heatmaps of `tinylora toy-heatmap`); it is not a confidence
interval, and the width sweep does not use it: it locates its optimum with
`tinylora.lab.optimum` (a quadratic fit, intervals from a bootstrap over seeds). Pure Python on
host floats.
"""

from __future__ import annotations

import math

NEAR = 0.01  # "within 1 % of the best"


def cell_loss(cell: dict, which: str = "train", at: int = -1, seed: int | None = None) -> float:
    """The loss of a cell at record index `at`: one seed's, or the mean over seeds."""
    values = cell[which]
    if seed is not None:
        return float(values[seed][at])
    losses = [float(v[at]) for v in values]
    if any(math.isinf(x) or math.isnan(x) for x in losses):
        return math.inf
    return sum(losses) / len(losses)


def ratio(cell: dict) -> float:
    return cell["eta_B"] / cell["eta_A"]


def best_cell(cells, which="train", at=-1, seed=None):
    """The cell with the lowest loss (None if every cell diverged)."""
    finite = [c for c in cells if math.isfinite(cell_loss(c, which, at, seed))]
    return min(finite, key=lambda c: cell_loss(c, which, at, seed)) if finite else None


def near_cells(cells, which="train", at=-1, tol: float = NEAR):
    """The cells whose loss is within a factor (1 + tol) of the best."""
    best = best_cell(cells, which, at)
    if best is None:
        return []
    bound = (1.0 + tol) * cell_loss(best, which, at)
    return [c for c in cells if cell_loss(c, which, at) <= bound]


def analyze(cells: list, per_decade: int, which: str = "train", at: int = -1,
            n_seeds: int | None = None) -> dict:
    """Everything a summary reports about one grid (one width, one setting)."""
    best = best_cell(cells, which, at)
    diagonal = [c for c in cells if c["kA"] == c["kB"]]
    lora = best_cell(diagonal, which, at)
    out = {"n_cells": len(cells), "best": None, "loss_loraplus": math.inf, "loss_lora": math.inf,
           "best_ratio": None, "ratio_interval": None, "seed_best_ratios": [],
           "lora_eta": None if lora is None else lora["eta_A"],
           "diverged_cells": sum(math.isinf(cell_loss(c, which, at)) for c in cells)}
    if lora is not None:
        out["loss_lora"] = cell_loss(lora, which, at)
    if best is None:
        return out
    n_seeds = n_seeds or len(best[which])
    seed_best = [best_cell(cells, which, at, seed=s) for s in range(n_seeds)]
    seed_best = [c for c in seed_best if c is not None]
    near = near_cells(cells, which, at)
    spread = [ratio(c) for c in near + seed_best]
    half_step = 10.0 ** (0.5 / per_decade)
    out.update({
        "best": {k: best[k] for k in ("eta_A", "eta_B", "kA", "kB")},
        "loss_loraplus": cell_loss(best, which, at),
        "best_ratio": ratio(best),
        "ratio_interval": [min(spread) / half_step, max(spread) * half_step],
        "seed_best_ratios": [ratio(c) for c in seed_best],
        "near": [(c["kA"], c["kB"]) for c in near],
        "above_diagonal": best["kB"] > best["kA"],
    })
    return out


def window_cells(payload: dict) -> list:
    """The cells of a sweep payload's final 2-D window (the heatmap), without the diagonal's
    extra cells (`tinylora.lab.sweep`)."""
    (a0, a1), (b0, b1) = payload["window_A"], payload["window_B"]
    return [c for c in payload["cells"] if a0 <= c["kA"] <= a1 and b0 <= c["kB"] <= b1]


def matrix(cells: list, which: str = "train", at: int = -1):
    """-> (eta_A list, eta_B list, loss rows over eta_B of columns over eta_A, index of (kA, kB)).

    The bounding box of the cells on the lattice; a position with no cell is nan."""
    ka = sorted({c["kA"] for c in cells})
    kb = sorted({c["kB"] for c in cells})
    ka, kb = list(range(ka[0], ka[-1] + 1)), list(range(kb[0], kb[-1] + 1))
    grid = [[math.nan] * len(ka) for _ in kb]
    etas_a, etas_b = {}, {}
    for c in cells:
        grid[kb.index(c["kB"])][ka.index(c["kA"])] = cell_loss(c, which, at)
        etas_a[c["kA"]], etas_b[c["kB"]] = c["eta_A"], c["eta_B"]
    step = _step(cells)
    eta_a = [etas_a.get(k, 10.0 ** (k * step)) for k in ka]
    eta_b = [etas_b.get(k, 10.0 ** (k * step)) for k in kb]
    index = {(a, b): (kb.index(b), ka.index(a)) for a in ka for b in kb}
    return eta_a, eta_b, grid, index


def _step(cells) -> float:
    """log10 of the lattice step, read off one cell: k / per_decade = log10(eta)."""
    c = next((c for c in cells if c["kA"] != 0), cells[0])
    return math.log10(c["eta_A"]) / c["kA"] if c["kA"] else 0.25


def panel(cells: list, title: str, which: str = "train", at: int = -1) -> dict:
    """A `tinylora.lab.plots.heatmaps` panel for these cells (best and within-1 % marked)."""
    eta_a, eta_b, grid, index = matrix(cells, which, at)
    best = best_cell(cells, which, at)
    return {"title": title, "eta_A": eta_a, "eta_B": eta_b, "loss": grid,
            "best": None if best is None else index[(best["kA"], best["kB"])],
            "near": [index[(c["kA"], c["kB"])] for c in near_cells(cells, which, at)]}
