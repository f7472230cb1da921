"""One training step and a short training loop, for any model with forward/backward.

    loss, grads = loss_and_grads(model, x, y)     # forward, loss, backward
    opt.step(grads)                                # in-place update of the trainable arrays

For a stacked model (``model.stack == (S,)``) the loss has shape (S,): one mean per model, and
each model's gradient is exactly the gradient it would get alone.
"""

from __future__ import annotations

import math
import warnings

from tinylora import backend, validate
from tinylora.diverge import Diverged, diverged, message, quiet_overflow
from tinylora.layers import cross_entropy_backward, cross_entropy_forward, mse_backward, mse_forward

LOSSES = {"mse": (mse_forward, mse_backward), "cross_entropy": (cross_entropy_forward,
                                                                 cross_entropy_backward)}


def loss_fn(name: str):
    """(forward, backward) of the loss `name`: 'mse' or 'cross_entropy'."""
    if name not in LOSSES:
        raise ValueError(f"loss: expected one of {sorted(LOSSES)}, got {name!r}")
    return LOSSES[name]


def loss_and_grads(model, x, y, loss: str = "mse"):
    """Forward, loss (a mean over the batch), backward. -> (loss, grads by trainable key)."""
    forward, backward = loss_fn(loss)
    out, cache = model.forward(x)
    stack_ndim = len(getattr(model, "stack", ()))
    value, loss_cache = forward(out, y, stack_ndim=stack_ndim)
    dloss = backend.xp_of(out).ones_like(value) if stack_ndim else 1.0
    dout = backward(dloss, loss_cache)
    del out, loss_cache  # not needed by the model's backward: free them first (lower peak memory)
    return value, model.backward(dout, cache)


class History(list):
    """The losses of `train`, one per step, and ``diverged_at``: the step at which the run
    diverged (None if it did not; for a stack, a list with one entry per model)."""

    diverged_at = None


def train(model, opt, x, y, steps: int, loss: str = "mse") -> History:
    """`steps` full-batch steps. -> `History`: host floats (arrays for a stack), one per step.

    x and y are checked first (shapes, dtypes, finite values), so a NaN in the data is an
    error, never a divergence. A run *diverges* by the rule of `tinylora.diverge` (its loss not
    finite, or above DIVERGED times the starting loss) or when its gradients stop being finite:
    it then stops, its remaining losses are recorded as inf, ``diverged_at`` names the step and
    a `Diverged` warning says so. In a stack only the models that diverged stop (their
    gradients are set to 0); the others go on.
    """
    steps = validate.positive_int(steps, "steps")
    loss_fn(loss)
    xp = model.xp
    for name, a in (("x", x), ("y", y)):
        if getattr(a, "dtype", None) is not None and a.dtype.kind == "f":
            validate.finite_values(a, name)
    history, start, dead = History(), None, None
    with quiet_overflow(xp):
        for t in range(steps):
            value, grads = loss_and_grads(model, x, y, loss)
            host = backend.finite_or_inf(value)
            if start is None:  # the loss before any update: what divergence is measured by
                start = host if isinstance(host, float) else host.copy()
            if isinstance(host, float):
                if diverged(host, start) or not validate.all_finite(grads.values()):
                    history.append(host)
                    return _stop(history, t, host, start, steps)
            else:
                dead = _dead_cells(history, host, start, grads, dead, xp)
                if all(d is not None for d in dead):
                    history.extend([host] * (steps - t))
                    history.diverged_at = dead
                    return history
            history.append(host)
            opt.step(grads)
    if dead is not None:
        history.diverged_at = dead
    return history


def _stop(history: History, t: int, loss: float, start: float, steps: int) -> History:
    """A diverged unstacked run: inf for the steps it did not take, the step, a warning."""
    history[-1] = math.inf if diverged(loss, start) else loss
    history.extend([math.inf] * (steps - t - 1))
    history.diverged_at = t
    warnings.warn(message(t, loss, start), Diverged, stacklevel=3)
    return history


def _dead_cells(history, host, start, grads, dead, xp):
    """The stack's diverged models (the step each diverged at, or None), flat: their losses
    become inf from that step on and their gradients 0, so they never write a non-finite
    number."""
    dead = [None] * host.size if dead is None else dead
    finite = host.astype(bool)  # [*S] on the host: is every gradient of model i finite?
    finite.fill(True)
    for g in grads.values():
        finite &= backend.to_numpy(xp.isfinite(g.sum(axis=tuple(range(host.ndim, g.ndim)))))
    flat, mask = host.reshape(-1), ~finite
    for i, (value, first) in enumerate(zip(flat, start.reshape(-1))):
        if dead[i] is None and (diverged(value, first) or not finite.flat[i]):
            dead[i] = len(history)
            warnings.warn(message(len(history), value, first, f"model {i} of the stack"),
                          Diverged, stacklevel=4)
        mask.flat[i] = dead[i] is not None
    host[mask] = math.inf
    if mask.any():
        for g in grads.values():
            g[xp.asarray(mask)] = 0.0
    return dead
