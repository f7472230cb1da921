"""CUDA kernels for the fast twins on CuPy: one launch where the NumPy form makes several passes.

On a GPU a training step of tinylora's sizes is bound by kernel launches (each NumPy-style
operator is one) and by reads on the host, not by arithmetic (`docs/gpu.md`). The twins in
`tinylora.fast` call these kernels when their arrays are CuPy arrays; the NumPy path never does.
Each is tested against its reference in `tests/test_cuda_kernels.py` (marked `gpu`).

    count_nonfinite(x)            the number of NaN/inf values, on the device (no read)
    adam(...), sgd(...)           one parameter's whole update, gated by the optimizer's status
    gelu_forward / _backward      the tanh-form gelu and its derivative
    layernorm_forward / _backward one block of threads per row: mean, variance, normalise
    masked_softmax / _backward    the scale, the causal mask and the softmax, one block per row
    gemm(a, b, out, alpha, beta)  out = alpha a b + beta out (cuBLAS): the LoRA sum y += s u B

Nothing here imports CuPy until a kernel is first used (`tinylora.backend` does, on request),
so the module imports on a machine without a GPU. Kernels are compiled once, on first use.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tinylora import backend

GELU_C, GELU_K = math.sqrt(2.0 / math.pi), 0.044715  # as in tinylora.layers
THREADS = 256  # threads per block of the row kernels (a power of two: the tree reductions)


def _cupy():
    return backend.get_xp("cupy")


@functools.cache
def _elementwise(name: str):
    cp = _cupy()
    if name == "count_nonfinite":
        return cp.ReductionKernel("T x", "int64 n", "isfinite(x) ? 0 : 1", "a + b", "n = a",
                                  "0", "tinylora_count_nonfinite")
    in_params, out_params, code = ELEMENTWISE[name]
    return cp.ElementwiseKernel(in_params, out_params, code, f"tinylora_{name}")


# The update kernels run only while status[0] == 0: the optimizer's status says no step has been
# refused since the host last read it (`tinylora.fast.optim.Gate`). Nothing is written otherwise.
ELEMENTWISE = {
    "adam": ("T g, T lr, T beta1, T beta2, T c1, T c2, T eps, T wd, bool decoupled, "
             "raw int64 status", "T p, T m, T v", """
        if (status[0] == 0) {
            T gi = g;
            if (decoupled) { p -= lr * wd * p; } else { gi += wd * p; }  // AdamW / Adam's L2
            m = beta1 * m + ((T)1 - beta1) * gi;
            v = beta2 * v + ((T)1 - beta2) * gi * gi;
            p -= lr * c1 * m / (sqrt(v) * c2 + eps);  // c1 = 1/(1-b1^t), c2 = 1/sqrt(1-b2^t)
        }"""),
    "sgd_momentum": ("T g, T lr, T wd, T momentum, bool first, raw int64 status", "T p, T buf", """
        if (status[0] == 0) {
            T gi = g + wd * p;
            buf = first ? gi : momentum * buf + gi;
            p -= lr * buf;
        }"""),
    "sgd": ("T g, T lr, T wd, raw int64 status", "T p", """
        if (status[0] == 0) { p -= lr * (g + wd * p); }"""),
    "gelu_forward": ("T x", "T y, T t", f"""
        t = tanh(x * ((T){GELU_C!r} + (T){GELU_C * GELU_K!r} * x * x));
        y = (T)0.5 * x * ((T)1 + t);"""),
    "gelu_backward": ("T dy, T x, T t", "T dx", f"""
        T du = (T){GELU_C!r} + (T){3.0 * GELU_C * GELU_K!r} * x * x;
        dx = (T)0.5 * dy * ((T)1 + t + x * ((T)1 - t * t) * du);"""),
}

ROWS = r"""
template<typename F> __device__ F block_sum(F v, F* buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    F out = buf[0];
    __syncthreads();
    return out;
}
template<typename F> __device__ F block_max(F v, F* buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s && buf[threadIdx.x + s] > buf[threadIdx.x])
            buf[threadIdx.x] = buf[threadIdx.x + s];
        __syncthreads();
    }
    F out = buf[0];
    __syncthreads();
    return out;
}
// one block per row of x (rows, d): y = (x - mean) rstd g + b
template<typename F> __global__ void layernorm_fwd(const F* x, const F* g, const F* b, F* y,
                                                   F* xhat, F* rstd, int d, double eps) {
    __shared__ F buf[256];
    size_t at = (size_t)blockIdx.x * d;
    F s = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += x[at + j];
    F mean = block_sum(s, buf) / (F)d;
    F q = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) { F c = x[at + j] - mean; q += c * c; }
    F r = (F)1 / sqrt(block_sum(q, buf) / (F)d + (F)eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        F h = (x[at + j] - mean) * r;
        xhat[at + j] = h;
        y[at + j] = h * g[j] + b[j];
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}
// dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy g
template<typename F> __global__ void layernorm_bwd(const F* dy, const F* xhat, const F* rstd,
                                                   const F* g, F* dx, int d) {
    __shared__ F buf[256];
    size_t at = (size_t)blockIdx.x * d;
    F s1 = 0, s2 = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        F dh = dy[at + j] * g[j];
        s1 += dh;
        s2 += dh * xhat[at + j];
    }
    F m1 = block_sum(s1, buf) / (F)d, m2 = block_sum(s2, buf) / (F)d, r = rstd[blockIdx.x];
    for (int j = threadIdx.x; j < d; j += blockDim.x)
        dx[at + j] = r * (dy[at + j] * g[j] - m1 - xhat[at + j] * m2);
}
// one block per row of the scores (N H T, T); row t may see keys u <= t. In place:
// p = exp(c (s - max s)) / sum, 0 where u > t (the row max of c s is c max s for c > 0)
template<typename F> __global__ void masked_softmax(F* s, int T, double c) {
    __shared__ F buf[256];
    size_t at = (size_t)blockIdx.x * T;
    int t = blockIdx.x % T;
    F mx = s[at];  // u = 0 is never masked
    for (int u = threadIdx.x; u <= t; u += blockDim.x) mx = s[at + u] > mx ? s[at + u] : mx;
    mx = block_max(mx, buf);
    F sum = 0;
    for (int u = threadIdx.x; u <= t; u += blockDim.x) {
        F e = exp((F)c * (s[at + u] - mx));
        s[at + u] = e;
        sum += e;
    }
    F inv = (F)1 / block_sum(sum, buf);
    for (int u = threadIdx.x; u < T; u += blockDim.x) s[at + u] = u <= t ? s[at + u] * inv : (F)0;
}
// in place on dp: ds = c p (dp - sum_u dp_u p_u), 0 where u > t (c: the scores' scale)
template<typename F> __global__ void masked_softmax_bwd(F* dp, const F* p, int T, double c) {
    __shared__ F buf[256];
    size_t at = (size_t)blockIdx.x * T;
    int t = blockIdx.x % T;
    F s = 0;
    for (int u = threadIdx.x; u <= t; u += blockDim.x) s += dp[at + u] * p[at + u];
    s = block_sum(s, buf);
    for (int u = threadIdx.x; u < T; u += blockDim.x)
        dp[at + u] = u <= t ? (F)c * p[at + u] * (dp[at + u] - s) : (F)0;
}
"""
ROW_KERNELS = ("layernorm_fwd", "layernorm_bwd", "masked_softmax", "masked_softmax_bwd")


@functools.cache
def _row_kernel(name: str, dtype: str):
    """`name` of ROWS for float or double (one module, compiled on first use)."""
    return _rows_module().get_function(f"{name}<{'float' if dtype == 'float32' else 'double'}>")


@functools.cache
def _rows_module():
    names = [f"{k}<{t}>" for k in ROW_KERNELS for t in ("float", "double")]
    return _cupy().RawModule(code=ROWS, options=("-std=c++14",), name_expressions=names)


def _scalar(p, value):
    """A Python number as a NumPy scalar of p's dtype (a kernel's `T` argument)."""
    return value if hasattr(value, "shape") else p.dtype.type(value)


# --------------------------------------------------------------------------------------------
# The optimizer's pieces


def count_nonfinite(x, out=None):
    """The number of NaN or inf values of `x`, a 0-d int64 device array (one launch, no read)."""
    return _elementwise("count_nonfinite")(x, out=out)


def adam(p, g, m, v, lr, beta1, beta2, eps, t, wd, decoupled, status) -> None:
    """One Adam (AdamW: `decoupled`) step of p, m, v in place, as `tinylora.optim.Adam._update`
    and `adam_update` write it, in one launch; nothing is written unless status[0] == 0."""
    c1, c2 = 1.0 / (1.0 - beta1**t), 1.0 / math.sqrt(1.0 - beta2**t)
    f = functools.partial(_scalar, p)
    _elementwise("adam")(g, f(lr), f(beta1), f(beta2), f(c1), f(c2), f(eps), f(wd),
                         np.bool_(decoupled), status, p, m, v)


def sgd(p, g, buf, lr, wd, momentum, first, status) -> None:
    """One SGD step of p (and of its momentum buffer `buf`, None without momentum) in place, as
    `tinylora.optim.SGD._update` writes it; nothing is written unless status[0] == 0."""
    f = functools.partial(_scalar, p)
    if buf is None:
        _elementwise("sgd")(g, f(lr), f(wd), status, p)
    else:
        _elementwise("sgd_momentum")(g, f(lr), f(wd), f(momentum), np.bool_(first), status, p,
                                     buf)


# --------------------------------------------------------------------------------------------
# The layers' pieces


def gelu_forward(x):
    """-> (y, t): y = x/2 (1 + t), t = tanh(sqrt(2/pi) (x + 0.044715 x^3)), one launch."""
    return _elementwise("gelu_forward")(x)


def gelu_backward(dy, x, t):
    """-> dx = dy gelu'(x), from the forward's t, one launch."""
    return _elementwise("gelu_backward")(dy, x, t)


def _rows(name, a, n_rows, args, threads=THREADS):
    _row_kernel(name, a.dtype.name)((n_rows,), (threads,), args)


def layernorm_forward(x, g, b, eps: float):
    """-> (y, xhat, rstd (..., 1)): one block of threads per row of x (..., d)."""
    cp = _cupy()
    x = cp.ascontiguousarray(x)
    d, rows = x.shape[-1], x.size // x.shape[-1]
    y, xhat = cp.empty_like(x), cp.empty_like(x)
    rstd = cp.empty((*x.shape[:-1], 1), dtype=x.dtype)
    _rows("layernorm_fwd", x, rows, (x, cp.ascontiguousarray(g), cp.ascontiguousarray(b), y,
                                     xhat, rstd, np.int32(d), np.float64(eps)))
    return y, xhat, rstd


def layernorm_backward(dy, xhat, rstd, g):
    """-> dx (the dg and db column sums are the caller's: plain reductions)."""
    cp = _cupy()
    dy = cp.ascontiguousarray(dy)
    dx = cp.empty_like(dy)
    d = dy.shape[-1]
    _rows("layernorm_bwd", dy, dy.size // d, (dy, xhat, rstd, cp.ascontiguousarray(g), dx,
                                              np.int32(d)))
    return dx


