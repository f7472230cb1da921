"""tinylora.lab.landscape: reading a grid - best cell, 1 % neighbours, ratio interval, LoRA's
best."""

import math

import pytest

from tinylora.lab import landscape


def _cell(ka, kb, *seed_losses):
    return {"kA": ka, "kB": kb, "eta_A": 10 ** (ka / 4), "eta_B": 10 ** (kb / 4),
            "train": [[x] for x in seed_losses], "test": [[x] for x in seed_losses]}


CELLS = [_cell(-8, -8, 1.0, 1.2), _cell(-8, -4, 0.50, 0.52), _cell(-12, -4, 0.512, 0.513),
         _cell(-12, -8, 2.0, math.inf), _cell(-4, -4, 0.9, 0.95)]


def test_best_cell_is_the_lowest_seed_mean_and_one_diverged_seed_disqualifies():
    """The best cell minimises the mean over seeds; a cell with a diverged seed is inf."""
    assert landscape.cell_loss(CELLS[3]) == math.inf
    best = landscape.best_cell(CELLS)
    assert (best["kA"], best["kB"]) == (-8, -4)
    assert [(c["kA"], c["kB"]) for c in landscape.near_cells(CELLS)] == [(-8, -4), (-12, -4)]


def test_analysis_ratio_interval_and_lora():
    """Best ratio 10^(4/4) = 10; the interval spans the 1 % cells (ratios 10 and 100) and each
    seed's best, widened by half a step; LoRA's best is the best diagonal cell."""
    a = landscape.analyze(CELLS, per_decade=4)
    assert a["best_ratio"] == pytest.approx(10.0)
    lo, hi = a["ratio_interval"]
    assert lo == pytest.approx(10 / 10**0.125) and hi == pytest.approx(100 * 10**0.125)
    assert a["loss_loraplus"] == pytest.approx(0.51) and a["loss_lora"] == pytest.approx(0.925)
    assert a["above_diagonal"] and a["diverged_cells"] == 1


def test_every_cell_diverged_gives_no_best_not_an_error():
    """A grid where every cell diverged has no best cell: reported as None / inf, no crash."""
    a = landscape.analyze([_cell(0, 0, math.inf), _cell(1, 0, math.inf)], per_decade=4)
    assert a["best"] is None and a["best_ratio"] is None and a["loss_lora"] == math.inf


def test_matrix_fills_the_bounding_box_with_nan_for_missing_cells():
    """A heatmap needs a full rectangle: cells never trained are NaN (blank), diverged ones inf."""
    eta_a, eta_b, rows, _ = landscape.matrix(CELLS)
    assert len(eta_a) == 9 and len(eta_b) == 5  # kA -12..-4, kB -8..-4
    assert math.isnan(rows[0][1]) and rows[0][0] == math.inf
    assert eta_a[0] == pytest.approx(1e-3)
