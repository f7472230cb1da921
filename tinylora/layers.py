"""Forward/backward pairs, written by hand, each backward beside its forward.

Convention (CS231n / llm.c): ``op_forward(x, params...) -> (out, cache)`` and
``op_backward(dout, cache) -> (dx, dparams...)`` in the forward's argument order. The cache is a
small tuple unpacked on backward's first line under the forward's names. Cheap things are
recomputed rather than cached. A gradient that is not asked for (``need_dW=False``, say) is
returned as ``None`` and never computed: frozen weights get no gradient and no buffer for one.

Shapes. Row-vector code: ``y = x @ W`` with W stored ``(d_in, d_out)``. Inputs may carry any
leading axes ``(..., d_in)``. LoRA factors may carry leading *stack* axes ``(*S, d_in, r)``: S
independent models trained at once by broadcasting (the learning-rate grids of
`tinylora.lab.grid`); an input without the stack axes is shared by every model in the stack.

The arrays may be NumPy or CuPy; nothing here imports either: `xp_of(x)` names the module that
owns an array, so the same code runs on both. Functions marked ``@has_fast_twin`` have a faster
version in `tinylora.fast.layers` (`tinylora.twins`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tinylora.backend import xp_of
from tinylora.twins import has_fast_twin
from tinylora.validate import class_targets, regression_target

# --------------------------------------------------------------------------------------------
# Broadcasting and its gradient


def check_last_dim(x, expected: int, name: str, what: str = "input") -> None:
    """Raise a clear error when ``x.shape[-1] != expected`` (names the layer)."""
    if x.ndim < 1 or x.shape[-1] != expected:
        raise ValueError(
            f"{name}: expected {what} with trailing size {expected} (shape (..., {expected})), "
            f"got shape {tuple(x.shape)}"
        )


def sum_to_shape(g, shape):
    """Sum `g` over the axes that broadcasting added or stretched, so that it has `shape`.

    The gradient of a broadcast is a sum: if ``a`` of `shape` was broadcast into ``g.shape``,
    ``d a = sum_to_shape(d g, shape)``.
    """
    shape = tuple(shape)
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead > 0 else g  # axes broadcasting added in front
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


def weight_grad(x, dy, w_shape):
    """dW for ``y = x @ W``: ``x^T dy``, summed over every batch row.   -> (*S, d_in, d_out)

    W (*S, d_in, d_out) with k = len(S) stack axes; dy (*S, ..., d_out); x (*S, ..., d_in), or
    (..., d_in) when every model of the stack reads the same input. The batch axes become one
    axis of M rows, so the sum over them is the product's own sum. Trailing stack axes of size 1
    (TinyLM's factors (S, 1, d_in, r) broadcast over its batch axis) sum with the rows.
    """
    k = len(w_shape) - 2
    while k and w_shape[k - 1] == 1:  # an axis of 1 was broadcast over rows: it sums with them
        k -= 1
    dy_rows = dy.reshape(*dy.shape[:k], -1, dy.shape[-1])  # [*S, M, d_out]
    x_stack = x.shape[:k] if x.ndim == dy.ndim else ()  # does x carry the stack axes too?
    x_rows = x.reshape(*x_stack, -1, x.shape[-1])  # [*S, M, d_in] or [M, d_in]
    return (x_rows.swapaxes(-1, -2) @ dy_rows).reshape(w_shape)  # [*S, d_in, M] @ [*S, M, d_out]


def transpose(W):
    """W^T: the last two axes swapped (a stack of weights stays a stack)."""
    return W.swapaxes(-1, -2)


# --------------------------------------------------------------------------------------------
# Frozen linear layer:  y = x W + b


@has_fast_twin
def linear_forward(x, W, b=None, name: str = "linear"):
    """y = x @ W + b.   x (..., d_in), W (d_in, d_out), b (d_out,) -> y (..., d_out)."""
    check_last_dim(x, W.shape[-2], name)
    y = x @ W  # [..., d_in] -> [..., d_out]
    if b is not None:
        y = y + b
    return y, (x, W, b)


@has_fast_twin
def linear_backward(dy, cache, need_dx=True, need_dW=False, need_db=False):
    """-> (dx, dW, db); each is None unless asked for (a frozen W gets no gradient)."""
    x, W, b = cache
    dx = sum_to_shape(dy @ transpose(W), x.shape) if need_dx else None  # [.., d_out] -> [.., d_in]
    dW = weight_grad(x, dy, W.shape) if need_dW else None
    db = sum_to_shape(dy, b.shape) if (need_db and b is not None) else None
    return dx, dW, db


# --------------------------------------------------------------------------------------------
# LoRA linear layer:  y = x W + b + scale * (x A) B


class LoRACache(NamedTuple):
    """What `lora_linear_backward` needs from its forward."""

    x: object  # the input (..., d_in)
    W: object
    b: object
    A: object
    B: object
    z_a: object  # x A (before the scale): the paper's Z_A
    scale: float
    mask: object  # LoRA dropout's scaled mask on A's input, or None


@has_fast_twin
def lora_linear_forward(x, W, b, A, B, scale: float, name: str = "lora_linear", mask=None):
    """y = x @ W + b + scale * (x @ A) @ B, never forming A @ B.

    x (..., d_in), W (d_in, d_out), b (d_out,) or None, A (*S, d_in, r), B (*S, r, d_out)
    -> y (*S, ..., d_out). ``z_a = x @ A`` is the paper's ``Z_A = A Z`` (r numbers per row).
    `mask`: LoRA dropout's scaled mask (x's shape, `tinylora.dropout`): A reads ``x * mask``
    and the frozen path x itself; None means no dropout.
    """
    check_last_dim(x, W.shape[-2], name)
    x_a = x if mask is None else x * mask  # what A reads
    z_a = x_a @ A  # [..., d_in] -> [*S, ..., r]
    y = x @ W + (scale * z_a) @ B  # frozen path + LoRA path   [*S, ..., d_out]
    if b is not None:
        y = y + b
    return y, LoRACache(x, W, b, A, B, z_a, scale, mask)


@has_fast_twin
def lora_linear_backward(dy, cache, need_dx=True, need_dW=False, need_db=False):
    """-> (dx, dW, db, dA, dB) in the forward's argument order (dW, db None unless asked for).

    With u = scale * z_a = scale * x A:   y = x W + b + u B
      dB = u^T dy                   [r, M] @ [M, d_out]
      du = dy B^T, dz_a = scale du  [M, d_out] @ [d_out, r]
      dA = x^T dz_a                 [d_in, M] @ [M, r]
      dx = dy W^T + dz_a A^T        x forks into the frozen and the LoRA path: gradients sum
    At Init[1] (B = 0) dz_a = 0, so dA is exactly zero at the first step.
    With dropout (A reads x_a = x * mask): dA = x_a^T dz_a, and the LoRA path's dx is times mask.
    """
    x, W, b, A, B, z_a, scale, mask = cache
    x_a = x if mask is None else x * mask
    dz_a = scale * (dy @ transpose(B))  # [*S, ..., d_out] -> [*S, ..., r]
    dB = weight_grad(scale * z_a, dy, B.shape)  # [*S, r, d_out]
    dA = weight_grad(x_a, dz_a, A.shape)  # [*S, d_in, r]
    dx = None
    if need_dx:
        dx_lora = dz_a @ transpose(A)  # [*S, ..., r] -> [*S, ..., d_in]
        if mask is not None:
            dx_lora = dx_lora * mask  # through the dropout: d(x * mask)/dx = mask
        dx = sum_to_shape(dy @ transpose(W) + dx_lora, x.shape)  # fork: the two paths sum
    dW = weight_grad(x, dy, W.shape) if need_dW else None
    db = sum_to_shape(dy, b.shape) if (need_db and b is not None) else None
    return dx, dW, db, dA, dB


# --------------------------------------------------------------------------------------------
# Activations

GELU_C = math.sqrt(2.0 / math.pi)
GELU_K = 0.044715


def relu_forward(x):
    """y = max(x, 0), elementwise."""
    y = xp_of(x).maximum(x, 0.0)
    return y, y


def relu_backward(dy, cache):
    """dx = dy where x > 0 else 0 (the kink at 0 gets derivative 0)."""
    y = cache
    return dy * (y > 0)


@has_fast_twin
def gelu_forward(x):
    """gelu(x) = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)   (the tanh form, GPT-2)."""
    t = xp_of(x).tanh(GELU_C * (x + GELU_K * x**3))
    return 0.5 * x * (1.0 + t), (x, t)


@has_fast_twin
def gelu_backward(dy, cache):
    """dx = dy gelu'(x),  gelu'(x) = (1 + t)/2 + x/2 (1 - t^2) du/dx,
    du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2),  t = tanh(u) from the forward."""
    x, t = cache
    du_dx = GELU_C * (1.0 + 3.0 * GELU_K * x**2)
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx)


ACTIVATIONS = {"relu": (relu_forward, relu_backward), "gelu": (gelu_forward, gelu_backward)}


def activation(name: str):
    """(forward, backward) for 'relu' or 'gelu'; anything else: an error listing the valid ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


