"""Fast twins of `tinylora.layers`: the same functions, the same signatures, the same numbers (to
rounding), fewer passes over memory. Each is tested against its reference in
`tests/test_fast_paths.py`; what each saves is measured in `docs/benchmarks.md`.

    reference (tinylora.layers)     what the twin does differently
    linear_forward / _backward      a contiguous (N, T, k) @ (k, m) as one (N T, k) GEMM; a sum
                                    over an axis of length 1 as an outer product
    lora_linear_forward / _backward y += u B + b (and dx += dz_a A^T) row block by row block
                                    (`blocking.add_product_in_blocks`), written into y
    gelu_forward / _backward        the expression's passes on cache-sized row blocks
    mse_forward                     the sum of squares as one dot; y's finiteness read off the loss

On CuPy (`tinylora.fast.cuda`): gelu and its backward are one kernel each; a LoRA layer's sum
y = x W + scale (x A) B + b is the bias written once and two cuBLAS products accumulated into y,
and its backward's dx = dy W^T + dz_a A^T likewise, with the scale folded into the products.
"""

from __future__ import annotations

from tinylora.backend import xp_of
from tinylora.fast import blocking, cuda
from tinylora.fast.validate import finite_by_loss, regression_target_shape
from tinylora.layers import LoRACache, check_last_dim, sum_to_shape, transpose, weight_grad


def matmul(a, b):
    """a @ b, faster in two cases. (1) A summed axis of length 1 (a width-1 output, a rank-1
    LoRA) is an outer product, and ``a * b`` is exact and stays in BLAS-free NumPy, where NumPy's
    matmul is slow. (2) A contiguous a (N, T, k) times a matrix: NumPy runs one GEMM per leading
    index; as one (N T, k) GEMM it is faster."""
    if a.shape[-1] == 1:
        return a * b
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
    return a @ b


def add_in_place(y, other):
    """y + other, written into y when y already has the broadcast shape (a stack of S models
    sharing x: the LoRA path is (S, N, d_out), the frozen one (N, d_out); no temporary)."""
    if y.ndim >= other.ndim and tuple(y.shape[y.ndim - other.ndim:]) == tuple(other.shape):
        y += other
        return y
    return y + other


def linear_forward(x, W, b=None, name: str = "linear"):
    """The reference is `tinylora.layers.linear_forward`."""
    check_last_dim(x, W.shape[-2], name)
    y = matmul(x, W)  # [..., d_in] -> [..., d_out]
    if b is not None:
        y += b
    return y, (x, W, b)


def linear_backward(dy, cache, need_dx=True, need_dW=False, need_db=False):
    """The reference is `tinylora.layers.linear_backward`."""
    x, W, b = cache
    dx = sum_to_shape(matmul(dy, transpose(W)), x.shape) if need_dx else None
    dW = weight_grad(x, dy, W.shape) if need_dW else None
    db = sum_to_shape(dy, b.shape) if (need_db and b is not None) else None
    return dx, dW, db


def _on_gpu_as_rows(x, W, A, B, mask) -> bool:
    """Whether the cuBLAS form applies: CuPy, one model (2-D W, A, B), no dropout mask."""
    return (not blocking.on_host(xp_of(x)) and mask is None and W.ndim == A.ndim == B.ndim == 2
            and x.ndim >= 2)


def _lora_forward_gpu(x, W, b, A, B, scale: float):
    """y = x W + scale (x A) B + b: y holds b, then x W and scale z_a B are added into it by
    cuBLAS (no u B temporary, no separate additions). -> (y, z_a)."""
    xp, lead = xp_of(x), x.shape[:-1]
    x2 = xp.ascontiguousarray(x).reshape(-1, x.shape[-1])  # [M, d_in]
    y = xp.empty((x2.shape[0], W.shape[-1]), dtype=x.dtype)
    if b is not None:
        y[...] = b
    cuda.gemm(x2, W, out=y, beta=0.0 if b is None else 1.0)  # y (= b) + x W
    z_a = x2 @ A  # [M, d_in] @ [d_in, r] -> [M, r]
    cuda.gemm(z_a, B, out=y, alpha=scale, beta=1.0)  # + scale z_a B
    return y.reshape(*lead, W.shape[-1]), z_a.reshape(*lead, A.shape[-1])


