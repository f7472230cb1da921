"""Fast twins of the finiteness checks in `tinylora.validate`: one pass over each array and one
read on the host for a whole set of arrays, instead of a read per array. The answers are the
reference's (`tests/test_fast_paths.py`); what they save is in `docs/benchmarks.md`.
"""

from __future__ import annotations

import math

from tinylora import backend
from tinylora.validate import array, describe, fail

_NUMPY = backend.get_xp("numpy")
_HOST_ARRAY = _NUMPY.ndarray  # plain NumPy arrays (not subclasses, not CuPy)


def total_of(x):
    """A number that is finite when every value of `x` is and no partial sum overflows, and not
    finite whenever some value is not: ``x.sum()``, on any backend. For a C-contiguous float32 or
    float64 NumPy array, the sum of squares ``x . x`` (one BLAS dot, faster than ``sum``): an inf
    or NaN makes both non-finite; the squares may overflow where the sum would not, and every
    caller then looks at each value, so the answer is the same. Callers silence the overflow."""
    if type(x) is _HOST_ARRAY and x.dtype.char in "fd" and x.flags.c_contiguous:
        flat = x.ravel()  # a view
        return flat.dot(flat)
    return x.sum()


def all_finite(arrays) -> bool:
    """The reference is `tinylora.validate.all_finite`. One pass over each array (`total_of`)
    and one read on the host for them all (a NaN or inf anywhere makes the total so); only a
    total that is not finite (perhaps an overflow of finite values) has each value looked at."""
    arrays = list(arrays)
    total = 0.0
    with _NUMPY.errstate(over="ignore"):  # an overflow of finite values: looked at below
        for a in arrays:
            total += total_of(a)
    if math.isfinite(total):  # the one read on the host
        return True
    return all(bool(backend.xp_of(a).isfinite(a).all()) for a in arrays)


def finite_values(x, name: str):
    """The reference is `tinylora.validate.finite_values`. One pass (`total_of`); the bad values
    are counted only when the total is not finite."""
    xp = backend.xp_of(x)
    with _NUMPY.errstate(over="ignore"):
        total = total_of(x)
    if math.isfinite(float(total)):
        return x
    n_bad = int((~xp.isfinite(x)).sum())
    if n_bad:
        raise ValueError(f"{name}: expected finite values, got {n_bad} NaN or inf of {x.size} "
                         f"({describe(x)})")
    return x  # the total overflowed, but every value is finite


def finite_by_loss(loss, y, name: str):
    """`finite_values(y, name)` for the target `y` of a loss of ``pred - y``, read off the loss
    once it is computed. -> the loss. A finite loss is a sum of finite squares of pred - y, and an
    inf or NaN in y makes its difference, and so the loss, non-finite: a finite loss proves y
    finite with no pass over y. Only a loss that is not finite has y looked at value by value."""
    if not math.isfinite(float(loss if getattr(loss, "ndim", 0) == 0 else loss.sum())):
        finite_values(y, name)
    return loss


def regression_target_shape(pred, y, stack_ndim: int = 0):
    """`tinylora.validate.regression_target` without the values (`finite_by_loss` reads them off
    the loss): a y of pred's own array type whose shape is one model's or the stack's is accepted
    by its dtype and size alone."""
    if type(y) is type(pred) and (y.shape == pred.shape[stack_ndim:] or y.shape == pred.shape) \
            and y.dtype.kind in "fiu" and y.ndim and y.size:
        return y
    one = tuple(pred.shape[stack_ndim:])
    array(y, "mse: target y", f"a real array of shape {one}", kind="fiu", xp=backend.xp_of(pred),
          finite=False)
    if tuple(y.shape) not in (one, tuple(pred.shape)):
        fail("mse: target y", f"shape {one} (the prediction's, never broadcast)", y)
    return y
