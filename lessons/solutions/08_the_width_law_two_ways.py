"""Lesson 8's exercises, solved. Try them in the lesson first."""

import math

from tinylora.lab.fit import t975


def loss_optimal_exponents(p):
    """The exponents of n of eta_A*, eta_B* and their ratio, readout W_out ~ N(0, 1/n^p)."""
    # A coordinated Theta(1) change of the n features moves f by n * n^(-p/2) = n^(1 - p/2);
    # holding the output's step Theta(1) asks delta2 ~ eta_B ~ n^(p/2 - 1). A's rate is set by
    # its own aligned sum, eta_A n ~ 1, whatever the readout.
    eta_A, eta_B = -1.0, p / 2 - 1
    return {"eta_A": eta_A, "eta_B": eta_B, "ratio": eta_B - eta_A}


def ratio_at_width(ratio0, n0, exponent, n):
    """The ratio at width n, from ratio0 at n0 and the exponent of its growth."""
    return ratio0 * (n / n0) ** exponent


def widths_needed(sigma, target, factor):
    """The smallest number of widths k >= 3 for a half width below target."""
    k = 3
    while True:
        # log n_i = log n0 + i log f: the spread about the mean is (log f)^2 k (k^2 - 1) / 12
        sxx = math.log(factor) ** 2 * k * (k * k - 1) / 12
        if t975(k - 2) * sigma / math.sqrt(sxx) < target:
            return k
        k += 1
