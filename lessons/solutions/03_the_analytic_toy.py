"""Lesson 3's exercises, solved. Try them in the lesson first."""

import math


def one_step_deltas(a, b, x, y, eta_A, eta_B):
    """-> (delta1, delta2, delta3) of one GD step of f = b a^T x, L = (f - y)^2 / 2."""
    s = a @ x
    U = b[0] * s - y
    da, db = U * b[0] * x, U * s  # dL/da, dL/db
    step_s, step_b = -eta_A * (da @ x), -eta_B * db  # the change of s = a^T x, and of b
    return b[0] * step_s, step_b * s, step_b * step_s


def delta1_at_step2(eta_A, eta_B, n):
    """delta1 of the second GD step of the toy, Init[1]."""
    return eta_A * eta_B**2 * (1 - eta_B) * n  # b_1 = eta_B, U_1 = eta_B - 1, ||x||^2 = n


def step2_slopes(c):
    """-> (slope of |delta1|, slope of |delta2|) at step 2, GD, eta ~ n^-c."""
    return 1 - 3 * c, -c  # delta1 ~ eta^3 n, delta2 ~ eta


def adam_step2_factor(beta1=0.9, beta2=0.999):
    """|Adam's second step| / lr when the first gradient was 0."""
    m_hat = (1 - beta1) / (1 - beta1**2)  # m_2 = (1 - beta1) g, corrected
    v_hat = (1 - beta2) / (1 - beta2**2)  # v_2 = (1 - beta2) g^2, corrected (per g^2)
    return m_hat / math.sqrt(v_hat)
