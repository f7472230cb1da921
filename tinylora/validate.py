"""Checks of arguments, one function per kind of input; each returns the value it accepted.

Every refusal is a `ValueError` whose message names the argument, what was expected and what
came, e.g. ``lr: expected a finite number > 0, got '1e-3' (str)``. NumPy scalars are accepted
wherever Python numbers are (``np.int64(2)`` is an integer, ``np.float32(0.01)`` a number);
``True`` is not a number here. Callers validate everything first and write afterwards, so a
refused call leaves nothing half-done.
"""

from __future__ import annotations

import math
import numbers

from tinylora import backend
from tinylora.twins import has_fast_twin


def describe(value) -> str:
    """How a received value is shown in an error: ``'1e-3' (str)``, ``array (3, 1) float64``."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__module__.split('.')[0]} array of shape {tuple(value.shape)}, " \
               f"dtype {value.dtype}"
    if isinstance(value, (list, tuple)) and any(hasattr(v, "shape") for v in value):
        n = len(value)  # how many arrays, not their numbers
        return f"a {type(value).__name__} of {n} array" + ("s" if n != 1 else "")
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def fail(name: str, expected: str, value):
    """Raise the house error: ``<name>: expected <expected>, got <value> (<type>)``."""
    raise ValueError(f"{name}: expected {expected}, got {describe(value)}")


def integer(value, name: str, low: int = 1, what: str | None = None) -> int:
    """An integer >= `low` (Python or NumPy; not a bool, not a float like 2.0) -> int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        fail(name, what or f"an integer >= {low}", value)
    return int(value)


def positive_int(value, name: str, what: str = "a positive integer") -> int:
    """An integer >= 1 -> int."""
    return integer(value, name, 1, what)


def number(value, name: str, low: float | None = None, low_ok: bool = False,
           high: float | None = None, high_ok: bool = False, what: str | None = None) -> float:
    """A finite real number in the interval given by `low`/`high` (each bound open unless
    `low_ok`/`high_ok`) -> a Python float (so float32 arithmetic is never promoted)."""
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and math.isfinite(float(value)))
    ok = ok and (low is None or (value >= low if low_ok else value > low))
    ok = ok and (high is None or (value <= high if high_ok else value < high))
    if not ok:
        fail(name, what or f"a finite number{_interval(low, low_ok, high, high_ok)}", value)
    return float(value)


def _interval(low, low_ok, high, high_ok) -> str:
    if low is not None and high is not None:
        return f" in {'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
    if low is not None:
        return f" {'>=' if low_ok else '>'} {low:g}"
    return "" if high is None else f" {'<=' if high_ok else '<'} {high:g}"


def positive(value, name: str) -> float:
    """A finite number > 0 -> float."""
    return number(value, name, low=0.0)


def non_negative(value, name: str) -> float:
    """A finite number >= 0 -> float."""
    return number(value, name, low=0.0, low_ok=True)


def learning_rate(lr, name: str = "lr"):
    """A finite learning rate >= 0: a number (-> float), or an array of them (unchanged)."""
    expected = "a finite learning rate >= 0 (a number or an array of them)"
    if not hasattr(lr, "dtype") or getattr(lr, "ndim", 0) == 0:
        try:
            return non_negative(lr, name)
        except ValueError:
            fail(name, expected, lr)
    host = backend.to_numpy(lr)
    if host.dtype.kind not in "fiu" or host.size == 0 or not backend.is_finite_number(host) \
            or float(host.min()) < 0:
        fail(name, expected, lr)
    return lr


def probability(value, name: str) -> float:
    """A dropout probability: a finite number in [0, 1) -> float (1 would drop everything)."""
    return number(value, name, low=0.0, low_ok=True, high=1.0)


def stack(value, forbid: str | None = None) -> tuple:
    """A stack's shape: positive integers such as (3,), () for one model; `forbid` names what
    takes no stack (then only () passes)."""
    if not isinstance(value, (tuple, list)) or (value and forbid):
        fail("stack", f"() ({forbid} takes one model)" if forbid else "a tuple of positive "
             "integers such as (3,)", value)
    return tuple(positive_int(n, "stack") for n in value)


def steps_within(value, name: str, total: int) -> int:
    """A count of steps in [0, total] (a warm-up may not outlast the run) -> int."""
    value = integer(value, name, low=0)
    if value > total:
        fail(name, f"an integer in [0, {total}] (at most the run's {total} steps)", value)
    return value


