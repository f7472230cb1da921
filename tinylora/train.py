"""One training step and a short training loop, for any model with forward/backward.

    loss, grads = loss_and_grads(model, x, y)     # forward, loss, backward
    opt.step(grads)                                # in-place update of the trainable arrays

For a stacked model (``model.stack == (S,)``) the loss has shape (S,): one mean per model, and
each model's gradient is exactly the gradient it would get alone.
"""

from __future__ import annotations

import math

from tinylora import backend
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


def train(model, opt, x, y, steps: int, loss: str = "mse"):
    """`steps` full-batch steps. -> list of host floats (or arrays for a stack), one per step.

    A run whose loss stops being finite is *diverged*: it stops there and its remaining losses
    are recorded as inf (for a stack, only the cells that diverged; the others go on).
    """
    history = []
    for t in range(steps):
        value, grads = loss_and_grads(model, x, y, loss)
        host = backend.finite_or_inf(value)
        history.append(host)
        if math.isinf(float(host if isinstance(host, float) else host.min())):  # all diverged
            history.extend([host] * (steps - t - 1))
            break
        opt.step(grads)
    return history
