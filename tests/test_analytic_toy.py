"""The analytic toy (paper Eq. 2): its slopes are exact, so the theory is checked tightly."""

import json
import math

import numpy as np
import pytest

from tinylora.lab import analytic_toy as toy
from tinylora.run.cli import main

WIDTHS = tuple(2**k for k in range(4, 15))


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_measured_slopes_equal_theory_for_every_schedule(optimizer):
    """Init[1]: at steps 1 and 2 every delta's log-log slope is the derived one (within 0.05),
    for every schedule; the theory schedule stays flat at every step."""
    rows = toy.run(WIDTHS, steps=3, init=1, optimizers=(optimizer,))
    fits = [f for f in toy.slopes(rows, 1) if f["theory"] is not None]
    assert {f["schedule"] for f in fits} == set(toy.SCHEDULES)
    for f in fits:
        assert f["exact"], f
        assert f["slope"] == pytest.approx(f["theory"], abs=0.05), f


def test_init2_slopes_where_the_theory_is_exact():
    """Init[2] (a = 0, b = 1): at step 1 only a moves and delta1 ~ eta_a n; the theory schedule
    is width-free at every step."""
    rows = toy.run(WIDTHS, steps=3, init=2)
    exact = [f for f in toy.slopes(rows, 2) if f["exact"] and f["theory"] is not None]
    assert len(exact) >= 2 * (4 + 2 * 3)
    for f in exact:
        assert f["slope"] == pytest.approx(f["theory"], abs=0.05), f


def test_one_shared_rate_cannot_keep_both_deltas_constant():
    """Prop. 1 in numbers: with a shared rate delta1 grows like n while delta2 stays flat; with
    eta_a ~ 1/n both are flat (step 2, GD)."""
    fits = {(f["schedule"], f["quantity"]): f["slope"]
            for f in toy.slopes(toy.run(WIDTHS, steps=2, optimizers=("gd",)), 1) if f["step"] == 2}
    assert fits[("shared", "delta1")] > 0.9 and abs(fits[("shared", "delta2")]) < 0.05
    assert abs(fits[("theory", "delta1")]) < 0.05 and abs(fits[("theory", "delta2")]) < 0.05


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_the_three_deltas_add_up_to_the_change_of_f(optimizer):
    """f_t - f_{t-1} = delta1 + delta2 + delta3 exactly (the split is a polynomial identity)."""
    out = toy.run_width(256, "loraplus16", optimizer, steps=4)
    f_prev = 0.0  # Init[1]: b = 0, so f_0 = 0
    for t in range(4):
        total = out["delta1"][t] + out["delta2"][t] + out["delta3"][t]
        assert total == pytest.approx(out["f"][t] - f_prev, rel=1e-9, abs=1e-12)
        f_prev = out["f"][t]


def test_conditioned_init_has_s0_one_and_unit_coordinates():
    """x has entries +-1 (so ||x||^2 = n) and Init[1]'s a_0^T x = 1 at every width."""
    for n in (16, 1000):
        x, a, b = toy.init_toy(n, 1, seed=3, xp=np)
        assert set(np.unique(x)) == {-1.0, 1.0} and float(b[0]) == 0.0
        assert float(a @ x) == pytest.approx(1.0, abs=1e-12)
        assert float(a.std()) == pytest.approx(n**-0.5, rel=0.2)  # variance Theta(1/n)


def test_bad_schedule_and_init_are_clear_errors():
    """An unknown schedule or init names the argument instead of failing deep inside."""
    with pytest.raises(ValueError, match="schedule"):
        toy.rates("lora", 64, 0.1)
    with pytest.raises(ValueError, match="init"):
        toy.init_toy(16, 3, 0, xp=None)


def test_toy_analytic_command_end_to_end(tmp_path, capsys):
    """`tinylora toy-analytic --fast`: records, summary with the documented keys, figures."""
    assert main(["toy-analytic", "--fast", "--out", str(tmp_path), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["slopes"]) == set(summary["theory"]) == set(toy.SCHEDULES)
    assert summary["optimizer"] == "gd" and set(summary["by_optimizer"]) == set(toy.OPTIMIZERS)
    for deltas in summary["slopes"].values():
        assert set(deltas) == {"delta1", "delta2", "delta3"}
    assert summary["max_gap_exact"] < 0.05
    assert len(list(tmp_path.glob("*.png"))) == 2 and (tmp_path / "summary.md").exists()
    rows = json.loads((tmp_path / "records.json").read_text())
    assert {"width", "step", "quantity", "value"} <= set(rows[0])
    assert "theory" in capsys.readouterr().out
    assert not any(isinstance(r["value"], float) and math.isnan(r["value"]) for r in rows)


@pytest.mark.gpu
def test_cupy_toy_gives_the_same_slopes():
    """The analytic toy on CuPy: the same deltas as on NumPy (float64)."""
    host = toy.run((16, 64, 256), steps=3)
    device = toy.run((16, 64, 256), steps=3, backend_name="cupy")
    for h, d in zip(host, device):
        assert d["value"] == pytest.approx(h["value"], rel=1e-9, abs=1e-12)
