"""tinylora.lab.optimum: the estimator of the loss-optimal rates, on landscapes with a known
answer (a planted quadratic bowl with seed noise; a flat valley)."""

import math

import numpy as np
import pytest

from tinylora.lab import optimum

PER_DECADE = 4
U0, V0 = -2.37, -1.12  # log10 of the planted eta_A*, eta_B* (between lattice points)


def _landscape(H, seeds=8, noise=0.05, seed=0):
    """log10 loss = -1 + (x - x*)^T H (x - x*) / 2, each seed's loss off by 10^(noise N(0, 1))."""
    rng = np.random.default_rng(seed)
    grid = {}
    for ka in range(-14, -4):
        for kb in range(-9, 1):
            x = np.array([ka / PER_DECADE - U0, kb / PER_DECADE - V0])
            base = -1.0 + 0.5 * x @ np.asarray(H) @ x
            grid[(ka, kb)] = [10 ** (base + noise * rng.standard_normal()) for _ in range(seeds)]
    return grid


def test_a_planted_optimum_is_recovered_and_covered():
    """A bowl whose minimum lies between lattice points: the fit lands within 0.02 decades of it
    (an argmin of the lattice could be 0.125 off), and the bootstrap intervals of eta_A*, eta_B*,
    the ratio and the product all contain the planted values."""
    loc = optimum.locate(_landscape([[4.0, 1.5], [1.5, 3.0]]), 8, PER_DECADE,
                         np.random.default_rng(1))
    assert loc["identifiable"] and loc["fit_share"] == 1.0
    truth = {"eta_A": 10**U0, "eta_B": 10**V0, "ratio": 10 ** (V0 - U0),
             "product": 10 ** (U0 + V0)}
    for rate, value in truth.items():
        assert abs(math.log10(loc[rate] / value)) < 0.02, rate
        lo, hi = loc[f"{rate}_interval"]
        assert lo <= value <= hi, rate


def test_the_intervals_cover_about_95_percent_of_the_time():
    """Twenty noisy landscapes: eta_A*'s interval holds the planted value in at least 17
    (a percentile bootstrap of 8 seeds, uncorrected, held it in about 16)."""
    hits = 0
    for seed in range(20):
        loc = optimum.locate(_landscape([[4.0, 1.5], [1.5, 3.0]], seed=seed), 8, PER_DECADE,
                             np.random.default_rng(100 + seed), boot=200)
        lo, hi = loc["eta_A_interval"]
        hits += lo <= 10**U0 <= hi
    assert hits >= 17


def test_a_flat_valley_is_called_one_and_its_product_stays_sharp():
    """A valley along eta_A eta_B = const (curvature 0.02 along the ratio, 3.98 across): the ratio
    is not identifiable, while the product's interval is tight and holds the planted product."""
    loc = optimum.locate(_landscape([[2.0, 1.98], [1.98, 2.0]]), 8, PER_DECADE,
                         np.random.default_rng(2))
    assert not loc["identifiable"]
    lo, hi = loc["product_interval"]
    assert lo <= 10 ** (U0 + V0) <= hi and math.log10(hi / lo) < 0.1


def test_exponents_over_widths_recover_a_planted_power_law():
    """Optima planted at eta_A* = 0.1 / n and eta_B* = 0.2 n^-1/2 at four widths: the fitted
    exponents are -1 and -1/2 (ratio +1/2, product -3/2), each inside its interval."""
    widths, located = [64, 256, 1024, 4096], []
    for i, n in enumerate(widths):
        u, v = math.log10(0.1 / n), math.log10(0.2 * n**-0.5)
        rng = np.random.default_rng(i)
        grid = {}
        for ka in range(round(4 * u) - 4, round(4 * u) + 5):
            for kb in range(round(4 * v) - 4, round(4 * v) + 5):
                x = np.array([ka / 4 - u, kb / 4 - v])
                base = -1 + x @ np.array([[3.0, 1.0], [1.0, 3.0]]) @ x / 2
                grid[(ka, kb)] = [10 ** (base + 0.03 * rng.standard_normal()) for _ in range(8)]
        located.append(optimum.locate(grid, 8, 4, np.random.default_rng(10 + i), boot=200))
    for rate, want in (("eta_A", -1.0), ("eta_B", -0.5), ("ratio", 0.5), ("product", -1.5)):
        e = optimum.exponent(widths, located, rate, 8)
        assert e["slope"] == pytest.approx(want, abs=0.03), rate
        assert e["interval"][0] <= want <= e["interval"][1], rate


