"""tinylora.lab.roots: the 2-D root finder behind `tinylora balance`, first on sizes with a known
answer, then on the real toy (re-measured by an independent path)."""

import math

import pytest

from tinylora.lab import balance, coordcheck, deltas, roots
from tinylora.lab.finetune_toy import toy_task

N = 1000


def _planted(points, two_roots=False):
    """delta2 = 2 eta_B, delta1 = 3 eta_A eta_B n (Init[1]'s counting, exactly). With
    `two_roots`, delta2 also rises again below eta_B = 10^-2.6: two crossings, 1.2 decades apart."""
    out = []
    for ea, eb in points:
        bump = math.exp(3.0 * (math.log10(eb) + 2.0) ** 2 - 1.0) if two_roots else 1.0
        out.append({"k": {"delta1": 3.0 * ea * eb * N, "delta2": 2.0 * eb * bump}})
    return out


def test_planted_sizes_give_the_exact_root():
    """delta1 = delta2 = c has the root eta_B = c / 2, eta_A = c / (3 n eta_B) = 2 / (3 n):
    found to 0.1 % for two sizes, from a start window that does not contain it."""
    found = roots.solve(_planted, [("k", 0.01), ("k", 0.05)], ((-6, -4), (-6, -4)))
    for r, c in zip(found, (0.01, 0.05)):
        assert r["status"] == "ok" and r["monotone"]
        assert r["eta_B"] == pytest.approx(c / 2, rel=2e-3)
        assert r["eta_A"] == pytest.approx(2 / (3 * N), rel=2e-3)
        assert r["sizes"]["delta1"] == pytest.approx(c, rel=1e-3)


def test_two_crossings_are_reported_not_guessed():
    """Where delta2 falls and rises again, its contour crosses delta1's twice: "multiple", with
    both crossings listed and no answer picked."""
    (r,) = roots.solve(lambda p: _planted(p, two_roots=True), [("k", 0.01)], ((-10, -4), (-8, 0)))
    assert r["status"] == "multiple" and r["eta_A"] is None
    assert len(r["candidates"]) == 2
    assert abs(math.log10(r["candidates"][0]["eta_B"] / r["candidates"][1]["eta_B"])) > 0.8


def test_no_root_within_reach_is_none():
    """Sizes that never reach c (delta2 = 1e-9 always): "none" after the window stops growing."""
    def never(points):
        return [{"k": {"delta1": 1e-9, "delta2": 1e-9}} for _ in points]

    (r,) = roots.solve(never, [("k", 0.01)], ((-4, -2), (-4, -2)), max_rounds=2)
    assert r["status"] == "none" and r["candidates"] == []


def test_the_root_on_the_toy_meets_c_within_one_percent():
    """At width 32 (Init[1], readout sp, 4 seeds) the balanced root of t = 2, c = 0.01, re-measured
    with the plain LoRA MLP (not the cached toy) and `coordcheck.measure`, seed by seed: the
    seed means of RMS(delta1) and RMS(delta2) equal c within 1 %."""
    cfg = balance.BalanceConfig(steps=(2,), sizes=(0.01,))
    (r,) = balance.solve_width(cfg, 32, [])["roots"]
    assert r["status"] == "ok"
    sizes = {"delta1": [], "delta2": []}
    for seed in range(cfg.seeds):
        task = toy_task(32, "finetune", "adam", 1, (), n_train=cfg.n_points, n_test=1,
                        model_seed=seed)
        model = task.build(())
        for k, v in task.adapter_init(seed).items():
            model.params[k][...] = v
        setup = coordcheck.CoordSetup(model, task.x_train, task.y_train,
                                      deltas.projection_inputs)
        for row in coordcheck.measure(setup, r["eta_A"], r["eta_B"], 2):
            if row["step"] == 2 and row["quantity"] in sizes:
                sizes[row["quantity"]].append(row["value"])
    for q, values in sizes.items():
        assert sum(values) / len(values) == pytest.approx(0.01, rel=0.01), q
