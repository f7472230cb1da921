"""Lesson 2's exercises, solved. Try them in the lesson first."""

import numpy as np


def bias_corrected(m, v, t, beta1=0.9, beta2=0.999):
    """-> (m_hat, v_hat), each shaped like m."""
    return m / (1 - beta1**t), v / (1 - beta2**t)


def first_step(g, lr, eps=1e-8):
    """p_1 - p_0 of Adam, shaped like g."""
    return -lr * g / (np.abs(g) + eps)  # m_hat = g, v_hat = g^2 at t = 1


def loraplus_rates(keys, eta_A, lam):
    """-> {key: learning rate}."""
    return {k: lam * eta_A if k.endswith(".B") else eta_A for k in keys}
