"""Cache blocking: a chain of elementwise passes run block by block, so that it stays in cache.

NumPy makes one pass over memory per operator. An expression of eight operators on a
(8, 128, 2048) float32 array (8 MB) streams 8 MB through memory eight times; cut into row blocks
of about 64 K numbers (256 KB per array, a few of which fit in a core's L2 cache), the same eight
passes run on a block that is still in cache, and only the first read and the last write reach
memory. The numbers are identical: every entry goes through the same operations in the same order.

    for rows in row_blocks(n_rows, row_size):     # slices of rows, about BLOCK numbers each
        kernel(x2[rows], out2[rows])              # x2: x viewed as (n_rows, row_size)

What it saves is measured in `docs/benchmarks.md` ("What made it fast"). On a GPU there is no
cache to fit and a kernel per block costs a launch, so there each loop runs as one block.
"""

from __future__ import annotations

import math

from tinylora.backend import xp_of

BLOCK = 1 << 16  # numbers per block: 256 KB of float32, 512 KB of float64
_WHOLE = (slice(None),)  # the one block of an array within BLOCK numbers


def on_host(xp) -> bool:
    """Whether cache blocking applies: NumPy. On a GPU (CuPy) there is no L2 to fit, and a kernel
    per block costs a launch: there every blocked loop runs as one block (the plain passes)."""
    return xp.__name__ == "numpy"


def row_blocks(n_rows: int, row_size: int, block: int = BLOCK, xp=None):
    """Slices covering range(n_rows) in order, each of about `block` numbers (at least a row);
    one slice on a GPU backend (`on_host`)."""
    if xp is not None and not on_host(xp):
        return [slice(0, n_rows)] if n_rows else []
    step = max(1, block // max(1, row_size))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def rows_of(*arrays):
    """Each array viewed as (rows, last axis) (a view for the contiguous arrays a step makes)."""
    return [a.reshape(-1, a.shape[-1]) for a in arrays]


# --------------------------------------------------------------------------------------------
# gelu (the tanh form; the reference `tinylora.layers.gelu_forward` states the equations)

GELU_C = math.sqrt(2.0 / math.pi)
GELU_K = 0.044715


def gelu_in_blocks(x, block: int = BLOCK):
    """-> (y, t): y = x/2 (1 + t), t = tanh(sqrt(2/pi) x (1 + 0.044715 x^2)), block by block.

    (`tinylora.fast.layers.gelu_forward`; a test checks it against the reference)."""
    xp = xp_of(x)
    y, t = xp.empty(x.shape, dtype=x.dtype), xp.empty(x.shape, dtype=x.dtype)  # C order
    x2, y2, t2 = rows_of(x, y, t)
    for rows in row_blocks(*x2.shape, block, xp):
        xb, yb, tb = x2[rows], y2[rows], t2[rows]
        xp.multiply(xb, xb, out=tb)
        tb *= GELU_C * GELU_K
        tb += GELU_C
        tb *= xb  # u = x (sqrt(2/pi) + sqrt(2/pi) K x^2) = sqrt(2/pi) (x + K x^3)
        xp.tanh(tb, out=tb)
        xp.multiply(tb, 0.5, out=yb)
        yb += 0.5
        yb *= xb  # x (1 + t) / 2
    return y, t


def gelu_grad_in_blocks(dy, x, t, block: int = BLOCK):
    """-> dy gelu'(x) = dy (1 + t + x (1 - t^2) sqrt(2/pi) (1 + 3 K x^2)) / 2, block by block.

    (`tinylora.fast.layers.gelu_backward`; a test checks it against the reference)."""
    xp = xp_of(x)
    dx = xp.empty(x.shape, dtype=x.dtype)  # C order: its row view is a view
    dy2, x2, t2, dx2 = rows_of(dy, x, t, dx)
    rows_list = row_blocks(*x2.shape, block, xp)
    tmp = xp.empty((rows_list[0].stop if rows_list else 0, x2.shape[1]), dtype=x.dtype)
    for rows in rows_list:
        xb, tb, db, tmpb = x2[rows], t2[rows], dx2[rows], tmp[: rows.stop - rows.start]
        xp.multiply(xb, xb, out=db)
        db *= 3.0 * GELU_C * GELU_K
        db += GELU_C  # du/dx
        xp.multiply(tb, tb, out=tmpb)
        xp.subtract(1.0, tmpb, out=tmpb)  # 1 - t^2
        db *= tmpb
        db *= xb  # x (1 - t^2) du/dx
        db += tb
        db += 1.0
        db *= 0.5  # gelu'(x)
        db *= dy2[rows]
    return dx


# --------------------------------------------------------------------------------------------
# The LoRA path and the bias added to a frozen product (`tinylora.fast.layers`)


def can_add_product(y, u, B) -> bool:
    """Whether `add_product_in_blocks` applies: one model (B is (r, d_out)), r > 1, u and y with
    the same rows, y contiguous (its row view is a view). Otherwise the plain form runs."""
    return (B.ndim == 2 and u.shape[-1] > 1 and tuple(u.shape[:-1]) == tuple(y.shape[:-1])
            and y.flags.c_contiguous)


def add_product_in_blocks(y, u, B, b=None, block: int = BLOCK):
    """y <- y + u B (+ b), in place, row block by row block; -> y.   u (..., r), B (r, d_out).

    ``y + u @ B + b`` (y = x W, the frozen product) written so makes u B a (M, d_out)
    temporary and the two additions two more passes over memory; per block of rows the product
    lands in cache and both additions read it there."""
    y2, u2 = rows_of(y, u)
    whole = y.size <= block  # one block (the MLP at width 128): no list of blocks to make
    for rows in _WHOLE if whole else row_blocks(*y2.shape, block, xp_of(y)):
        yb = y2[rows]
        yb += u2[rows] @ B  # [rows, r] @ [r, d_out], still in cache
        if b is not None:
            yb += b
    return y


def row_dot(a, b):
    """sum over the last axis of a * b, (..., d) -> (...): NumPy's `vecdot` (a BLAS dot per row,
    no a * b temporary), einsum elsewhere."""
    xp = xp_of(a)
    return xp.vecdot(a, b) if hasattr(xp, "vecdot") else xp.einsum("...i,...i->...", a, b)


def row_mean(a):
    """mean over the last axis, (..., d) -> (..., 1), as a product with a column of 1/d (BLAS:
    faster than ``a.mean(-1)``)."""
    xp, d = xp_of(a), a.shape[-1]
    return a @ xp.full((d, 1), 1.0 / d, dtype=a.dtype)  # [..., d] @ [d, 1]
