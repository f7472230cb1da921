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
from tinylora.twins import has_fast_twin

EPS = 1e-5  # PyTorch's default


@has_fast_twin
def layernorm_forward(x, g, b, eps: float = EPS, name: str = "layernorm"):
    """y = (x - mean) / sqrt(var + eps) * g + b over the last axis.   x (..., d) -> y (..., d).

    The cache keeps xhat (the forward makes it anyway) and rstd; the mean is not needed again.
    """
    check_last_dim(x, g.shape[-1], name)
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [..., 1]  biased, as in PyTorch
    rstd = 1.0 / xp_of(x).sqrt(var + eps)  # [..., 1]
    xhat = (x - mean) * rstd  # [..., d]
    return xhat * g + b, (xhat, rstd, g)


@has_fast_twin
def layernorm_backward(dy, cache, need_dx=True, need_dg=False, need_db=False):
    """-> (dx, dg, db); each None unless asked for (frozen g, b get no gradient)."""
    xhat, rstd, g = cache
    rows = tuple(range(dy.ndim - 1))  # every axis but the last
    dg = (dy * xhat).sum(axis=rows) if need_dg else None  # [d]
    db = dy.sum(axis=rows) if need_db else None  # [d]
    dx = None
    if need_dx:
        dxhat = dy * g  # [..., d]
        mean_path = dxhat.mean(axis=-1, keepdims=True)  # through the mean
        var_path = xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)  # through the variance
        dx = rstd * (dxhat - mean_path - var_path)  # the three paths of x, summed
    return dx, dg, db