def choice(value, name: str, options) -> str:
    """One of `options` (compared by equality; a list in the error)."""
    if not isinstance(value, str) or value not in options:
        fail(name, f"one of {list(options)}", value)
    return value


def names(value, name: str, valid, allow_empty: bool = True, what: str = "valid names") -> tuple:
    """A list of names from `valid`; a single string is one name (not its letters). Duplicates
    are dropped; the result follows the order of `valid`."""
    items = (value,) if isinstance(value, str) else value
    if items is None or not isinstance(items, (list, tuple, set, frozenset)):
        fail(name, f"a name or a list of names from {list(valid)}", value)
    bad = [t for t in items if not isinstance(t, str) or t not in valid]
    if bad:
        raise ValueError(f"{name}: {bad!r} are not {what}; valid ones are {list(valid)}")
    if not items and not allow_empty:
        fail(name, f"at least one name from {list(valid)}", value)
    return tuple(t for t in valid if t in items)


def array(x, name: str, expected: str, *, ndim: int | None = None, last: int | None = None,
          kind: str = "f", xp=None, finite: bool = True):
    """An array with `ndim` axes (any when None) and trailing size `last`, a dtype of `kind`
    ("f": real floating point; "iu": integers; "fiu": real), on backend `xp`, non-empty, and
    (if floating) finite. `expected` describes it for the error, e.g. "a real array (..., 8)"."""
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        fail(name, expected, x)
    if x.dtype.kind not in kind or (ndim is not None and x.ndim != ndim) or x.ndim == 0 \
            or (last is not None and x.shape[-1] != last):
        fail(name, expected, x)
    if x.size == 0:
        fail(name, f"{expected}, with no axis of length 0", x)
    if xp is not None and backend.xp_of(x) is not xp:
        fail(name, f"{expected} on the model's backend ({xp.__name__})", x)
    if finite and x.dtype.kind == "f":
        input_values(x, name)
    return x


@has_fast_twin
def all_finite(arrays) -> bool:
    """Whether every value of every array is finite (one read on the host per array)."""
    return all(bool(backend.xp_of(a).isfinite(a).all()) for a in arrays)


@has_fast_twin
def finite_values(x, name: str):
    """`x` unchanged if every value is finite, else an error that counts the bad ones."""
    n_bad = int((~backend.xp_of(x).isfinite(x)).sum())
    if n_bad:
        raise ValueError(f"{name}: expected finite values, got {n_bad} NaN or inf of {x.size} "
                         f"({describe(x)})")
    return x


@has_fast_twin
def input_values(x, name: str):
    """`finite_values` of a step's input (`array`'s check). A name of its own, so that on a GPU
    the fast twin can decide it on the device and read it with the step's other answers."""
    return finite_values(x, name)


def regression_target(pred, y, stack_ndim: int = 0, finite: bool = True):
    """`y` for a prediction `pred` (*S, ..., d_out): a real array of exactly the shape of one
    model's prediction (..., d_out), or of the whole stack's, never broadcast; with `finite`,
    every value finite."""
    one = tuple(pred.shape[stack_ndim:])
    array(y, "mse: target y", f"a real array of shape {one}", kind="fiu", xp=backend.xp_of(pred),
          finite=finite)
    if tuple(y.shape) not in (one, tuple(pred.shape)):
        fail("mse: target y", f"shape {one} (the prediction's, never broadcast)", y)
    return y


def class_targets(logits, targets, stack_ndim: int = 0):
    """Integer class ids for `logits` (*S, ..., V): of shape (...) (or (*S, ...)), each in
    [0, V); the error shows the values that are not."""
    one, V = tuple(logits.shape[stack_ndim:-1]), logits.shape[-1]
    array(targets, "cross_entropy: targets", f"an integer array of shape {one}", kind="iu",
          xp=backend.xp_of(logits))
    if tuple(targets.shape) not in (one, tuple(logits.shape[:-1])):
        fail("cross_entropy: targets", f"shape {one} (the logits' without V, never broadcast)",
             targets)
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= V:
        host = backend.to_numpy(targets)
        bad = sorted({int(v) for v in host[(host < 0) | (host >= V)].reshape(-1)[:10]})
        raise ValueError(f"cross_entropy: targets must lie in [0, {V}), got values in "
                         f"[{lo}, {hi}] (outside: {bad})")
    return targets
