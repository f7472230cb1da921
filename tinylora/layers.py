"""Forward/backward pairs, written by hand, each backward beside its forward.

Convention (CS231n / llm.c): ``op_forward(x, params...) -> (out, cache)`` and
``op_backward(dout, cache) -> (dx, dparams...)`` in the forward's argument order. The cache is a
small tuple unpacked on backward's first line under the forward's names. Cheap things are
recomputed rather than cached. A gradient that is not asked for (``need_dW=False``, say) is
returned as ``None`` and never computed: frozen weights get no gradient and no buffer for one.

Shapes. Row-vector code: ``y = x @ W`` with W stored ``(d_in, d_out)``. Inputs may carry any
leading axes ``(..., d_in)``. Parameters may carry leading *stack* axes ``(*S, d_in, d_out)``: a
stack of S independent models trained at once by broadcasting (the learning-rate grids of
`tinylora.lab.grid`). Where the input has no stack axes it is shared by every model in the stack.

The arrays may be NumPy or CuPy; nothing here imports either: `xp_of(x)` names the module that
owns an array, so the same code runs on both.
"""

from __future__ import annotations

import math

from tinylora.backend import xp_of
from tinylora.fast.blocking import (
    add_product_in_blocks,
    can_add_product,
    gelu_grad_in_blocks,
    gelu_in_blocks,
)
from tinylora.validate import class_targets, finite_by_loss, regression_target

# --------------------------------------------------------------------------------------------
# Small helpers for broadcasting and error messages


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
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead > 0 else g
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


def weight_grad(x, dy, w_shape):
    """dW for ``y = x @ W``: ``x^T dy`` summed over every batch axis.   -> (*S, d_in, d_out)

    x (..., d_in) or (*S, ..., d_in); dy (*S, ..., d_out); W (*S, d_in, d_out).
    The batch axes are flattened into one so that the product is a single large GEMM.
    """
    d_in, d_out = x.shape[-1], dy.shape[-1]
    stack = tuple(w_shape[:-2])
    if not stack:
        return x.reshape(-1, d_in).T @ dy.reshape(-1, d_out)  # [d_in, M] @ [M, d_out]
    dy_s = dy.reshape(*stack, -1, d_out)  # [*S, M, d_out]
    if x.ndim == dy.ndim and tuple(x.shape[: len(stack)]) == stack:  # x carries the stack too
        x_s = x.reshape(*stack, -1, d_in)  # [*S, M, d_in]
        return x_s.swapaxes(-1, -2) @ dy_s  # [*S, d_in, M] @ [*S, M, d_out]
    if x.ndim == dy.ndim - len(stack):  # x shared by every model in the stack
        return x.reshape(-1, d_in).T @ dy_s  # [d_in, M] @ [*S, M, d_out]
    return sum_to_shape(x.swapaxes(-1, -2) @ dy, w_shape)  # any other broadcast: general form


def _t(W):
    """Transpose of the last two axes (works for stacked weights too)."""
    return W.swapaxes(-1, -2)


def _mm(a, b):
    """a @ b.   Fast paths (docs/benchmarks.md; tests check both): (1) a summed axis of length 1
    (a width-1 output, a rank-1 LoRA) is an outer product, and ``a * b`` is exact and 3x faster
    in float32 (NumPy's matmul leaves BLAS there: (16000, 1) @ (1, 128) 2.4 ms, broadcast 0.8).
    (2) A contiguous a (N, T, k) times a matrix: NumPy runs one GEMM per leading index; as one
    (N T, k) GEMM, 8 % faster ((8, 128, 512) @ (512, 2048): 14.9 -> 13.7 ms)."""
    if a.shape[-1] == 1:
        return a * b
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
    return a @ b


def _sum_in_place(y, other):
    """y + other.   Fast path: the sum is written into y when y already has the broadcast shape.
    With a stack of S models sharing x (`tinylora.lab.grid`), the LoRA path is (S, N, d_out) and
    the frozen one (N, d_out): writing into y saves an (S, N, d_out) temporary, 10-15 % of the
    grid's step at width 256 (docs/benchmarks.md)."""
    if y.ndim >= other.ndim and tuple(y.shape[y.ndim - other.ndim :]) == tuple(other.shape):
        y += other
        return y
    return y + other


