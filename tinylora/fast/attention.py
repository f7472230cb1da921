"""Fast twins of `tinylora.attention`'s heads (`attend_forward`, `attend_backward`): the same
equations with fewer passes over the (N, H, T, T) scores and no copies to merge heads. Tested
against the reference in `tests/test_fast_paths.py`; each part measured in `docs/benchmarks.md`.

    the scale, the mask and the softmax     one blocked pass (`masked_softmax_in_blocks`),
                                            in place, the row-max shift skipped where a bound
                                            shows exp cannot overflow (`score_bound`)
    heads merged                            by the products themselves (`matmul_merged`)
    the softmax backward's row sums         from the output side (`softmax_backward_from_output`)

On CuPy the scale, the mask and the softmax are one kernel (a block of threads per row, always
shifted by the row max: no bound is read on the host), and so is the softmax's backward with the
scale folded in (`tinylora.fast.cuda`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tinylora.attention import causal_bias, causal_mask_backward, merge_heads, split_heads
from tinylora.backend import xp_of
from tinylora.fast import cuda
from tinylora.fast.blocking import on_host, row_blocks, row_dot


def masked_softmax_in_blocks(s, c: float = 1.0, bound: float = math.inf):
    """softmax_forward(causal_mask_forward(c s)), in place, a few (T, T) score matrices at a time.

    (1) The scale, the mask, the max, the shift, exp and the normalisation each make a pass over
    the whole (N, H, T, T) scores; per block of matrices (`tinylora.fast.blocking`) the passes
    after the first read a block still in cache; c > 0 scales after the shift (the row max of c s
    is c times that of s); the row sums are one product with a column of ones. (2) `bound` >=
    max |c s| (`score_bound`): where exp of +-bound neither overflows (summed over a row) nor
    underflows, the shift by the row max, which softmax does not see, is skipped.
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


def softmax_backward_from_output(dp, p, dyh, yh):
    """ds = p * (dp - sum_j dp_j p_j), in place on dp, with the row sums from the output side
    (FlashAttention's identity): dp = dyh vh^T and yh = p vh, so sum_j dp_tj p_tj =
    sum_j p_tj (dyh_t . vh_j) = dyh_t . yh_t, a dot over dh numbers per row instead of a product
    and a sum over T, and no (N, H, T, T) temporary."""
    rowdot = xp_of(dp).einsum("...i,...i->...", dyh, yh)[..., None]  # [N,H,T,1]: sum_j dp_j p_j
    dp -= rowdot
    dp *= p
    return dp


def matmul_merged(a, b):
    """merge_heads(a @ b): (N, H, T, m) @ (N, H, m, dh) -> (N, T, H*dh). BLAS writes each
    head's product straight into its columns of the (N, T, d) rows (the batched product with
    ``out=`` a strided view), so the merge costs no copy. On CuPy: the plain product and merge."""
    *lead, H, T, _ = a.shape
    dh, xp = b.shape[-1], xp_of(a)
    if not on_host(xp):  # matmul's out= into a strided view is NumPy's
        return merge_heads(a @ b)
    out = xp.empty((*lead, T, H * dh), dtype=a.dtype)
    xp.matmul(a, b, out=split_heads(out, H))  # [N,H,T,m] @ [N,H,m,dh] -> [N,T,d] rows
    return out


class FusedAttendCache(NamedTuple):
    """What the fused `attend_backward` needs: the heads, the weights, and the output y."""

    qh: object
    kh: object
    vh: object
    p: object  # (N, H, T, T)
    y: object  # (N, T, d), merged rows of yh = p vh


def attend_forward(q, k, v, n_head: int):
    """The reference is `tinylora.attention.attend_forward`: the scale, the mask and the softmax
    in one blocked pass, the weighted sum written as merged rows."""
    qh, kh, vh = split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head)
    c = 1.0 / math.sqrt(qh.shape[-1])
    s = qh @ kh.swapaxes(-1, -2)  # [N,H,T,dh] @ [N,H,dh,T] -> [N,H,T,T], unscaled
    if on_host(xp_of(q)):
        p = masked_softmax_in_blocks(s, c, score_bound(qh, kh, c))  # in place: p = softmax(c s)
    else:
        p = cuda.masked_softmax(s, c)
    y = matmul_merged(p, vh)  # yh = p vh, written as merged rows [N,T,d]
    return y, FusedAttendCache(qh, kh, vh, p, y)


def attend_backward(dy, cache):
    """The reference is `tinylora.attention.attend_backward`: heads merged by `matmul_merged`,
    the softmax's row sums by `softmax_backward_from_output`, the scale 1/sqrt(dh) applied once
    per merged result."""
    qh, kh, vh, p, y = cache
    H = p.shape[-3]
    c = 1.0 / math.sqrt(qh.shape[-1])
    dyh = split_heads(dy, H)  # the backward of merge_heads
    dv = matmul_merged(p.swapaxes(-1, -2), dyh)  # dvh = p^T dyh   [N,T,d]
    dp = dyh @ vh.swapaxes(-1, -2)  # [N,H,T,dh] @ [N,H,dh,T] -> [N,H,T,T]
    if not on_host(xp_of(dy)):  # the softmax's, the mask's and the scale's backward: one kernel
        ds = cuda.masked_softmax_backward(dp, p, c)
        return matmul_merged(ds, kh), matmul_merged(ds.swapaxes(-1, -2), qh), dv
    ds = causal_mask_backward(softmax_backward_from_output(dp, p, dyh, split_heads(y, H)))
    dq = matmul_merged(ds, kh)  # dqh = c ds kh
    dq *= c
    dk = matmul_merged(ds.swapaxes(-1, -2), qh)  # dkh = c ds^T qh
    dk *= c
    return dq, dk, dv  # merged: the backward of split_heads
