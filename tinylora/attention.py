"""Causal multi-head self-attention, one small step per function, each backward beside its forward.

Abbreviations: N batch, T sequence, d = d_model, H = n_head, dh = d / H (the head size).

    forward                                    backward (read bottom-up)
    q, k, v = x Wq + bq, x Wk + bk, x Wv + bv  dx = dx_q + dx_k + dx_v   (x forks three ways)
    qh, kh, vh = split_heads(q, k, v)          dq, dk, dv = merge_heads(dqh, dkh, dvh)
    s  = qh kh^T / sqrt(dh)      (N,H,T,T)     dqh = ds kh / sqrt(dh), dkh = ds^T qh / sqrt(dh)
    s  = s + mask (-inf where u > t)           ds passes through (masked entries get 0)
    p  = softmax(s), last axis                 ds = p * (dp - sum_j dp_j p_j)
    yh = p vh                    (N,H,T,dh)    dp = dyh vh^T,  dvh = p^T dyh
    y  = merge_heads(yh)         (N,T,d)       dyh = split_heads(dy)
    out = y Wo + bo                            dy = dout Wo^T
Each projection adds its LoRA path, scale (x A) B, where it is a target. The key bias bk gets
exactly zero gradient: it adds q_t . bk to every score of row t, and softmax ignores that.

Heads are a reshape plus a transpose (a view, no copy) and every product is one batched ``@``
over (N, H): there is no Python loop over heads or positions.
"""

from __future__ import annotations

import math

from tinylora.backend import xp_of
from tinylora.fast.blocking import on_host, row_blocks, row_dot
from tinylora.projection import passes_none, proj_backward, proj_forward, trains

# --------------------------------------------------------------------------------------------
# Heads: (N, T, d) <-> (N, H, T, dh)


def split_heads(x, n_head: int):
    """(N, T, d) -> (N, H, T, dh): row t of head h is x[n, t, h*dh:(h+1)*dh]. A view, no copy."""
    *lead, T, d = x.shape
    return x.reshape(*lead, T, n_head, d // n_head).swapaxes(-2, -3)  # [N,T,H,dh] -> [N,H,T,dh]


def merge_heads(xh):
    """(N, H, T, dh) -> (N, T, H*dh): the inverse of `split_heads` (copies into contiguous rows)."""
    *lead, H, T, dh = xh.shape
    return xh.swapaxes(-2, -3).reshape(*lead, T, H * dh)  # [N,H,T,dh] -> [N,T,H,dh] -> [N,T,d]


# --------------------------------------------------------------------------------------------
# The steps inside the heads


def scores_forward(qh, kh):
    """s = qh kh^T / sqrt(dh): how well query t matches key u, per sequence and head."""
    c = 1.0 / math.sqrt(qh.shape[-1])
    s = qh @ kh.swapaxes(-1, -2)  # [N,H,T,dh] @ [N,H,dh,T] -> [N,H,T,T]
    s *= c
    return s, (qh, kh)


def scores_backward(ds, cache):
    """-> (dqh, dkh). s = c q k^T, so dq = c ds k and dk = c ds^T q."""
    qh, kh = cache
    c = 1.0 / math.sqrt(qh.shape[-1])
    dqh = ds @ kh  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]
    dqh *= c
    dkh = ds.swapaxes(-1, -2) @ qh  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]
    dkh *= c
    return dqh, dkh


def causal_bias(T: int, xp, dtype):
    """(T, T): 0 where key u <= query t, -inf where u > t (the future)."""
    pos = xp.arange(T)
    bias = xp.zeros((T, T), dtype=dtype)
    bias[pos[None, :] > pos[:, None]] = -math.inf  # [T, T]: row t = query, column u = key
    return bias


def causal_mask_forward(s):
    """Position t may only look at positions u <= t: add -inf to the scores above the diagonal,
    in place, so that softmax gives them probability exactly 0."""
    s += causal_bias(s.shape[-1], xp_of(s), s.dtype)  # [T, T] broadcast over (N, H)
    return s


def causal_mask_backward(ds):
    """The mask adds constants, so ds passes through. The masked entries already hold exactly 0:
    softmax_backward multiplies by p, which is 0 there. No gradient flows to the future."""
    return ds


def softmax_forward(s):
    """p = exp(s - max) / sum(exp(s - max)) over the last axis (rows sum to 1), in place on s.

    Subtracting each row's max changes nothing mathematically but keeps exp from overflowing.
    The diagonal is never masked, so every row's max is finite and exp(-inf) = 0 exactly.
    Written into s (the scores are not needed again): no (N, H, T, T) temporary.
    """
    xp = xp_of(s)
    s -= s.max(axis=-1, keepdims=True)  # [N,H,T,T], each row's max is now 0
    p = xp.exp(s, out=s)
    p *= 1.0 / p.sum(axis=-1, keepdims=True)  # one division per row, a product per entry
    return p


