"""tinylora.text.rechoose: the fine-tuning study's bootstrap chooses each ratio's lr again in
every draw, on planted run records whose answer is known."""

import math

import numpy as np
import pytest

from tinylora.text import rechoose

CFG = {"tune_seeds": [0, 1], "eval_seeds": [2, 3, 4, 5]}
LRS = (1e-3, 2e-3, 4e-3)


def _runs(tuning: dict, held: dict, kept: float) -> list[dict]:
    """Run records of one ratio: tuning[seed] = {lr: loss}; held[seed] = loss at `kept`."""
    runs = [{"lr_ratio": 4.0, "lr": lr, "seed": seed, "final_loss": loss}
            for seed, by_lr in tuning.items() for lr, loss in by_lr.items()]
    runs += [{"lr_ratio": 4.0, "lr": kept, "seed": seed, "final_loss": loss}
             for seed, loss in held.items()]
    return runs


def test_the_lattice_and_the_held_out_losses_are_read_from_the_runs():
    """Only the lrs every tuning seed ran enter the lattice; the held-out seeds' losses are
    those at the kept lr."""
    runs = _runs({0: dict(zip(LRS, (3.0, 2.0, 2.5))), 1: {1e-3: 3.1, 2e-3: 2.1}},
                 {2: 2.2, 3: 2.3, 4: 2.4, 5: 2.5}, kept=2e-3)
    lattice, held = rechoose.ratio_runs(runs, CFG, 2e-3, lr_ratio=4.0)
    assert sorted(lattice) == [1e-3, 2e-3] and held == {2: 2.2, 3: 2.3, 4: 2.4, 5: 2.5}


def test_a_draw_that_keeps_the_lr_is_the_plain_bootstrap_and_one_that_moves_it_pays_the_lattice():
    """Tuning seed 0 prefers 2e-3, seed 1 prefers 4e-3, both together 2e-3 (kept). A draw of
    the tuning seeds {0, 0} or {0, 1} keeps 2e-3: the profile is the drawn held-out seeds'
    mean. A draw {1, 1} moves to 4e-3: the held-out mean at 2e-3 plus what the move costs on
    both tuning seeds' lattice, ((2.5 - 2.0) + (2.1 - 2.2)) / 2 = +0.2 (seed 1 alone, which
    chose the move, would have called it a gain of 0.1)."""
    tuning = {0: dict(zip(LRS, (3.0, 2.0, 2.5))), 1: dict(zip(LRS, (3.0, 2.2, 2.1)))}
    held = {2: 2.2, 3: 2.3, 4: 2.4, 5: 2.5}
    per_ratio = [rechoose.ratio_runs(_runs(tuning, held, 2e-3), CFG, 2e-3, lr_ratio=4.0)]
    draw = rechoose.draw(per_ratio, CFG, [2e-3])
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(200):
        state = rng.bit_generator.state
        t = rng.integers(0, 2, 2)
        e = [CFG["eval_seeds"][i] for i in rng.integers(0, 4, 4)]
        rng.bit_generator.state = state
        (curve,) = draw(rng)
        base = np.mean([held[s] for s in e])
        moved = list(t) == [1, 1]
        want = base + (0.2 if moved else 0.0)
        assert curve == pytest.approx(math.log10(want), abs=1e-12)
        seen.add(moved)
    assert seen == {True, False}


def test_a_diverged_choice_is_inf_in_the_profile():
    """A ratio whose every lr diverged on the drawn tuning seeds: its held-out loss is inf,
    left out of the fit by `locate_profile`."""
    tuning = {0: dict(zip(LRS, (math.inf,) * 3)), 1: dict(zip(LRS, (math.inf,) * 3))}
    held = {2: math.inf, 3: math.inf, 4: math.inf, 5: math.inf}
    per_ratio = [rechoose.ratio_runs(_runs(tuning, held, 1e-3), CFG, 1e-3, lr_ratio=4.0)]
    assert rechoose.draw(per_ratio, CFG, [1e-3])(np.random.default_rng(0)) == [math.inf]
