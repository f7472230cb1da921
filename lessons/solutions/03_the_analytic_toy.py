"""Lesson 3's exercises, solved. Try them in the lesson first."""

import math


def init2_deltas(eta_A, eta_B, n):
    """-> (delta1 at step 1, delta2 at step 1, delta1 at step 2, delta2 at step 2), GD, Init[2]."""
    # Step 1: s_0 = 0 and U_0 = -1, so dL/db = s U = 0 (b cannot move: delta2 = 0) while
    # dL/da = b U x = -x: a_1 = eta_A x, s_1 = eta_A n = u, and delta1 = b_0 (a_1 - a_0)^T x = u.
    u = eta_A * n
    # Step 2: U_1 = b_1 s_1 - 1 = u - 1 with b_1 = 1; s moves by -eta_A b_1 U_1 n = u (1 - u),
    # b by -eta_B s_1 U_1 = eta_B u (1 - u); delta2 = (b_2 - b_1) s_1.
    return u, 0.0, u * (1 - u), eta_B * u**2 * (1 - u)


def step2_slopes(c):
    """-> (slope of |delta1|, slope of |delta2|) at step 2, GD, Init[1], eta ~ n^-c."""
    return 1 - 3 * c, -c  # delta1 = eta_A eta_B^2 (1 - eta_B) n ~ eta^3 n, delta2 ~ eta


# No c keeps both at 0: delta2 flat needs c = 0, and then delta1 grows like n (Proposition 1).


def fixed_ratio_slopes(optimizer):
    """-> (slope of |delta1|, slope of |delta2|) at step 2 under loraplus16, Init[1]."""
    # A fixed ratio scales neither rate with n: delta1 ~ eta_A eta_B^k n (k = 2 for GD, 1 for
    # Adam) grows like n, delta2 ~ eta_B stays flat, as with one shared rate.
    return 1.0, 0.0


def adam_step2_factor(beta1=0.9, beta2=0.999):
    """|Adam's second step| / lr when the first gradient was 0."""
    m_hat = (1 - beta1) / (1 - beta1**2)  # m_2 = (1 - beta1) g, corrected
    v_hat = (1 - beta2) / (1 - beta2**2)  # v_2 = (1 - beta2) g^2, corrected (per g^2)
    return m_hat / math.sqrt(v_hat)  # 0.744 for Adam's defaults


def balanced_exponents_init2():
    """-> (exponent of eta_A*, of eta_B*, of the ratio) against n: Adam, Init[2], step 2."""
    # Under Init[2] a moves first: delta1 ~ eta_A n (no eta_B in it: b_1 = b_0), and
    # delta2 = (b_2 - b_1) s_1 ~ eta_B (eta_A n). |delta1| = c fixes eta_A n, so eta_A* ~ 1/n;
    # then |delta2| = c fixes eta_B: eta_B* ~ 1. The same exponents as Init[1], the roles swapped.
    return -1.0, 0.0, 1.0


# Inline question: sweep the two constants (a, b) of eta_A = a n0 / n, eta_B = b at n0 = 256,
# then keep a and b and move only eta_A, like 1/n. Moving both by one factor keeps the ratio
# fixed, which at the large width makes delta1 n / n0 times larger than at n0 (or, if the factor
# shrinks both, makes B stop learning).
