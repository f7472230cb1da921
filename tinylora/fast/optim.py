"""Fast twins of `tinylora.optim`'s hot lines: Adam's update with one pass over a buffer per line
(no temporary per operator), and the optimizer's check of the gradients by array type. Tested
against the reference in `tests/test_fast_paths.py`; measured in `docs/benchmarks.md`.
"""

from __future__ import annotations

import math

from tinylora import backend, validate


def adam_update(p, g, m, v, lr, beta1: float, beta2: float, eps: float, t: int) -> None:
    """The reference is `tinylora.optim.adam_update`, in PyTorch's order:

        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    each line one pass over one buffer (written as expressions, NumPy makes a temporary per
    operator)."""
    xp = backend.xp_of(p)
    tmp = xp.empty_like(p)
    m *= beta1
    xp.multiply(g, 1.0 - beta1, out=tmp)
    m += tmp  # m = b1 m + (1 - b1) g
    v *= beta2
    xp.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp  # v = b2 v + (1 - b2) g^2
    xp.sqrt(v, out=tmp)
    tmp *= 1.0 / math.sqrt(1.0 - beta2**t)
    tmp += eps  # sqrt(v_hat) + eps
    xp.divide(m, tmp, out=tmp)  # m / (sqrt(v_hat) + eps)
    tmp *= lr / (1.0 - beta1**t) if isinstance(lr, float) else lr * (1.0 / (1.0 - beta1**t))
    p -= tmp


def _same_kind(g, p) -> bool:
    """Whether gradient `g` can update `p` as it is: a real floating array of p's exact shape on
    p's backend. A gradient of p's own array type (the usual case) is on p's backend and has a
    dtype and a shape, so only those two are compared."""
    if type(g) is type(p):
        return g.dtype.kind == "f" and g.shape == p.shape
    return (hasattr(g, "dtype") and hasattr(g, "shape") and g.dtype.kind == "f"
            and tuple(g.shape) == tuple(p.shape) and backend.xp_of(g) is backend.xp_of(p))


def check_gradients(grads, params: dict) -> None:
    """The reference is `tinylora.optim.check_gradients`: each gradient's type, dtype and shape
    compared directly (the full check, and its message, only for one that fails), then their
    finiteness with one read on the host (`validate.all_finite`, itself fast)."""
    if not isinstance(grads, dict) or grads.keys() != params.keys():  # as sets
        keys = sorted(grads) if isinstance(grads, dict) else grads
        validate.fail("grads", f"a dict with keys {sorted(params)}", keys)
    for k, p in params.items():
        g = grads[k]
        if not _same_kind(g, p):  # the message is built only for a refused gradient
            validate.array(g, f"grads[{k!r}]", f"a finite float array of shape "
                           f"{tuple(p.shape)} (its parameter's)", xp=backend.xp_of(p),
                           finite=False)
            validate.fail(f"grads[{k!r}]", f"shape {tuple(p.shape)} (its parameter's)", g)
    if not validate.all_finite(grads.values()):
        for k in params:
            validate.finite_values(grads[k], f"grads[{k!r}]")