# --------------------------------------------------------------------------------------------
# Frozen linear layer:  y = x W + b


def linear_forward(x, W, b=None, name: str = "linear"):
    """y = x @ W + b.   x (..., d_in), W (d_in, d_out), b (d_out,) -> y (..., d_out)."""
    check_last_dim(x, W.shape[-2], name)
    y = _mm(x, W)  # [..., d_in] -> [..., d_out]
    if b is not None:
        y += b
    return y, (x, W, b)


def linear_backward(dy, cache, need_dx=True, need_dW=False, need_db=False):
    """-> (dx, dW, db); each is None unless asked for (a frozen W gets no gradient)."""
    x, W, b = cache
    dx = sum_to_shape(_mm(dy, _t(W)), x.shape) if need_dx else None  # [..., d_out] -> [..., d_in]
    dW = weight_grad(x, dy, W.shape) if need_dW else None
    db = sum_to_shape(dy, b.shape) if (need_db and b is not None) else None
    return dx, dW, db


# --------------------------------------------------------------------------------------------
# LoRA linear layer:  y = x W + b + scale * (x A) B


def lora_linear_forward(x, W, b, A, B, scale: float, name: str = "lora_linear", mask=None):
    """y = x @ W + b + scale * (x @ A) @ B, never forming A @ B.

    x (..., d_in), W (d_in, d_out), b (d_out,) or None, A (*S, d_in, r), B (*S, r, d_out)
    -> y (*S, ..., d_out). ``z_a = x @ A`` is the paper's ``Z_A = A Z`` (r numbers per row).
    `mask`: LoRA dropout's scaled mask (x's shape, `tinylora.dropout`): A reads ``x * mask``
    and the frozen path x itself; None (no dropout) costs nothing.
    """
    check_last_dim(x, W.shape[-2], name)
    z_a = _mm(x if mask is None else x * mask, A)  # [..., d_in] -> [..., r]
    u, y = scale * z_a, _mm(x, W)  # the scale on the r side
    if can_add_product(y, u, B):  # fast path: y += u B + b, row block by row block
        return add_product_in_blocks(y, u, B, b), (x, W, b, A, B, z_a, scale, mask)
    y = _sum_in_place(_mm(u, B), y)  # LoRA path + frozen path
    if b is not None:
        y += b
    return y, (x, W, b, A, B, z_a, scale, mask)


def lora_linear_backward(dy, cache, need_dx=True, need_dW=False, need_db=False):
    """-> (dx, dW, db, dA, dB) in the forward's argument order (dW, db None unless asked for).

    With u = scale * z_a = scale * x A:   y = x W + b + u B
      dB = u^T dy                   [r, M] @ [M, d_out]
      du = dy B^T, dz_a = scale du  [M, d_out] @ [d_out, r]
      dA = x^T dz_a                 [d_in, M] @ [M, r]
      dx = dy W^T + dz_a A^T        x forks into the frozen and the LoRA path: gradients sum
    At Init[1] (B = 0) dz_a = 0, so dA is exactly zero at the first step.
    With dropout (A reads x_d = x * mask): dA = x_d^T dz_a, and the LoRA path's dx is times mask.
    """
    x, W, b, A, B, z_a, scale, mask = cache
    dz_a = scale * _mm(dy, _t(B))  # [..., d_out] -> [..., r]
    dB = weight_grad(scale * z_a, dy, B.shape)  # [*S, r, d_out]
    dA = weight_grad(x if mask is None else x * mask, dz_a, A.shape)  # [*S, d_in, r]
    dx = None
    if need_dx and mask is None and can_add_product(dy, dz_a, _t(A)):  # fast path, same sum
        dx = sum_to_shape(add_product_in_blocks(_mm(dy, _t(W)), dz_a, _t(A)), x.shape)  # fork
    elif need_dx:
        dx_lora = _mm(dz_a, _t(A))  # [..., r] -> [..., d_in]
        if mask is not None:
            dx_lora *= mask  # through the dropout: d(x * mask)/dx = mask
        dx = sum_to_shape(_sum_in_place(dx_lora, _mm(dy, _t(W))), x.shape)  # fork
    dW = weight_grad(x, dy, W.shape) if need_dW else None
    db = sum_to_shape(dy, b.shape) if (need_db and b is not None) else None
    return dx, dW, db, dA, dB


