"""The half-octave lattice that tunes each learning rate (`tinylora.text.tuning`)."""

import math

import pytest

from tinylora.text import tuning


def bowl(center: float):
    """A loss whose optimum sits at lattice position `center` (a parabola in log lr)."""
    calls = []

    def objective(k):
        calls.append(k)
        return 1.0 + (k - center) ** 2

    return objective, calls


def test_lattice_steps_are_half_octaves():
    """Neighbouring lattice rates differ by sqrt(2), and lattice_index inverts lattice_lr."""
    lrs = [tuning.lattice_lr(3e-3, k) for k in range(-4, 5)]
    assert all(math.isclose(b / a, math.sqrt(2)) for a, b in zip(lrs, lrs[1:]))
    assert [tuning.lattice_index(3e-3, lr) for lr in lrs] == list(range(-4, 5))


@pytest.mark.parametrize("center", [-5, -1, 0, 1, 4])
def test_lattice_grows_until_the_optimum_is_interior(center):
    """Wherever the optimum lies, the lattice grows towards it and stops as soon as the lowest
    point has a tried neighbour on each side: the kept point is the optimum, bracketed."""
    objective, calls = bowl(center)
    found = tuning.tune(objective, start=0)
    assert found.best == center and found.interior
    assert set(found.losses) == set(range(min(-1, center - 1), max(1, center + 1) + 1))
    assert len(calls) == len(set(calls))  # no point is evaluated twice


def test_lattice_budget_is_reported_not_hidden():
    """An optimum beyond the budget: the search stops at max_points and says 'not interior'."""
    objective, _ = bowl(-50)
    found = tuning.tune(objective, start=0, max_points=6)
    assert len(found.losses) == 6 and not found.interior and found.best == min(found.losses)


def test_divergence_brackets_from_above():
    """A diverged (inf) point is worse than any finite one, so it brackets the optimum."""
    found = tuning.tune(lambda k: math.inf if k >= 1 else 2.0 - 0.1 * k, start=0)
    assert found.best == 0 and found.interior


def test_ties_go_to_the_smaller_rate():
    """On a flat stretch the smaller rate is kept (the safer choice)."""
    assert tuning.lowest({2: 1.0, -1: 1.0, 0: 1.5}) == -1


def test_next_ratio_starts_where_the_product_stays():
    """Doubling the ratio at a fixed lr_A * lr_B moves lr_A down by sqrt(2): one step."""
    assert tuning.next_start(3, 1.0, 2.0) == 2 and tuning.next_start(3, 4.0, 64.0) == -1


def test_too_small_a_budget_is_refused():
    """max_points below 3 cannot bracket anything: a clear error naming the argument."""
    with pytest.raises(ValueError, match="max_points: expected at least 3, got 2"):
        tuning.tune(lambda k: 0.0, 0, max_points=2)