# --------------------------------------------------------------------------------------------
# Losses: means over the batch. With `stack_ndim` k > 0 the first k axes index independent
# models, and the loss has shape S (one mean per model), so each model's gradient is its own.


def per_model(dloss, ndim: int, stack_ndim: int):
    """A per-model dloss (shape S, or a number) shaped to broadcast against (*S, ...)."""
    if getattr(dloss, "ndim", 0) == 0:
        return dloss
    return dloss.reshape(tuple(dloss.shape) + (1,) * (ndim - stack_ndim))


@has_fast_twin
def mse_forward(pred, y, stack_ndim: int = 0):
    """loss = mean over the batch and output axes of (pred - y)^2   (PyTorch's MSELoss).

    pred (*S, ..., d_out), y (..., d_out) -> loss, shape S (a scalar when unstacked).
    """
    regression_target(pred, y, stack_ndim)  # finite, and of one model's (or the stack's) shape
    diff = pred - y  # [*S, ..., d_out]
    per_model_axes = tuple(range(stack_ndim, diff.ndim))
    return (diff * diff).mean(axis=per_model_axes), (diff, stack_ndim)


def mse_backward(dloss, cache):
    """dpred = dloss * 2 (pred - y) / count, count = the numbers each model's mean is over."""
    diff, stack_ndim = cache
    count = diff[(0,) * stack_ndim].size
    return diff * (per_model(dloss, diff.ndim, stack_ndim) * (2.0 / count))