def masked_softmax_in_blocks(s, c: float = 1.0, bound: float = math.inf):
    """softmax_forward(causal_mask_forward(c s)), in place, a few (T, T) score matrices at a time.

    Fast paths: (1) the scale, the mask, the max, the shift, exp and the normalisation each make a
    pass over the whole (N, H, T, T) scores; per block of matrices (`tinylora.fast.blocking`) the
    passes after the first read a block still in cache; c > 0 scales after the shift (the row
    max of c s is c times that of s); the row sums are one BLAS product with a column of ones.
    (2) `bound` >= max |c s| (`score_bound`): where exp of +-bound neither overflows (summed over
    a row) nor underflows, the shift by the row max, which softmax does not see, is skipped (the
    max over rows of T is the slowest pass). Tests check both against the plain functions.
    """
    xp, T = xp_of(s), s.shape[-1]
    info = xp.finfo(s.dtype)
    shift = not bound < min(math.log(float(info.max)) - math.log(T), -math.log(float(info.tiny)))
    bias, ones = causal_bias(T, xp, s.dtype), xp.ones((T, 1), dtype=s.dtype)
    s3 = s.reshape(-1, T, T)  # [N*H, T, T], a view
    for mats in row_blocks(s3.shape[0], T * T, xp=xp):
        sb = s3[mats]
        sb += bias  # the mask
        if shift:
            sb -= sb.max(axis=-1, keepdims=True)
        sb *= c
        xp.exp(sb, out=sb)
        sb *= 1.0 / (sb @ ones)  # [k, T, T] @ [T, 1]: each row's sum
    return s


def score_bound(qh, kh, c: float) -> float:
    """An upper bound on every |c q_t . k_u|: c max_t |q_t| max_u |k_u| (Cauchy-Schwarz)."""
    return c * math.sqrt(float(row_dot(qh, qh).max()) * float(row_dot(kh, kh).max()))


def softmax_backward(dp, p):
    """ds = p * (dp - sum_j dp_j p_j): the softmax Jacobian diag(p) - p p^T applied to dp."""
    ds = dp - (dp * p).sum(axis=-1, keepdims=True)  # [N,H,T,T]
    ds *= p
    return ds


def softmax_backward_from_output(dp, p, dyh, yh):
    """ds = p * (dp - sum_j dp_j p_j), in place on dp, with the row sums from the output side.

    Fast path of `softmax_backward` (FlashAttention's identity): dp = dyh vh^T and yh = p vh, so
    sum_j dp_tj p_tj = sum_j p_tj (dyh_t . vh_j) = dyh_t . yh_t, a dot over dh numbers per row
    instead of a product and a sum over T, and no (N, H, T, T) temporary (a test checks it
    against `softmax_backward`).
    """
    rowdot = xp_of(dp).einsum("...i,...i->...", dyh, yh)[..., None]  # [N,H,T,1]: sum_j dp_j p_j
    dp -= rowdot
    dp *= p
    return dp


def weighted_sum_forward(p, vh):
    """yh = p vh: each position's output is its attention-weighted average of the values."""
    return p @ vh, (p, vh)  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]


def weighted_sum_backward(dyh, cache):
    """-> (dp, dvh): dp = dyh vh^T, dvh = p^T dyh."""
    p, vh = cache
    dp = dyh @ vh.swapaxes(-1, -2)  # [N,H,T,dh] @ [N,H,dh,T] -> [N,H,T,T]
    dvh = p.swapaxes(-1, -2) @ dyh  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]
    return dp, dvh


# --------------------------------------------------------------------------------------------
# The heads together: q, k, v -> y (no parameters)


def matmul_merged(a, b):
    """merge_heads(a @ b): (N, H, T, m) @ (N, H, m, dh) -> (N, T, H*dh).

    Fast path: BLAS writes each head's product straight into its columns of the (N, T, d) rows
    (the batched product with ``out=`` a strided view), so the merge costs no copy; the copy
    after a plain product doubles its time (docs/benchmarks.md; a test checks it against
    ``merge_heads(a @ b)``).
    """
    *lead, H, T, _ = a.shape
    dh, xp = b.shape[-1], xp_of(a)
    if not on_host(xp):  # CuPy: the plain product and merge (matmul's out= is NumPy's)
        return merge_heads(a @ b)
    out = xp.empty((*lead, T, H * dh), dtype=a.dtype)
    xp.matmul(a, b, out=split_heads(out, H))  # [N,H,T,m] @ [N,H,m,dh] -> [N,T,d] rows
    return out


