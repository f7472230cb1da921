"""Fast twins of `tinylora.norms`: layer norm's lines run on cache-sized row blocks
(`tinylora.fast.blocking`), each pass reading a block still in cache; the variance is a row dot
and the means a product with a column of 1/d (no squared temporary). Tested against the
reference in `tests/test_fast_paths.py`; measured in `docs/benchmarks.md`. On CuPy each is one
kernel, a block of threads per row (`tinylora.fast.cuda`).
"""

from __future__ import annotations

from tinylora.backend import xp_of
from tinylora.fast import cuda
from tinylora.fast.blocking import on_host, row_blocks, row_dot, row_mean, rows_of
from tinylora.layers import check_last_dim
from tinylora.norms import EPS


def layernorm_forward(x, g, b, eps: float = EPS, name: str = "layernorm"):
    """The reference is `tinylora.norms.layernorm_forward`: mean, xc = x - mean,
    var = mean(xc^2), rstd = 1 / sqrt(var + eps), xhat = xc rstd, y = xhat g + b, a row block at
    a time."""
    check_last_dim(x, g.shape[-1], name)
    xp, d = xp_of(x), x.shape[-1]
    if not on_host(xp):
        y, xhat, rstd = cuda.layernorm_forward(x, g, b, eps)
        return y, (xhat, rstd, g)
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
    return y, (xhat, rstd, g)


def layernorm_backward(dy, cache, need_dx=True, need_dg=False, need_db=False):
    """The reference is `tinylora.norms.layernorm_backward`: dx = rstd * (dxhat - bar(dxhat)
    - xhat * bar(dxhat * xhat)), dxhat = dy g, row block by row block (the bars are a row mean
    and a row dot)."""
    xhat, rstd, g = cache
    lead = tuple(range(dy.ndim - 1))
    dg = (dy * xhat).sum(axis=lead) if need_dg else None  # [d]
    db = dy.sum(axis=lead) if need_db else None  # [d]
    if not need_dx:
        return None, dg, db
    xp, d = xp_of(dy), dy.shape[-1]
    if not on_host(xp):
        return cuda.layernorm_backward(dy, xhat, rstd, g), dg, db
    dx = xp.empty(xhat.shape, dtype=xhat.dtype)
    dy2, h2, r2, dx2 = rows_of(dy, xhat, rstd, dx)
    blocks = row_blocks(*dx2.shape, xp=xp)
    tmp = xp.empty((blocks[0].stop if blocks else 0, d), dtype=dx.dtype)
    for rows in blocks:
        dxb, hb, tb = dx2[rows], h2[rows], tmp[: rows.stop - rows.start]
        xp.multiply(dy2[rows], g, out=dxb)  # dxhat
        mean_dxhat = row_mean(dxb)  # [rows, 1]  (mean path)
        mean_dxhat_xhat = row_dot(dxb, hb)[:, None] / d  # [rows, 1]  (var path)
        dxb -= mean_dxhat
        xp.multiply(hb, mean_dxhat_xhat, out=tb)
        dxb -= tb
        dxb *= r2[rows]
    return dx, dg, db