def _score_threads(T: int) -> int:
    return min(THREADS, 1 << max(5, (T - 1).bit_length()))  # a power of two >= T, 32..256


def masked_softmax(s, c: float):
    """softmax(causal_mask(c s)) over the last axis of the contiguous scores s (..., T, T), in
    place; -> s."""
    s, T = _cupy().ascontiguousarray(s), s.shape[-1]
    _rows("masked_softmax", s, s.size // T, (s, np.int32(T), np.float64(c)), _score_threads(T))
    return s


def masked_softmax_backward(dp, p, c: float):
    """ds = c p (dp - sum_u dp_u p_u) (0 where masked), in place on the contiguous dp; -> ds:
    the softmax's backward, the mask's and the scale c's (dq = ds kh, dk = ds^T qh)."""
    cp, T = _cupy(), dp.shape[-1]
    dp = cp.ascontiguousarray(dp)
    _rows("masked_softmax_bwd", dp, dp.size // T, (dp, cp.ascontiguousarray(p), np.int32(T),
                                                   np.float64(c)), _score_threads(T))
    return dp


def gemm(a, b, out=None, alpha: float = 1.0, beta: float = 0.0, trans_a: bool = False,
         trans_b: bool = False):
    """out = alpha op(a) op(b) + beta out (op: transposed where asked), one cuBLAS call for
    2-D arrays: the sum of two products (y = x W, then y += scale z_a B) with no temporary."""
    from cupy import cublas  # noqa: PLC0415 (CuPy's module; imported with CuPy only)

    return cublas.gemm("T" if trans_a else "N", "T" if trans_b else "N", a, b, out=out,
                       alpha=alpha, beta=beta)
