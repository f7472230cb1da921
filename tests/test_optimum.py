"""tinylora.lab.optimum: the estimator of the loss-optimal rates, on landscapes with a known
answer: a planted quadratic bowl with seed noise, a flat valley, and surfaces that are not the
estimator's own model (a valley with asymmetric walls, each seed with its own optimum), where the
coverage of the 95 % intervals is measured."""

import functools
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
    """A bowl whose minimum lies between lattice points: the fit lands within 0.03 decades of it
    (an argmin of the lattice could be 0.125 off; independent noise in every cell costs the
    cubic's extra terms some precision), and the bootstrap intervals of eta_A*, eta_B*, the
    ratio and the product all contain the planted values."""
    loc = optimum.locate(_landscape([[4.0, 1.5], [1.5, 3.0]]), 8, PER_DECADE,
                         np.random.default_rng(1))
    assert loc["identifiable"] and loc["fit_share"] == 1.0
    truth = {"eta_A": 10**U0, "eta_B": 10**V0, "ratio": 10 ** (V0 - U0),
             "product": 10 ** (U0 + V0)}
    for rate, value in truth.items():
        assert abs(math.log10(loc[rate] / value)) < 0.03, rate
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


# ----- surfaces unlike the fit's own model: asymmetric walls, per-seed optima ---------------

ACROSS, ALONG = 2.2, 0.45  # curvature of log10 loss per decade^2 across and along the valley
WALL = {"across": 1.8, "along": 1.5}  # asymmetry: the recorded grids' (a width sweep at n = 256)
JITTER = (0.23, 0.07)  # sd of each seed's own optimum along and across the valley (decades)


def _wall(x, kappa, curvature):
    """curvature (e^(kappa x) - 1 - kappa x) / kappa^2: curvature x^2 / 2 near 0, a steep wall
    on the side kappa x > 0 and a gentle, nearly straight one on the other."""
    return curvature * (np.exp(kappa * x) - 1 - kappa * x) / kappa**2


def _asymmetric_y(du, dv, wall=WALL):
    """log10 loss around the optimum (du, dv in decades): a valley along eta_A eta_B = const,
    its wall steep toward large rates (across) and toward large ratios (along)."""
    across, along = (du + dv) / math.sqrt(2), (dv - du) / math.sqrt(2)
    return -1.0 + _wall(across, wall["across"], ACROSS) + _wall(along, wall["along"], ALONG)


def _seed_offsets(rng, n):
    """Each seed's own optimum, (du, dv) per seed: jitter along and across the valley."""
    along, across = (JITTER[k] * rng.standard_normal(n) for k in (0, 1))
    return np.stack([(across - along) / math.sqrt(2), (across + along) / math.sqrt(2)], axis=1)


def _asymmetric_grid(u0, v0, seeds, rng, cell_noise=0.01):
    """Per-seed losses on the lattice around (u0, v0): each seed's surface moved to its own
    optimum, with its own level (+-0.02 decades) and a little noise in every cell."""
    offsets, levels = _seed_offsets(rng, seeds), 0.02 * rng.standard_normal(seeds)
    ka0, kb0 = round(u0 * PER_DECADE), round(v0 * PER_DECADE)
    grid = {}
    for ka in range(ka0 - 5, ka0 + 6):
        for kb in range(kb0 - 5, kb0 + 6):
            du = ka / PER_DECADE - u0 - offsets[:, 0]
            dv = kb / PER_DECADE - v0 - offsets[:, 1]
            y = _asymmetric_y(du, dv) + levels + cell_noise * rng.standard_normal(seeds)
            grid[(ka, kb)] = list(10**y)
    return grid


@functools.cache
def _population_optimum():
    """Where the optimum of the seed-mean loss lies for infinitely many seeds, relative to the
    surface's own (du, dv): the truth a located optimum is measured against (numerically, on a
    0.005-decade grid, 2000 seeds)."""
    offsets = _seed_offsets(np.random.default_rng(12345), 2000)
    d = np.linspace(-0.3, 0.3, 121)
    du, dv = np.meshgrid(d, d, indexing="ij")
    mean = sum(10 ** _asymmetric_y(du - o[0], dv - o[1]) for o in offsets)
    i, j = np.unravel_index(np.argmin(mean), mean.shape)
    return float(d[i]), float(d[j])


def _truth(u0, v0) -> dict:
    du, dv = _population_optimum()
    u, v = u0 + du, v0 + dv
    return {"eta_A": u, "eta_B": v, "ratio": v - u, "product": u + v}


def test_asymmetric_walls_and_seed_jitter_are_located_with_honest_intervals():
    """40 replicates of 16 seeds on the asymmetric valley with per-seed optima: every rate's
    bootstrap interval holds the population optimum in at least 34 (measured: 38, 38, 38, 39 for
    eta_A*, eta_B*, ratio, product), and the estimates are unbiased to 0.03 decades (measured:
    0.004 at most; the quadratic fit this module used before was off by 0.09 in the ratio and
    0.13 in the product on these surfaces, and held the product in 0 of 40)."""
    truth = _truth(U0, V0)
    hits, errors = dict.fromkeys(optimum.RATES, 0), {rate: [] for rate in optimum.RATES}
    for rep in range(40):
        grid = _asymmetric_grid(U0, V0, 16, np.random.default_rng(rep))
        loc = optimum.locate(grid, 16, PER_DECADE, np.random.default_rng(1000 + rep), boot=200)
        for rate in optimum.RATES:
            lo, hi = (math.log10(x) for x in loc[f"{rate}_interval"])
            hits[rate] += lo <= truth[rate] <= hi
            errors[rate].append(math.log10(loc[rate]) - truth[rate])
    for rate in optimum.RATES:
        assert hits[rate] >= 34, (rate, hits[rate])
        assert abs(np.mean(errors[rate])) < 0.03, (rate, np.mean(errors[rate]))


def test_exponents_on_asymmetric_jittered_surfaces_cover_the_planted_law():
    """Optima planted at eta_A* = 0.1 / n and eta_B* = 0.2 n^-1/2 over n = 64..4096 on the
    asymmetric valley with per-seed optima (16 seeds): in 20 replicates the exponents' 95 %
    intervals hold (-1, -1/2, +1/2, -3/2) at least 15 times each (measured here: 20, 20, 20,
    17; over 60 replicates 0.97, 1.00, 0.97 and 0.88: the product's interval is a little
    narrow)."""
    widths = [64, 256, 1024, 4096]
    want = {"eta_A": -1.0, "eta_B": -0.5, "ratio": 0.5, "product": -1.5}
    hits = dict.fromkeys(want, 0)
    for rep in range(20):
        located = []
        for i, n in enumerate(widths):
            u0, v0 = math.log10(0.1 / n), math.log10(0.2 * n**-0.5)
            grid = _asymmetric_grid(u0, v0, 16, np.random.default_rng([rep, i]))
            located.append(optimum.locate(grid, 16, PER_DECADE,
                                          np.random.default_rng([rep, i, 7]), boot=150))
        for rate, value in want.items():
            e = optimum.exponent(widths, located, rate, 16)
            hits[rate] += e["interval"][0] <= value <= e["interval"][1]
    assert min(hits.values()) >= 15, hits


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