def log_softmax(logits):
    """log softmax over the last axis, stable: shift by the row maximum before exponentiating."""
    xp = xp_of(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)  # [..., V], every row's max is 0
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    """softmax over the last axis (rows are non-negative and sum to 1)."""
    return xp_of(logits).exp(log_softmax(logits))


def cross_entropy_forward(logits, targets, stack_ndim: int = 0):
    """Softmax cross-entropy, mean over the batch: loss = mean(-log softmax(logits)[target]).

    logits (*S, ..., V), integer targets (...) with values in [0, V) -> loss, shape S.
    """
    xp = xp_of(logits)
    class_targets(logits, targets, stack_ndim)  # integers in [0, V) of the logits' shape
    logp = log_softmax(logits)  # [*S, ..., V]
    t = xp.broadcast_to(targets, logits.shape[:-1])[..., None]  # [*S, ..., 1]
    nll = -xp.take_along_axis(logp, t, axis=-1)[..., 0]  # [*S, ...]
    return nll.mean(axis=tuple(range(stack_ndim, nll.ndim))), (logp, t, stack_ndim)


def cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax(logits) - onehot(target)) / count."""
    logp, t, stack_ndim = cache
    xp = xp_of(logp)
    count = logp[(0,) * stack_ndim].size // logp.shape[-1]  # positions per model
    onehot = xp.arange(logp.shape[-1]) == t  # [*S, ..., V]: True at each target
    return (xp.exp(logp) - onehot) * (per_model(dloss, logp.ndim, stack_ndim) / count)