def _lora_backward_gpu(dy, cache, need_dx, need_dW, need_db):
    """The backward of `_lora_forward_gpu`: dz_a = scale dy B^T, dB = scale z_a^T dy,
    dA = x^T dz_a, dx = dy W^T + dz_a A^T (accumulated by cuBLAS), each one call."""
    x, W, b, A, B, z_a, scale, _ = cache
    xp, dtype = xp_of(dy), dy.dtype
    dy2 = xp.ascontiguousarray(dy).reshape(-1, dy.shape[-1])  # [M, d_out]
    x2, z2 = xp.ascontiguousarray(x).reshape(-1, x.shape[-1]), z_a.reshape(-1, A.shape[-1])
    M, (d_in, r), d_out = dy2.shape[0], A.shape, B.shape[-1]
    dz_a = cuda.gemm(dy2, B, xp.empty((M, r), dtype), alpha=scale, trans_b=True)
    dB = cuda.gemm(z2, dy2, xp.empty((r, d_out), dtype), alpha=scale, trans_a=True)
    dA = cuda.gemm(x2, dz_a, xp.empty((d_in, r), dtype), trans_a=True)
    dx = None
    if need_dx:  # fork: the frozen and the LoRA path, summed in place
        dx = cuda.gemm(dy2, W, xp.empty((M, d_in), dtype), trans_b=True)
        cuda.gemm(dz_a, A, dx, beta=1.0, trans_b=True)
        dx = dx.reshape(x.shape)
    dW = weight_grad(x, dy, W.shape) if need_dW else None
    db = sum_to_shape(dy, b.shape) if (need_db and b is not None) else None
    return dx, dW, db, dA, dB


def lora_linear_forward(x, W, b, A, B, scale: float, name: str = "lora_linear", mask=None):
    """The reference is `tinylora.layers.lora_linear_forward`."""
    check_last_dim(x, W.shape[-2], name)
    if _on_gpu_as_rows(x, W, A, B, mask):
        y, z_a = _lora_forward_gpu(x, W, b, A, B, scale)
        return y, LoRACache(x, W, b, A, B, z_a, scale, mask)
    z_a = matmul(x if mask is None else x * mask, A)  # [..., d_in] -> [..., r]
    u, y = scale * z_a, matmul(x, W)  # the scale on the r side
    if blocking.can_add_product(y, u, B):  # y += u B + b, row block by row block
        return blocking.add_product_in_blocks(y, u, B, b), LoRACache(x, W, b, A, B, z_a, scale,
                                                                     mask)
    y = add_in_place(matmul(u, B), y)  # LoRA path + frozen path
    if b is not None:
        y += b
    return y, LoRACache(x, W, b, A, B, z_a, scale, mask)


def lora_linear_backward(dy, cache, need_dx=True, need_dW=False, need_db=False):
    """The reference is `tinylora.layers.lora_linear_backward`."""
    x, W, b, A, B, z_a, scale, mask = cache
    if _on_gpu_as_rows(x, W, A, B, mask):
        return _lora_backward_gpu(dy, cache, need_dx, need_dW, need_db)
    dz_a = scale * matmul(dy, transpose(B))  # [..., d_out] -> [..., r]
    dB = weight_grad(scale * z_a, dy, B.shape)  # [*S, r, d_out]
    dA = weight_grad(x if mask is None else x * mask, dz_a, A.shape)  # [*S, d_in, r]
    dx = None
    if need_dx and mask is None and blocking.can_add_product(dy, dz_a, transpose(A)):
        dx = blocking.add_product_in_blocks(matmul(dy, transpose(W)), dz_a, transpose(A))
        dx = sum_to_shape(dx, x.shape)  # fork: the frozen and the LoRA path summed
    elif need_dx:
        dx_lora = matmul(dz_a, transpose(A))  # [..., r] -> [..., d_in]
        if mask is not None:
            dx_lora *= mask  # through the dropout
        dx = sum_to_shape(add_in_place(dx_lora, matmul(dy, transpose(W))), x.shape)  # fork
    dW = weight_grad(x, dy, W.shape) if need_dW else None
    db = sum_to_shape(dy, b.shape) if (need_db and b is not None) else None
    return dx, dW, db, dA, dB


def gelu_forward(x):
    """The reference is `tinylora.layers.gelu_forward`."""
    y, t = blocking.gelu_in_blocks(x) if blocking.on_host(xp_of(x)) else cuda.gelu_forward(x)
    return y, (x, t)


def gelu_backward(dy, cache):
    """The reference is `tinylora.layers.gelu_backward`."""
    x, t = cache
    if not blocking.on_host(xp_of(x)):
        return cuda.gelu_backward(dy, x, t)
    return blocking.gelu_grad_in_blocks(dy, x, t)


def mse_forward(pred, y, stack_ndim: int = 0):
    """The reference is `tinylora.layers.mse_forward`. One model: the sum of squares is one dot
    of the flat difference (no squared temporary); y's values are not read for finiteness: a
    finite loss proves them finite, and only a loss that is not finite has them looked at."""
    regression_target_shape(pred, y, stack_ndim)
    diff = pred - y  # [*S, ..., d_out]
    if stack_ndim:
        loss = (diff * diff).mean(axis=tuple(range(stack_ndim, diff.ndim)))
    else:
        flat = diff.reshape(-1)
        loss = (flat @ flat) / flat.size
    return finite_by_loss(loss, y, "mse: target y"), (diff, stack_ndim)
