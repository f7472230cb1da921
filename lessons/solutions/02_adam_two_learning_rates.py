"""Lesson 2's exercises, solved. Try them in the lesson first."""

import numpy as np


def first_moves(lr, lr_ratio):
    """-> (max |move| over every entry of every A, median |move| over the entries of the Bs)."""
    # dA = 0 at B = 0 (lesson 1), so m = 0 and A does not move at all; every entry of B moves by
    # its group's rate, lr * lr_ratio, times |g| / (|g| + eps): 1 but for the tiniest gradients.
    return 0.0, lr * lr_ratio


def displacement_after(t, g, lr):
    """p_t - p_0 after t Adam steps (beta1 0.9, beta2 0.999) that all see the gradient g."""
    # m_t = (1 - beta1^t) g and v_t = (1 - beta2^t) g^2: the corrections give m_hat = g and
    # v_hat = g^2 exactly, so every step is -lr g / |g|, the first one's closed form, t times.
    return -t * lr * np.sign(g)


def uncorrected_first_step(beta1=0.9, beta2=0.999):
    """|p_1 - p_0| / lr for Adam without its bias corrections (eps negligible)."""
    return (1 - beta1) / np.sqrt(1 - beta2)  # m_1 = (1 - beta1) g, v_1 = (1 - beta2) g^2


# Inline question 1: 0.1 / sqrt(0.001) = 3.16: the first steps would be about three times lr
# (beta2's memory is longer than beta1's, so v stays too small for hundreds of steps), and under
# LoRA+ that overshoot lands on B, whose rate is already lr_ratio times A's.


def slow_B_ends():
    """-> "higher" or "lower": the final loss at lr_ratio 1/16 against lr_ratio 1."""
    return "higher"  # at eta_A = 1e-3, B's rate was already the bottleneck: slowing it loses


# Inline question 2: one width says which ratio won there, not how the best ratio moves with
# the width. Tune eta_A for each ratio at several widths, on held-out seeds, and fit how the
# best ratio grows: the paper's claim is that it grows (like n for balanced updates, like
# n^1/2 for the loss with a standard readout), so a fixed ratio helps at some widths only.
