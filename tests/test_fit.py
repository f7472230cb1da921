"""tinylora.lab.fit: log-log slopes and their intervals (every width-scaling claim rests on
them)."""

import math

import pytest

from tinylora.lab.fit import loglog_slope, t975


def test_exact_power_law_gives_its_exponent():
    """y = 3 x^1.5 exactly: the slope is 1.5 and the interval collapses onto it."""
    x = [16, 64, 256, 1024]
    fit = loglog_slope(x, [3 * v**1.5 for v in x])
    assert fit.slope == pytest.approx(1.5, abs=1e-12)
    assert fit.interval[1] - fit.interval[0] < 1e-9
    assert math.exp(fit.intercept) == pytest.approx(3.0)


def test_interval_covers_the_true_slope_under_scatter():
    """Multiplicative scatter around x^1: the 95 % interval contains 1 and has positive width."""
    x = [2**k for k in range(6, 13)]
    wobble = [1.3, 0.8, 1.1, 0.9, 1.25, 0.85, 1.05]
    fit = loglog_slope(x, [v * w for v, w in zip(x, wobble)])
    assert fit.interval[0] < 1.0 < fit.interval[1]
    assert fit.contains(1.0) and not fit.contains(2.0)


def test_zeros_and_infinities_are_left_out():
    """log|0| and log(inf) are undefined: such points are dropped, not turned into nonsense."""
    fit = loglog_slope([1, 2, 4, 8], [0.0, 2.0, 4.0, math.inf])
    assert fit.n_points == 2 and fit.slope == pytest.approx(1.0) and fit.interval is None
    assert loglog_slope([1, 2], [0.0, 0.0]) is None


def test_student_t_quantiles():
    """Few points need a wide interval: t(1) = 12.706, t(5) = 2.571; large df tends to 1.96."""
    assert t975(1) == 12.706 and t975(5) == 2.571 and t975(1000) == 1.96
    with pytest.raises(ValueError, match="df"):
        t975(0)
