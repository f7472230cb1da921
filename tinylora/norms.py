"""Layer norm, forward and closed-form backward (llm.c's doc/layernorm, CS231n's batchnorm).

Each row of the last axis is normalised to mean 0 and variance 1, then scaled and shifted:

    mean = x.mean(-1)                         (..., 1)
    rstd = 1 / sqrt(x.var(-1) + eps)          (..., 1)   the biased variance, as in PyTorch
    xhat = (x - mean) * rstd                  (..., d)
    y    = xhat * g + b                       (..., d)   g, b (d,)

Backward, with dxhat = dy * g (a bar is a mean over the last axis):

    dg = sum over rows of dy * xhat,   db = sum over rows of dy
    dx = rstd * (dxhat - bar(dxhat) - xhat * bar(dxhat * xhat))

The last line is the whole chain through mean and rstd folded into one expression: x reaches y
three ways (directly, through the mean, through the variance); the two bar terms are the
gradients of the mean and variance paths, summed with the direct one.
"""

from __future__ import annotations

from tinylora.backend import xp_of
from tinylora.layers import check_last_dim

EPS = 1e-5  # PyTorch's default


def layernorm_forward(x, g, b, eps: float = EPS, name: str = "layernorm"):
    """y = (x - mean) / sqrt(var + eps) * g + b over the last axis.   x (..., d) -> y (..., d).

    The cache keeps xhat (the forward makes it anyway) and rstd; the mean is not needed again.
    """
    check_last_dim(x, g.shape[-1], name)
    xp = xp_of(x)
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    xc = x - mean  # [..., d] centred
    var = (xc * xc).mean(axis=-1, keepdims=True)  # [..., 1] biased variance
    rstd = 1.0 / xp.sqrt(var + eps)  # [..., 1]
    xhat = xc
    xhat *= rstd  # in place: xc is ours and is not needed again
    y = xhat * g
    y += b
    return y, (xhat, rstd, g)


def layernorm_backward(dy, cache, need_dx=True, need_dg=False, need_db=False):
    """-> (dx, dg, db); each None unless asked for (frozen g, b get no gradient)."""
    xhat, rstd, g = cache
    d = xhat.shape[-1]
    lead = tuple(range(dy.ndim - 1))  # every axis but the last: rows
    dg = (dy * xhat).sum(axis=lead) if need_dg else None  # [d]
    db = dy.sum(axis=lead) if need_db else None  # [d]
    dx = None
    if need_dx:
        dxhat = dy * g  # [..., d]
        mean_dxhat = dxhat.sum(axis=-1, keepdims=True) / d  # [..., 1]  (mean path)
        mean_dxhat_xhat = (dxhat * xhat).sum(axis=-1, keepdims=True) / d  # [..., 1]  (var path)
        dx = dxhat  # reuse the buffer: dx = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
        dx -= mean_dxhat
        dx -= xhat * mean_dxhat_xhat
        dx *= rstd
    return dx, dg, db
