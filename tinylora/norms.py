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
from tinylora.fast.blocking import row_blocks, row_dot, row_mean, rows_of
from tinylora.layers import check_last_dim

EPS = 1e-5  # PyTorch's default


def layernorm_forward(x, g, b, eps: float = EPS, name: str = "layernorm"):
    """y = (x - mean) / sqrt(var + eps) * g + b over the last axis.   x (..., d) -> y (..., d).

    The cache keeps xhat (the forward makes it anyway) and rstd; the mean is not needed again.
    Fast path: `_layernorm_in_blocks`, the module docstring's lines on cache-sized row blocks.
    """
    check_last_dim(x, g.shape[-1], name)
    y, xhat, rstd = _layernorm_in_blocks(x, g, b, eps)
    return y, (xhat, rstd, g)


def _layernorm_in_blocks(x, g, b, eps: float):
    """-> (y, xhat, rstd): mean, xc = x - mean, var = mean(xc^2), rstd = 1 / sqrt(var + eps),
    xhat = xc rstd, y = xhat g + b, one row block at a time (`tinylora.fast.blocking`): each pass
    reads a block still in cache, the variance is a row dot (no xc^2 temporary); 1.4x faster
    than the plain lines on (1024, 512) float32, 1.17 -> 0.84 ms (a test checks it against them).
    """
    xp, d = xp_of(x), x.shape[-1]
    y, xhat = xp.empty(x.shape, dtype=x.dtype), xp.empty(x.shape, dtype=x.dtype)
    rstd = xp.empty((*x.shape[:-1], 1), dtype=x.dtype)
    x2, y2, h2, r2 = rows_of(x, y, xhat, rstd)
    for rows in row_blocks(*x2.shape, xp=xp):
        xb, hb, rb, yb = x2[rows], h2[rows], r2[rows], y2[rows]
        xp.subtract(xb, row_mean(xb), out=hb)  # xc, centred
        rb[:, 0] = row_dot(hb, hb)  # d * var
        rb *= 1.0 / d
        rb += eps
        xp.sqrt(rb, out=rb)
        xp.divide(1.0, rb, out=rb)  # rstd = 1 / sqrt(var + eps)
        hb *= rb  # xhat
        xp.multiply(hb, g, out=yb)
        yb += b
    return y, xhat, rstd


def layernorm_backward(dy, cache, need_dx=True, need_dg=False, need_db=False):
    """-> (dx, dg, db); each None unless asked for (frozen g, b get no gradient).

    Fast path for dx: `_layernorm_dx_in_blocks`, the module docstring's line on row blocks."""
    xhat, rstd, g = cache
    lead = tuple(range(dy.ndim - 1))  # every axis but the last: rows
    dg = (dy * xhat).sum(axis=lead) if need_dg else None  # [d]
    db = dy.sum(axis=lead) if need_db else None  # [d]
    dx = _layernorm_dx_in_blocks(dy, xhat, rstd, g) if need_dx else None
    return dx, dg, db


def _layernorm_dx_in_blocks(dy, xhat, rstd, g):
    """dx = rstd * (dxhat - bar(dxhat) - xhat * bar(dxhat * xhat)), dxhat = dy g, row block by
    row block (the bars are a row sum and a row dot; a test checks it against the expression)."""
    xp, d = xp_of(dy), dy.shape[-1]
    dx = xp.empty(xhat.shape, dtype=xhat.dtype)
    dy2, h2, r2, dx2 = rows_of(dy, xhat, rstd, dx)
    blocks = row_blocks(*dx2.shape, xp=xp)
    tmp = xp.empty((blocks[0].stop if blocks else 0, d), dtype=dx.dtype)
    for rows in blocks:
        db, hb, tb = dx2[rows], h2[rows], tmp[: rows.stop - rows.start]
        xp.multiply(dy2[rows], g, out=db)  # dxhat
        mean_dxhat = row_mean(db)  # [rows, 1]  (mean path)
        mean_dxhat_xhat = row_dot(db, hb)[:, None] / d  # [rows, 1]  (var path)
        db -= mean_dxhat
        xp.multiply(hb, mean_dxhat_xhat, out=tb)
        db -= tb
        db *= r2[rows]
    return dx
