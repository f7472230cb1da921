"""Fast twins of the finiteness checks in `tinylora.validate`: one pass over each array and one
read on the host for a whole set of arrays, instead of a read per array. The answers are the
reference's (`tests/test_fast_paths.py`); what they save is in `docs/benchmarks.md`.

On a GPU a read on the host waits for every queued kernel (a synchronisation), so the check of a
step's input is *deferred*: its count of bad values is made on the device (`defer_finite`), and
read, with every other deferred check, at the next read point (`settle_checks`: the optimizer's
`settle`, which `train_step` calls with the loss it reads, and every check here that reads anyway).
A deferred check raises the reference's own error, in the order the checks were made.
"""

from __future__ import annotations

import math

from tinylora import backend
from tinylora.fast import cuda
from tinylora.fast.blocking import on_host
from tinylora.validate import array, describe, fail

_NUMPY = backend.get_xp("numpy")
_HOST_ARRAY = _NUMPY.ndarray  # plain NumPy arrays (not subclasses, not CuPy)
PENDING_LIMIT = 64  # deferred checks kept unread at most: the next one reads them all

_pending: list = []  # (count of bad values on the device, name, description, size), oldest first


def finite_message(name: str, n_bad: int, size: int, described: str) -> str:
    """The reference's error for `n_bad` NaN or inf values among `size` (`finite_values`)."""
    return f"{name}: expected finite values, got {n_bad} NaN or inf of {size} ({described})"


def defer_finite(x, name: str):
    """Check x's values on the device and read the answer later (`settle_checks`). -> x."""
    _pending.append((cuda.count_nonfinite(x), name, describe(x), x.size))
    if len(_pending) >= PENDING_LIMIT:
        settle_checks()
    return x


def settle_checks() -> None:
    """Read every deferred check on the host (one read for all) and raise the first that found a
    NaN or inf, with the reference's message; none is kept."""
    if not _pending:
        return
    checks = _pending[:]
    _pending.clear()
    xp = backend.xp_of(checks[0][0])
    counts = backend.to_numpy(xp.stack([count for count, *_ in checks]))  # the one read
    for n_bad, (_, name, described, size) in zip(counts.tolist(), checks):
        if n_bad:
            raise ValueError(finite_message(name, n_bad, size, described))


def input_values(x, name: str):
    """The reference is `tinylora.validate.input_values`. On the host, `finite_values` (a read
    costs nothing there); on a GPU, deferred (`defer_finite`): read at the next read point."""
    if on_host(backend.xp_of(x)):
        return finite_values(x, name)
    return defer_finite(x, name)


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
    settle_checks()  # a read point: the deferred checks first, in their order
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
    settle_checks()  # a read point: the deferred checks first, in their order
    with _NUMPY.errstate(over="ignore"):
        total = total_of(x)
    if math.isfinite(float(total)):
        return x
    n_bad = int((~xp.isfinite(x)).sum())
    if n_bad:
        raise ValueError(finite_message(name, n_bad, x.size, describe(x)))
    return x  # the total overflowed, but every value is finite


def finite_by_loss(loss, y, name: str):
    """`finite_values(y, name)` for the target `y` of a loss of ``pred - y``, read off the loss
    once it is computed. -> the loss. A finite loss is a sum of finite squares of pred - y, and an
    inf or NaN in y makes its difference, and so the loss, non-finite: a finite loss proves y
    finite with no pass over y. Only a loss that is not finite has y looked at value by value.
    On a GPU the loss is not read here (the caller does): y's check is deferred instead."""
    if not on_host(backend.xp_of(y)):
        defer_finite(y, name)
        return loss
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
