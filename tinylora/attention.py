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
from typing import NamedTuple

from tinylora.backend import xp_of
from tinylora.projection import passes_none, proj_backward, proj_forward, trains
from tinylora.twins import has_fast_twin

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
    return c * (qh @ kh.swapaxes(-1, -2)), (qh, kh)  # [N,H,T,dh] @ [N,H,dh,T] -> [N,H,T,T]


def scores_backward(ds, cache):
    """-> (dqh, dkh). s = c q k^T, so dq = c ds k and dk = c ds^T q."""
    qh, kh = cache
    c = 1.0 / math.sqrt(qh.shape[-1])
    dqh = c * (ds @ kh)  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]
    dkh = c * (ds.swapaxes(-1, -2) @ qh)  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]
    return dqh, dkh


def causal_bias(T: int, xp, dtype):
    """(T, T): 0 where key u <= query t, -inf where u > t (the future)."""
    pos = xp.arange(T)
    bias = xp.zeros((T, T), dtype=dtype)
    bias[pos[None, :] > pos[:, None]] = -math.inf  # [T, T]: row t = query, column u = key
    return bias


def causal_mask_forward(s):
    """Position t may only look at positions u <= t: add -inf to the scores above the diagonal,
    so that softmax gives them probability exactly 0."""
    return s + causal_bias(s.shape[-1], xp_of(s), s.dtype)  # [T, T] broadcast over (N, H)


def causal_mask_backward(ds):
    """The mask adds constants, so ds passes through. The masked entries already hold exactly 0:
    softmax_backward multiplies by p, which is 0 there. No gradient flows to the future."""
    return ds


def softmax_forward(s):
    """p = exp(s - max) / sum(exp(s - max)) over the last axis (rows sum to 1).

    Subtracting each row's max changes nothing mathematically but keeps exp from overflowing.
    The diagonal is never masked, so every row's max is finite and exp(-inf) = 0 exactly.
    """
    e = xp_of(s).exp(s - s.max(axis=-1, keepdims=True))  # [N,H,T,T], each row's max is 1
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dp, p):
    """ds = p * (dp - sum_j dp_j p_j): the softmax Jacobian diag(p) - p p^T applied to dp."""
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))  # [N,H,T,T]


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


class AttendCache(NamedTuple):
    """What `attend_backward` needs: the heads and the attention weights."""

    qh: object  # (N, H, T, dh)
    kh: object
    vh: object
    p: object  # (N, H, T, T), softmax of the masked scores


@has_fast_twin
def attend_forward(q, k, v, n_head: int):
    """q, k, v (N, T, d) -> y (N, T, d): the steps above, in order."""
    qh, kh, vh = split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head)
    s, _ = scores_forward(qh, kh)  # [N,H,T,T]
    p = softmax_forward(causal_mask_forward(s))  # [N,H,T,T]
    yh, _ = weighted_sum_forward(p, vh)  # [N,H,T,dh]
    return merge_heads(yh), AttendCache(qh, kh, vh, p)  # [N,T,d]


@has_fast_twin
def attend_backward(dy, cache):
    """-> (dq, dk, dv), each (N, T, d): the forward's steps in reverse order."""
    qh, kh, vh, p = cache
    dyh = split_heads(dy, p.shape[-3])  # the backward of merge_heads
    dp, dvh = weighted_sum_backward(dyh, (p, vh))
    ds = causal_mask_backward(softmax_backward(dp, p))
    dqh, dkh = scores_backward(ds, (qh, kh))
    return merge_heads(dqh), merge_heads(dkh), merge_heads(dvh)  # the backward of split_heads


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
    dq, dk, dv = (None, None, None) if dy is None else attend_backward(dy, c_att)
    dx_q = proj_backward(dq, c_q, trainable, grads, need_dx=need_dx)
    dx_k = proj_backward(dk, c_k, trainable, grads, need_dx=need_dx)
    dx_v = proj_backward(dv, c_v, trainable, grads, need_dx=need_dx)
    return dx_q + dx_k + dx_v if need_dx else None  # fork: x fed q, k and v; the paths sum