def test_a_grid_without_a_bowl_fails_cleanly():
    """A plane (no minimum inside) or a grid of diverged cells: no fit, no crash."""
    plane = {(a, b): [10 ** (0.1 * a + 0.1 * b)] * 4 for a in range(5) for b in range(5)}
    assert optimum.fit(optimum.surface(plane, range(4)), 4) is None
    dead = {(a, b): [math.inf] * 4 for a in range(5) for b in range(5)}
    loc = optimum.locate(dead, 4, 4, np.random.default_rng(0), boot=10)
    assert loc["eta_A"] is None and not loc["identifiable"]


# ----- one dimension: the best ratio of a profile (the fine-tuning study's estimator) -------

RATIOS = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])


def _profile(best, seeds=4, noise=0.002, curvature=0.02, seed=0):
    """Loss per (ratio, seed): 2 * 10^(curvature (log2 ratio - log2 best)^2 / 2), a bowl in the
    fitted coordinates (log10 loss against log ratio), plus seed noise."""
    rng = np.random.default_rng(seed)
    x = np.log2(RATIOS)[:, None] - math.log2(best)
    return 2.0 * 10 ** (curvature * x**2 / 2) + noise * rng.standard_normal((len(RATIOS), seeds))


def test_profile_optimum_between_grid_points_is_recovered():
    """A planted best ratio of 5.3 (between 4 and 8): the fit finds it to 3 % with noise-free
    data, and with seed noise its bootstrap interval contains it and is identifiable."""
    exact = optimum.locate_profile(np.log10(RATIOS), _profile(5.3, noise=0.0),
                                   np.random.default_rng(0), boot=50)
    assert exact["ratio"] == pytest.approx(5.3, rel=0.03)
    noisy = optimum.locate_profile(np.log10(RATIOS), _profile(5.3), np.random.default_rng(0))
    lo, hi = noisy["ratio_interval"]
    assert lo < 5.3 < hi and noisy["identifiable"]


def test_profile_interval_covers_about_95_percent_of_the_time():
    """Over 40 noisy replicates with 4 seeds each, the interval contains the planted ratio at
    least 85 % of the time (a 95 % interval, with the bootstrap's coarseness)."""
    hits = 0
    for rep in range(40):
        loc = optimum.locate_profile(np.log10(RATIOS), _profile(5.3, noise=0.004, seed=rep),
                                     np.random.default_rng(rep), boot=100)
        hits += loc["ratio_interval"] is not None and (
            loc["ratio_interval"][0] <= 5.3 <= loc["ratio_interval"][1])
    assert hits >= 34


def test_profile_optimum_beyond_the_grid_is_not_invented():
    """A profile still falling at the grid's last ratio has no located optimum (None), never
    the end of the grid passed off as one."""
    loc = optimum.locate_profile(np.log10(RATIOS), _profile(300.0), np.random.default_rng(0))
    assert loc["ratio"] is None and loc["ratio_interval"] is None and not loc["identifiable"]


def test_profile_exponent_over_widths_recovers_a_planted_law():
    """Best ratio = 0.5 * width^(1/2) over widths 64..512: `exponent` over the located
    profiles gives a slope within 0.1 of 1/2, and its interval contains 1/2."""
    widths = [64, 128, 256, 512]
    rng = np.random.default_rng(1)
    located = [optimum.locate_profile(np.log10(RATIOS), _profile(0.5 * w**0.5, seed=i), rng)
               for i, w in enumerate(widths)]
    e = optimum.exponent(widths, located, "ratio", 4)
    assert e["slope"] == pytest.approx(0.5, abs=0.1)
    assert e["interval"][0] < 0.5 < e["interval"][1]