# --------------------------------------------------------------------------------------------
# Activations


def relu_forward(x):
    """y = max(x, 0), elementwise."""
    y = xp_of(x).maximum(x, 0.0)
    return y, y


def relu_backward(dy, cache):
    """dx = dy where x > 0 else 0 (the kink at 0 gets derivative 0)."""
    y = cache
    return dy * (y > 0)


def gelu_forward(x):
    """gelu(x) = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)   (the tanh form, GPT-2).

    Fast path: written as that expression, NumPy makes a temporary and a pass over memory per
    operator; `tinylora.fast.blocking.gelu_in_blocks` runs the same passes on cache-sized row
    blocks,
    about 2x faster on a (1024, 2048) float32 activation (docs/benchmarks.md; a test checks it
    against the expression)."""
    y, t = gelu_in_blocks(x)
    return y, (x, t)


def gelu_backward(dy, cache):
    """dx = dy gelu'(x),  gelu'(x) = (1 + t)/2 + x/2 (1 - t^2) du/dx,
    du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2),  t = tanh(u) from the forward.

    Fast path: `tinylora.fast.blocking.gelu_grad_in_blocks`, the same numbers in one buffer per row
    block, each line one pass over a block still in cache (1.6x faster than in one buffer over
    the whole array, 2.5x faster than the expression; a test checks it against the expression)."""
    x, t = cache
    return gelu_grad_in_blocks(dy, x, t)


ACTIVATIONS = {"relu": (relu_forward, relu_backward), "gelu": (gelu_forward, gelu_backward)}


def activation(name: str):
    """(forward, backward) for 'relu' or 'gelu'; anything else: an error listing the valid ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


# --------------------------------------------------------------------------------------------
# Losses: means over the batch. With `stack_ndim` k > 0 the first k axes index independent
# models, and the loss has shape S (one mean per model), so each model's gradient is its own.


def _batch_axes(ndim: int, stack_ndim: int, feature_axes: int):
    return tuple(range(stack_ndim, ndim - feature_axes))


def mse_forward(pred, y, stack_ndim: int = 0):
    """loss = mean over the batch and output axes of (pred - y)^2   (PyTorch's MSELoss).

    pred (*S, ..., d_out), y (..., d_out) -> loss, shape S (a scalar when unstacked).
    """
    regression_target(pred, y, stack_ndim, finite=False)  # y's values: by the loss, below
    diff = pred - y  # [*S, ..., d_out]
    axes = _batch_axes(diff.ndim, stack_ndim, 0)  # every axis but the stack's
    count = math.prod(diff.shape[i] for i in axes) if stack_ndim else diff.size
    flat = diff.reshape(-1)  # fast path, one model: the sum of squares as a dot (no temporary)
    sq = flat @ flat if not stack_ndim else (diff * diff).sum(axis=axes)
    loss = finite_by_loss(sq / count, y, "mse: target y")  # fast path: y finite if loss is
    return loss, (diff, stack_ndim, count)


def mse_backward(dloss, cache):
    """dpred = dloss * 2 (pred - y) / count."""
    diff, stack_ndim, count = cache
    dloss = _expand(dloss, diff.ndim, stack_ndim)
    return diff * (dloss * (2.0 / count))


def _expand(dloss, ndim: int, stack_ndim: int):
    """Reshape a per-model dloss (shape S) so that it broadcasts against (*S, ...)."""
    if not hasattr(dloss, "reshape") or getattr(dloss, "ndim", 0) == 0:
        return dloss
    return dloss.reshape(tuple(dloss.shape) + (1,) * (ndim - stack_ndim))


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
    axes = _batch_axes(logits.ndim, stack_ndim, 1)
    count = math.prod(logits.shape[i] for i in axes)
    return nll.sum(axis=axes) / count, (logp, t, stack_ndim, count)


def cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax(logits) - onehot(target)) / count."""
    logp, t, stack_ndim, count = cache
    xp = xp_of(logp)
    dlogits = xp.exp(logp)  # softmax, [*S, ..., V]
    rows = dlogits.reshape(-1, dlogits.shape[-1])  # a view: [M, V]
    rows[xp.arange(rows.shape[0]), t.reshape(-1)] -= 1.0  # subtract the one-hot target
    return dlogits * (_expand(dloss, logp.ndim, stack_ndim) / count)