def attend_forward(q, k, v, n_head: int):
    """q, k, v (N, T, d) -> y (N, T, d), and a cache whose middle entry is p (N, H, T, T).

    The steps above (scores_forward, causal_mask_forward, softmax_forward, weighted_sum_forward,
    merge_heads) with their fast paths: the scale, the mask and the softmax in one blocked pass
    (`masked_softmax_in_blocks`), the weighted sum written as merged rows (`matmul_merged`)."""
    qh, kh, vh = split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head)
    c = 1.0 / math.sqrt(qh.shape[-1])
    s = qh @ kh.swapaxes(-1, -2)  # [N,H,T,dh] @ [N,H,dh,T] -> [N,H,T,T], unscaled
    p = masked_softmax_in_blocks(s, c, score_bound(qh, kh, c))  # in place: p = softmax(c s)
    y = matmul_merged(p, vh)  # yh = p vh, written as merged rows [N,T,d]
    return y, ((qh, kh), p, (vh, y))


def attend_backward(dy, cache):
    """-> (dq, dk, dv), each (N, T, d): the forward's steps in reverse order.

    The same equations as `weighted_sum_backward`, `softmax_backward` and `scores_backward`,
    with their fast paths: heads merged by `matmul_merged`, the softmax's row sums by
    `softmax_backward_from_output`, the scale 1/sqrt(dh) applied once per merged result."""
    (qh, kh), p, (vh, y) = cache
    H = p.shape[-3]
    c = 1.0 / math.sqrt(qh.shape[-1])
    dyh = split_heads(dy, H)  # the backward of merge_heads
    dv = matmul_merged(p.swapaxes(-1, -2), dyh)  # dvh = p^T dyh   [N,T,d]
    dp = dyh @ vh.swapaxes(-1, -2)  # [N,H,T,dh] @ [N,H,dh,T] -> [N,H,T,T]
    ds = softmax_backward_from_output(dp, p, dyh, split_heads(y, H))
    ds = causal_mask_backward(ds)
    dq = matmul_merged(ds, kh)  # dqh = c ds kh
    dq *= c
    dk = matmul_merged(ds.swapaxes(-1, -2), qh)  # dkh = c ds^T qh
    dk *= c
    return dq, dk, dv  # merged: the backward of split_heads


# --------------------------------------------------------------------------------------------
# The layer: projections around the heads


def attention_forward(x, params: dict, name: str, n_head: int, scale: float, dropout=None):
    """Causal self-attention ``<name>.{q,k,v,o}`` (LoRA where the dict has ``.A``/``.B``).

    x (N, T, d) -> out (N, T, d). `scale` is the LoRA scale (unused without LoRA).
    """
    q, c_q = proj_forward(x, params, f"{name}.q", scale, dropout)  # [N,T,d] -> [N,T,d]
    k, c_k = proj_forward(x, params, f"{name}.k", scale, dropout)
    v, c_v = proj_forward(x, params, f"{name}.v", scale, dropout)
    y, c_att = attend_forward(q, k, v, n_head)
    out, c_o = proj_forward(y, params, f"{name}.o", scale, dropout)  # [N,T,d] -> [N,T,d]
    return out, (name, c_q, c_k, c_v, c_att, c_o)


@passes_none
def attention_backward(dout, cache, trainable, grads: dict, need_dx: bool = True):
    """Write the trainable gradients into `grads`; -> dx (N, T, d), or None when not needed.

    Without need_dx and with q, k, v frozen, nothing below the output projection is needed,
    and `passes_none` stops the backward there.
    """
    name, c_q, c_k, c_v, c_att, c_o = cache
    need_dy = need_dx or trains(trainable, f"{name}.q", f"{name}.k", f"{name}.v")
    dy = proj_backward(dout, c_o, trainable, grads, need_dx=need_dy)  # [N,T,d] -> [N,T,d]
    dq, dk, dv = _attend_backward_or_none(dy, c_att)
    dx_q = proj_backward(dq, c_q, trainable, grads, need_dx=need_dx)
    dx_k = proj_backward(dk, c_k, trainable, grads, need_dx=need_dx)
    dx_v = proj_backward(dv, c_v, trainable, grads, need_dx=need_dx)
    return dx_q + dx_k + dx_v if need_dx else None  # fork: x fed q, k and v; the paths sum


def _attend_backward_or_none(dy, cache):
    return (None, None, None) if dy is None else attend_backward(dy, cache)
