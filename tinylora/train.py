"""One training step and a short training loop, for any model with forward/backward.

    loss, grads = loss_and_grads(model, x, y)     # forward, loss, backward
    opt.step(grads)                                # in-place update of the trainable arrays

`train_step` is that step under the divergence rule of `tinylora.diverge` (a run that diverges
is not updated); `train` and the text loops (`tinylora.text.pretrain`, `.finetune`) run it.
For a stacked model (``model.stack == (S,)``) the loss has shape (S,): one mean per model, and
each model's gradient is exactly the gradient it would get alone; a model of the stack that
diverges is retired (`retire`) and the others go on.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

# NumPy directly for host-side bookkeeping only: the losses read back (`host`) and the retired
# mask are NumPy on every backend; the model's arrays go through `model.xp`.
import numpy as np

from tinylora import backend, validate
from tinylora.diverge import Diverged, diverged, message, quiet_overflow
from tinylora.layers import cross_entropy_backward, cross_entropy_forward, mse_backward, mse_forward
from tinylora.schedule import clip_grad_norm

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


class StepResult(NamedTuple):
    """What one `train_step` saw. `loss`: the loss before the update, on the host as computed
    (a float; for a stack a NumPy array, one per model). `diverged`: whether the run diverged at
    this step and so was not updated (for a stack, a boolean array: the models that diverged at
    this step)."""

    loss: object
    diverged: object


def train_step(model, opt, x, y, start=None, loss: str = "mse", clip=None,
               retired=None) -> StepResult:
    """One training step under the divergence rule (`tinylora.diverge`):

        value, grads = loss_and_grads(model, x, y, loss)      # forward, loss, backward
        diverged: value breaks the rule against `start`, or a gradient is not finite
        otherwise: clip_grad_norm(grads, clip); opt.step(grads)   # the update, in place

    `start`: the loss before any update, what divergence is measured by (None: this step's own
    loss, for the first step). A run that diverges is not updated; what that means is the
    caller's (`train` stops and warns, the fine-tuning records inf, the pretraining refuses).
    `clip`: the largest global gradient norm (`tinylora.schedule.clip_grad_norm`); None: none.

    For a stack (``model.stack``), `start` and the loss are host arrays of one per model and
    `retired` (a boolean host array of the stack's shape) marks the models retired so far: each
    model that diverges now joins it (updated in place), every retired model is `retire`d
    (its factors stay 0), and the others are updated unless none is left.
    """
    value, grads = loss_and_grads(model, x, y, loss)
    host = backend.finite_or_inf(value)
    opt.settle()  # read with the loss: what a fast twin decided on the device (`Optimizer.settle`)
    start = host if start is None else start
    if retired is None:
        if diverged(host, start) or not validate.all_finite(grads.values()):
            return StepResult(host, True)
        clip_grad_norm(grads, clip)  # None: no clipping
        opt.step(grads)
        return StepResult(host, False)
    if clip is not None:
        validate.fail("clip", "None for a stack (a global norm would mix its models)", clip)
    by_rule = np.array([diverged(v, s) for v, s in zip(host.flat, np.broadcast_to(
        start, host.shape).flat)], dtype=bool).reshape(host.shape)
    newly = ~retired & (by_rule | ~_finite_per_model(grads, host.ndim, model.xp))
    retired |= newly
    if retired.any():
        retire(opt, grads, retired)
    if not retired.all():
        opt.step(grads)
    return StepResult(host, newly)


def _finite_per_model(grads: dict, stack_ndim: int, xp):
    """A boolean host array of the stack's shape: is every gradient of model i finite?"""
    finite = None
    for g in grads.values():
        ok = backend.to_numpy(xp.isfinite(g.sum(axis=tuple(range(stack_ndim, g.ndim)))))
        finite = ok if finite is None else finite & ok
    return finite


def retire(opt, grads: dict, dead) -> None:
    """Retire the diverged models of a stack: their factors, gradients and optimizer state (and
    learning rates, where those are per model) set to 0, so that they stay 0, and finite, from
    now on (the optimizer refuses a non-finite gradient); the other models are never touched.

    `dead`: True for each model to retire, a boolean array (or list) of the stack's shape;
    a bare True retires an unstacked model whole (its rates become 0.0)."""
    mask = backend.xp_of(next(iter(opt.params.values()))).asarray(dead, dtype=bool)
    whole = mask.ndim == 0  # an unstacked model: every entry
    if whole and not bool(mask):
        return
    where = ... if whole else mask
    for group in opt.groups:
        for k in group["params"]:
            for arr in [opt.params[k], grads[k], *opt.state.get(k, {}).values()]:
                arr[where] = 0.0
        rate = group["lr"]
        if isinstance(rate, float):  # one rate for every model: kept, unless it is the only one
            group["lr"] = 0.0 if whole else rate
        elif tuple(rate.shape[:mask.ndim]) == tuple(mask.shape):  # one rate per model
            rate[where] = 0.0


class History(list):
    """The losses of `train`, one per step, and ``diverged_at``: the step at which the run
    diverged (None if it did not; for a stack, a list with one entry per model)."""

    diverged_at = None


def train(model, opt, x, y, steps: int, loss: str = "mse") -> History:
    """`steps` full-batch `train_step`s. -> `History`: host floats (arrays for a stack), one per
    step (``steps=0``: an empty history).

    x and y are checked first (shapes, dtypes, finite values), so a NaN in the data is an
    error, never a divergence. A run *diverges* by the rule of `tinylora.diverge` (its loss not
    finite, or above DIVERGED times the starting loss) or when its gradients stop being finite:
    it then stops, its remaining losses are recorded as inf, ``diverged_at`` names the step and
    a `Diverged` warning says so. In a stack only the models that diverged stop (they are
    retired: `retire`); the others go on.
    """
    steps = validate.integer(steps, "steps", 0)
    loss_fn(loss)
    for name, a in (("x", x), ("y", y)):
        if getattr(a, "dtype", None) is not None and a.dtype.kind == "f":
            validate.finite_values(a, name)
    stack = tuple(getattr(model, "stack", ()))
    history, start = History(), None
    retired = np.zeros(stack, dtype=bool) if stack else None
    dead = [None] * retired.size if stack else None  # per model: the step it diverged at
    with quiet_overflow(model.xp):
        for t in range(steps):
            host, gone = train_step(model, opt, x, y, start, loss, retired=retired)
            if start is None:  # the loss before any update: what divergence is measured by
                start = host if isinstance(host, float) else host.copy()
            if not stack:
                history.append(host)
                if gone:
                    return _stop(history, t, host, start, steps)
                continue
            for i in np.flatnonzero(gone):
                dead[i] = t
                warnings.warn(message(t, host.flat[i], start.flat[i], f"model {i} of the stack"),
                              Diverged, stacklevel=2)
            host[retired] = math.inf
            if retired.all():
                history.extend([host] * (steps - t))
                break
            history.append(host)
    if stack:
        history.diverged_at = dead
    return history


def _stop(history: History, t: int, loss: float, start: float, steps: int) -> History:
    """A diverged unstacked run: inf for the steps it did not take, the step, a warning."""
    history[-1] = math.inf if diverged(loss, start) else loss
    history.extend([math.inf] * (steps - t - 1))
    history.diverged_at = t
    warnings.warn(message(t, loss, start), Diverged, stacklevel=3)
    return history
