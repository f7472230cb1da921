"""Lesson 5's exercises, solved. Try them in the lesson first."""

import math

from tinylora import attention
from tinylora.norms import EPS


def rmsnorm_dx(dy, x, g):
    """dL/dx of y = x (mean(x^2) + eps)^(-1/2) g over the last axis, shaped like x."""
    d = x.shape[-1]
    rstd = ((x * x).mean(axis=-1, keepdims=True) + EPS) ** -0.5  # [..., 1]
    dxhat = dy * g  # xhat = x * rstd
    drstd = (dxhat * x).sum(axis=-1, keepdims=True)  # rstd is broadcast over the row: summed
    dms = -0.5 * drstd * rstd**3  # rstd = (ms + eps)^(-1/2), ms = mean(x^2)
    return dxhat * rstd + dms * 2.0 * x / d  # fork: the direct path + the mean-square path


def bias_that_never_learns():
    """-> "q", "k", "v" or "o": the attention bias whose gradient is always zero."""
    return "k"


# Inline question 1: the key bias bk adds q_t . bk to every score s[t, u] of row t, the same for
# every key u: a shift of the row, which softmax ignores, so the output does not depend on bk at
# all and its gradient is zero. The mask only removes entries of a row; the shift is still the
# same for the rest, so the answer holds without it too.


def rel_error_of_scaled(k):
    """rel_error(k * g, g) for any non-zero g."""
    return abs(k - 1) / (k + 1)  # |k g - g| / (|k g| + |g|); k = sqrt(dh) = 2 gives 1/3


def mqa_backward(dy, q, k, v):
    """-> (dq (N, T, d), dk (N, T, dh), dv (N, T, dh)) of causal multi-query attention."""
    n_head = q.shape[-1] // k.shape[-1]
    c = 1.0 / math.sqrt(k.shape[-1])
    qh, kh, vh = attention.split_heads(q, n_head), k[:, None], v[:, None]  # k, v broadcast
    p = attention.softmax_forward(attention.causal_mask_forward(c * qh @ kh.swapaxes(-1, -2)))
    dyh = attention.split_heads(dy, n_head)  # merge's backward
    dp, dvh = dyh @ vh.swapaxes(-1, -2), p.swapaxes(-1, -2) @ dyh  # mix
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))  # softmax (mask: pass through)
    dqh, dkh = c * ds @ kh, c * ds.swapaxes(-1, -2) @ qh  # scores
    # a broadcast over the heads in the forward is a sum over them in the backward
    return attention.merge_heads(dqh), dkh.sum(axis=1), dvh.sum(axis=1)


def slope_with_more_tokens():
    """-> "higher" or "lower": the shared delta1 slope with M = 256 tokens against M = 64."""
    # The slope goes from 1/2 (n below about M) to 1 (n above): with M = 256 the same widths sit
    # further inside the 1/2 regime.
    return "lower"


