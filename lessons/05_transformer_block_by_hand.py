# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 5: A Transformer block by hand
#
# **Goal.** Derive the two new backward passes a Transformer needs, layer norm and causal
# self-attention, one small step at a time, checking each step against finite differences. Then
# put LoRA on the attention's four projections `q, k, v, o`, check the whole pre-LN block, and
# run a *coordinate check*: how big are the LoRA updates `delta1` (A moved) and `delta2` (B moved)
# as the width grows, with one shared learning rate and with the width-scaled rates
# `eta_A ~ 1/n`, `eta_B ~ 1` (so `lambda = eta_B / eta_A` grows like `n`: the paper's law,
# `docs/paper.md`)? Notation: the card in `lessons/README.md`.
#
# With `TINYLORA_FAST=1` (what the tests use) the experiment is smaller; the last cell prints
# how long the lesson took.

# %%
# Run alone (Colab, a downloaded notebook)? This cell installs what the lesson needs and is
# missing; in a checkout with `pip install -e '.[lessons]'` it installs nothing.
import importlib.util
import os
import subprocess
import sys

TINYLORA = os.environ.get("TINYLORA_PIP", "")  # where pip finds tinylora: your copy's folder,
# a wheel, or "git+https://..." of the repository (tinylora is not on PyPI)
missing = [pip_name for module, pip_name in (("numpy", "numpy"), ("matplotlib", "matplotlib"),
                                             ("tinylora", TINYLORA))
           if importlib.util.find_spec(module) is None]
if "" in missing:
    raise ModuleNotFoundError("tinylora is not installed: set TINYLORA_PIP (or the line above) "
                              "to where pip finds it, e.g. the folder of the repository")
if missing:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)

# %%
import math
import os
import time

import matplotlib.pyplot as plt
import numpy as np  # a lesson is user code: it may use NumPy directly (the library may not)

from tinylora import attention, layers
from tinylora.block import BlockConfig, TransformerBlock
from tinylora.gradcheck import check, numerical_grad, randomize_lora, rel_error
from tinylora.lab import coordcheck
from tinylora.lab.deltas import deltas
from tinylora.lab.fit import loglog_slope
from tinylora.lessons import pictures  # boxes and arrows for the diagrams
from tinylora.lessons.exercises import Exercises  # the checker of every exercise
from tinylora.lora import LoRAConfig
from tinylora.norms import EPS, layernorm_backward, layernorm_forward
from tinylora.optim import Adam
from tinylora.projection import proj_forward
from tinylora.train import loss_and_grads

T0 = time.perf_counter()
FAST = os.environ.get("TINYLORA_FAST") == "1"
rng = np.random.default_rng(0)  # every random number in this lesson comes from this seed
ex = Exercises("05_transformer_block_by_hand")
TOL = 1e-7  # relative error of a float64 finite-difference check (lesson 1)

N, T, d, H = 2, 4, 8, 2  # sequences, positions, model width, heads
dh = d // H  # head size
print(f"N = {N} sequences of T = {T} positions, width d = {d}, H = {H} heads of size {dh}")


def fd_check(name, analytic, loss, array, tol=TOL):
    """Print and assert one finite-difference check: `loss()` reads `array` (nudged in place)."""
    err = rel_error(analytic, numerical_grad(loss, array))
    print(f"{name:>28}: relative error {err:.1e}")
    assert analytic.shape == array.shape and err < tol, name
    return err


# %% [markdown]
# ## 1. Layer norm
#
# Each row (one position of one sequence) is normalised over its `d` features, then scaled by
# `g` and shifted by `b`. With every quantity's shape:
#
# | step | formula | shape |
# |---|---|---|
# | mean | `mu = mean_j x_j` | `(N, T, 1)` |
# | centred | `xc = x - mu` | `(N, T, d)` |
# | variance | `var = mean_j xc_j^2` | `(N, T, 1)` |
# | inverse std | `rstd = (var + eps)^(-1/2)` | `(N, T, 1)` |
# | normalised | `xhat = xc * rstd` | `(N, T, d)` |
# | output | `y = xhat * g + b` | `(N, T, d)`, `g, b` `(d,)` |
#
# `x` reaches `y` three ways: directly (through `xc`), through the mean, and through the
# variance. Backward goes through the table bottom-up, one line per step, with the fake loss
# `L = sum(y * gy)` of lesson 1 (so `dy = gy`). Each intermediate is checked by writing the loss
# as a function of that intermediate.

# %%
x = 3.0 + 2.0 * rng.standard_normal((N, T, d))  # rows far from mean 0, variance 1 on purpose
g_ln = 1.0 + 0.3 * rng.standard_normal(d)  # a gain away from 1 (g = 1 would hide bugs)
b_ln = rng.standard_normal(d)
gy = rng.standard_normal((N, T, d))
dy = gy


def ln_by_steps(x):
    """The table above, line by line (the library's layernorm_forward folds it up)."""
    mu = x.mean(axis=-1, keepdims=True)  # [N, T, 1]
    xc = x - mu  # [N, T, d]
    var = (xc * xc).mean(axis=-1, keepdims=True)  # [N, T, 1]
    rstd = (var + EPS) ** -0.5  # [N, T, 1]
    return xc, var, rstd


xc, var, rstd = ln_by_steps(x)
xhat = xc * rstd
y_ln = xhat * g_ln + b_ln
y_lib, ln_cache = layernorm_forward(x, g_ln, b_ln)
assert np.allclose(y_ln, y_lib, rtol=0, atol=1e-12)
print(f"row means of xhat: max |.| = {np.abs(xhat.mean(-1)).max():.1e};  "
      f"row variances: {xhat.var(-1).min():.6f} .. {xhat.var(-1).max():.6f}")

# %% [markdown]
# **Step 1: `dg`, `db`, `dxhat`.** `y = xhat * g + b` is elementwise per row, and `g`, `b` are
# shared by all `N T` rows, so their gradients sum over rows:
# `dg = sum_rows dy * xhat`, `db = sum_rows dy` (both `(d,)`), and `dxhat = dy * g` `(N, T, d)`.

# %%
dg = (dy * xhat).sum(axis=(0, 1))  # [d]
db = dy.sum(axis=(0, 1))  # [d]
dxhat = dy * g_ln  # [N, T, d]
fd_check("dg", dg, lambda: float(((xhat * g_ln + b_ln) * gy).sum()), g_ln)
fd_check("db", db, lambda: float(((xhat * g_ln + b_ln) * gy).sum()), b_ln)
_ = fd_check("dxhat", dxhat, lambda: float(((xhat * g_ln + b_ln) * gy).sum()), xhat)

# %% [markdown]
# **Step 2: `drstd` and the direct path to `xc`.** `xhat = xc * rstd`, with `rstd` broadcast over
# the row: `drstd = sum_j dxhat_j xc_j` `(N, T, 1)` (a broadcast forward is a sum backward), and
# the first of two contributions to `dxc` is `dxhat * rstd`.

# %%
drstd = (dxhat * xc).sum(axis=-1, keepdims=True)  # [N, T, 1]
dxc_direct = dxhat * rstd  # [N, T, d]


def L_of_xc_rstd():  # xc and rstd as independent inputs (the variance path cut)
    return float(((xc * rstd * g_ln + b_ln) * gy).sum())


fd_check("drstd", drstd, L_of_xc_rstd, rstd)
_ = fd_check("dxc (direct path only)", dxc_direct, L_of_xc_rstd, xc)

# %% [markdown]
# **Step 3: `dvar`.** `rstd = (var + eps)^(-1/2)`, so `d rstd / d var = -1/2 (var + eps)^(-3/2)
# = -rstd^3 / 2`, and `dvar = -drstd * rstd^3 / 2` `(N, T, 1)`.

# %%
dvar = -0.5 * drstd * rstd**3  # [N, T, 1]


def L_of_xc_var():  # xc and var as independent inputs
    return float(((xc * (var + EPS) ** -0.5 * g_ln + b_ln) * gy).sum())


_ = fd_check("dvar", dvar, L_of_xc_var, var)

# %% [markdown]
# **Step 4: `dxc`, two paths summed.** `var = mean_j xc_j^2` gives `d var / d xc_j = 2 xc_j / d`:
# `dxc = dxhat * rstd + dvar * 2 xc / d`. Now the loss is a function of `xc` alone (its variance
# recomputed from it). Without the second term the check fails: that is the variance path.

# %%
dxc = dxc_direct + dvar * 2.0 * xc / d  # [N, T, d]  fork: direct path + variance path


def L_of_xc():
    v = (xc * xc).mean(axis=-1, keepdims=True)
    return float(((xc * (v + EPS) ** -0.5 * g_ln + b_ln) * gy).sum())


fd_check("dxc (both paths)", dxc, L_of_xc, xc)
err_direct_only = rel_error(dxc_direct, numerical_grad(L_of_xc, xc))
print(f"{'dxc without the variance path':>28}: relative error {err_direct_only:.1e}  (the bug)")
assert err_direct_only > 1e-3

# %% [markdown]
# **Step 5: `dx`.** `xc = x - mean(x)`: `x_j` reaches `xc_j` directly (gradient `dxc_j`) and
# every `xc_i` through the mean (gradient `-1/d` each), so `dx = dxc - mean_j dxc_j`.

# %%
dx_ln = dxc - dxc.mean(axis=-1, keepdims=True)  # [N, T, d]  fork: direct path + mean path


def L_ln():
    return float((layernorm_forward(x, g_ln, b_ln)[0] * gy).sum())


_ = fd_check("dx", dx_ln, L_ln, x)

# %% [markdown]
# **The closed form.** Substituting steps 2-4 into step 5 (with `xhat = xc * rstd`) folds
# everything into one line, which is what `tinylora.norms.layernorm_backward` computes:
#
# `dx = rstd * (dxhat - mean_j(dxhat) - xhat * mean_j(dxhat * xhat))`
#
# And a check that needs no finite differences: adding a constant to a row does not change its
# layer norm, so the gradient cannot point along `(1, ..., 1)`: every row of `dx` sums to 0.

# %%
dx_lib, dg_lib, db_lib = layernorm_backward(dy, ln_cache, need_dg=True, need_db=True)
for name, ours, lib in (("dx", dx_ln, dx_lib), ("dg", dg, dg_lib), ("db", db, db_lib)):
    print(f"{name}: max |steps - library closed form| = {np.abs(ours - lib).max():.1e}")
    assert np.allclose(ours, lib, rtol=0, atol=1e-12)
print(f"row sums of dx: max |.| = {np.abs(dx_lib.sum(axis=-1)).max():.1e}")
assert np.abs(dx_lib.sum(axis=-1)).max() < 1e-12

# %% [markdown]
# ## 2. Causal self-attention, one step at a time
#
# `q, k, v` are `(N, T, d)` (the projections come in part 3). With `H` heads of size
# `dh = d / H` and `c = 1 / sqrt(dh)` (`tinylora.attention`):
#
# | step | forward | shape | backward |
# |---|---|---|---|
# | heads | `qh = split_heads(q)` (a reshape) | `(N, H, T, dh)` | `dq = merge_heads(dqh)` |
# | scores | `s = c qh kh^T` | `(N, H, T, T)` | `dqh = c ds kh`, `dkh = c ds^T qh` |
# | mask | `s[t, u] = -inf` for `u > t` | `(N, H, T, T)` | `ds` passes through |
# | softmax | `p = softmax(s)` over `u` | `(N, H, T, T)` | `ds = p * (dp - sum_u dp_u p_u)` |
# | mix | `yh = p vh` | `(N, H, T, dh)` | `dp = dyh vh^T`, `dvh = p^T dyh` |
# | merge | `y = merge_heads(yh)` | `(N, T, d)` | `dyh = split_heads(dy)` |
#
# We take each forward step from the library and derive and check its backward.

# %%
q, k, v = (rng.standard_normal((N, T, d)) for _ in range(3))
qh, kh, vh = (attention.split_heads(a, H) for a in (q, k, v))
assert np.array_equal(attention.merge_heads(qh), q)  # merge undoes split
assert np.array_equal(qh[1, 1, 2], q[1, 2, dh:2 * dh])  # head 1 of position 2 = features dh..2dh
print(f"q {q.shape} -> qh {qh.shape}; head h of position t is q[n, t, h*dh:(h+1)*dh]")
assert np.shares_memory(qh, q) and not qh.flags.c_contiguous  # a strided view, no copy
# numerical_grad nudges its array entry by entry through `x[index]`, so it works on such a view
# too (a flat reshape would have been a copy, nudging nothing). The checks below still use
# contiguous copies of the heads, so that nudging qh does not also move q.
qh, kh, vh = (np.ascontiguousarray(a) for a in (qh, kh, vh))

# %% [markdown]
# **Scores.** `s = c qh kh^T` with `c = 1 / sqrt(dh)`: a matrix product per `(n, h)`, so
# (lesson 1's rule for `x W`) `dqh = c ds kh` and `dkh = c ds^T qh`.

# %%
gs = rng.standard_normal((N, H, T, T))  # fake upstream gradient of the scores
c = 1.0 / math.sqrt(dh)
dqh_ours = c * gs @ kh  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]
dkh_ours = c * gs.swapaxes(-1, -2) @ qh  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]


def L_scores():
    return float((attention.scores_forward(qh, kh)[0] * gs).sum())


fd_check("scores: dqh", dqh_ours, L_scores, qh)
fd_check("scores: dkh", dkh_ours, L_scores, kh)
dqh_lib, dkh_lib = attention.scores_backward(gs, attention.scores_forward(qh, kh)[1])
assert np.allclose(dqh_ours, dqh_lib, atol=1e-12) and np.allclose(dkh_ours, dkh_lib, atol=1e-12)

# %% [markdown]
# **Softmax.** For one row, `p_u = exp(s_u) / sum_w exp(s_w)` has the Jacobian
# `dp_u / ds_w = p_u (delta_uw - p_w)`, i.e. `J = diag(p) - p p^T` (`T x T`, symmetric). So
# `ds = J dp = p * dp - p (p . dp)`: never build `J`, one elementwise line does it. First we
# build `J` for one row anyway and check the line against it, then against finite differences.

# %%
s = rng.standard_normal((N, H, T, T))
gp = rng.standard_normal((N, H, T, T))
p = attention.softmax_forward(s.copy())
ds_ours = p * (gp - (gp * p).sum(axis=-1, keepdims=True))  # [N, H, T, T]

row_p, row_dp = p[0, 0, 0], gp[0, 0, 0]
J = np.diag(row_p) - np.outer(row_p, row_p)  # [T, T]
assert np.allclose(J @ row_dp, ds_ours[0, 0, 0], atol=1e-14)
print(f"one row: |J dp - elementwise formula| = {np.abs(J @ row_dp - ds_ours[0, 0, 0]).max():.1e}")
fd_check("softmax: ds", ds_ours, lambda: float((attention.softmax_forward(s.copy()) * gp).sum()),
         s)
assert np.allclose(ds_ours, attention.softmax_backward(gp, p), atol=1e-14)
print(f"rows of ds sum to 0 (softmax ignores a shift): max |.| = "
      f"{np.abs(ds_ours.sum(axis=-1)).max():.1e}")

# %% [markdown]
# **The causal mask.** Adding `-inf` above the diagonal makes those probabilities exactly 0
# (`exp(-inf) = 0`), and the mask is a constant, so `ds` passes through unchanged. Because
# `ds = p * (...)`, the masked entries get gradient exactly 0 too: nothing flows to the future.

# %%
p_masked = attention.softmax_forward(attention.causal_mask_forward(s.copy()))
future = np.triu(np.ones((T, T), dtype=bool), k=1)  # [T, T] True where key u > query t
ds_masked = attention.softmax_backward(gp, p_masked)
print("row t of p (sequence 0, head 0):\n", np.round(p_masked[0, 0], 3))
assert np.all(p_masked[..., future] == 0) and np.all(ds_masked[..., future] == 0)
assert np.allclose(p_masked.sum(axis=-1), 1.0)
fd_check("masked softmax: ds", ds_masked,
         lambda: float((attention.softmax_forward(attention.causal_mask_forward(s.copy()))
                        * gp).sum()), s)

# %% [markdown]
# **Mixing the values.** `yh = p vh` is once more a matrix product: `dp = dyh vh^T`,
# `dvh = p^T dyh`.

# %%
gyh = rng.standard_normal((N, H, T, dh))
dp_ours = gyh @ vh.swapaxes(-1, -2)  # [N,H,T,dh] @ [N,H,dh,T] -> [N,H,T,T]
dvh_ours = p_masked.swapaxes(-1, -2) @ gyh  # [N,H,T,T] @ [N,H,T,dh] -> [N,H,T,dh]


def L_mix():
    return float((attention.weighted_sum_forward(p_masked, vh)[0] * gyh).sum())


fd_check("mix: dp", dp_ours, L_mix, p_masked)
_ = fd_check("mix: dvh", dvh_ours, L_mix, vh)

# %% [markdown]
# **All steps chained.** Our backward, bottom-up through the table, from the upstream `dy`
# `(N, T, d)` to `dq, dk, dv`; checked by finite differences and against
# `attention.attend_backward`.

# %%
def attend_backward_ours(dy, q, k, v):
    """The table's backward column, read bottom-up (forward recomputed with library steps)."""
    qh, kh, vh = (attention.split_heads(a, H) for a in (q, k, v))
    s, _ = attention.scores_forward(qh, kh)
    p = attention.softmax_forward(attention.causal_mask_forward(s))
    dyh = attention.split_heads(dy, H)  # merge's backward
    dp, dvh = dyh @ vh.swapaxes(-1, -2), p.swapaxes(-1, -2) @ dyh  # mix
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))  # softmax (mask: pass through)
    dqh, dkh = c * ds @ kh, c * ds.swapaxes(-1, -2) @ qh  # scores
    return tuple(attention.merge_heads(a) for a in (dqh, dkh, dvh))  # split's backward


gy_att = rng.standard_normal((N, T, d))
dq, dk, dv = attend_backward_ours(gy_att, q, k, v)


def L_attend():
    return float((attention.attend_forward(q, k, v, H)[0] * gy_att).sum())


for name, ours, arr in (("attention: dq", dq, q), ("attention: dk", dk, k),
                        ("attention: dv", dv, v)):
    fd_check(name, ours, L_attend, arr)
lib = attention.attend_backward(gy_att, attention.attend_forward(q, k, v, H)[1])
assert all(np.allclose(o, li, atol=1e-12) for o, li in zip((dq, dk, dv), lib))
print("our chain equals attention.attend_backward")

# %% [markdown]
# ## 3. LoRA on `q`, `k`, `v`, `o`
#
# The attention layer projects its input `h` `(N, T, d)` four times; each projection is the
# LoRA linear layer of lesson 1 (`W` `(d, d)` frozen, `A` `(d, r)`, `B` `(r, d)`):
#
# `q = h Wq + bq + scale (h Aq) Bq`, the same for `k` and `v`; `y = attend(q, k, v)` `(N, T, d)`;
# `out = y Wo + bo + scale (y Ao) Bo`.
#
# Backward: lesson 1's layer for `o`, part 2's chain for the heads, lesson 1's layer three more
# times. `h` feeds three projections, so **`dh = dh_q + dh_k + dh_v`**: a fork with three paths.
# The arrays come from a `TransformerBlock` (its sizes in a `BlockConfig`) with LoRA on all four
# projections; every `B` (and bias) is moved to random values (`tinylora.gradcheck.randomize_lora`:
# never check at `B = 0`).

# %%
r = 2
blk = TransformerBlock(BlockConfig(d, H), LoRAConfig(r=r, alpha=3.0, targets=("q", "k", "v", "o")),
                       seed=1)
randomize_lora(blk, seed=2)
P = blk.params
print(blk)


def lora_proj(x, t):
    """Lesson 1's LoRA layer with projection t's arrays.  x (N, T, d) -> (N, T, d)."""
    key = f"attn.{t}"
    return layers.lora_linear_forward(x, P[f"{key}.W"], P[f"{key}.b"], P[f"{key}.A"],
                                      P[f"{key}.B"], blk.scale)


def lora_attention_ours(h, dout):
    """Forward, then backward by hand. -> (out, dh, {factor key: gradient}, {t: dh_t})."""
    (q, c_q), (k, c_k), (v, c_v) = (lora_proj(h, t) for t in "qkv")
    y, _ = attention.attend_forward(q, k, v, H)
    out, c_o = lora_proj(y, "o")
    grads, dh_paths = {}, {}
    dy, _, _, grads["attn.o.A"], grads["attn.o.B"] = layers.lora_linear_backward(dout, c_o)
    dqkv = attend_backward_ours(dy, q, k, v)  # part 2
    for t, d_t, c_t in zip("qkv", dqkv, (c_q, c_k, c_v)):
        dh_paths[t], _, _, grads[f"attn.{t}.A"], grads[f"attn.{t}.B"] = (
            layers.lora_linear_backward(d_t, c_t))
    dh = dh_paths["q"] + dh_paths["k"] + dh_paths["v"]  # fork: h fed q, k and v
    return out, dh, grads, dh_paths


h = rng.standard_normal((N, T, d))
g_out = rng.standard_normal((N, T, d))
factor_keys = [f"attn.{t}.{f}" for t in "qkvo" for f in "AB"]
out_ours, dh_ours, grads_ours, dh_paths = lora_attention_ours(h, g_out)
print({key: grads_ours[key].shape for key in factor_keys[:2]}, "... scale =", blk.scale)


def L_att():
    return float((attention.attention_forward(h, P, "attn", H, blk.scale)[0] * g_out).sum())


for key in factor_keys:
    fd_check(f"LoRA attention: {key}", grads_ours[key], L_att, P[key])
dh_numerical = numerical_grad(L_att, h)
err = rel_error(dh_ours, dh_numerical)
print(f"{'LoRA attention: dh':>28}: relative error {err:.1e}")
assert err < TOL
err_no_k = rel_error(dh_paths["q"] + dh_paths["v"], dh_numerical)  # the bug: k path forgotten
print(f"{'dh without the k path':>28}: relative error {err_no_k:.1e}  (the bug)")
assert err_no_k > 1e-3

# the library's layer: the same numbers
out_lib, att_cache = attention.attention_forward(h, P, "attn", H, blk.scale)
grads_lib = {}
dh_lib = attention.attention_backward(g_out, att_cache, set(factor_keys), grads_lib)
assert np.allclose(out_ours, out_lib, atol=1e-12) and np.allclose(dh_ours, dh_lib, atol=1e-12)
assert all(np.allclose(grads_ours[key], grads_lib[key], atol=1e-12) for key in factor_keys)
print("ours equals attention.attention_forward / attention_backward")

# %% [markdown]
# ## 4. The pre-LN block
#
# `tinylora.block` puts it together (GPT-2's layout, layer norm *before* each branch):
#
# `x1 = x + attn(ln1(x))`,  `out = x1 + mlp(ln2(x1))`,  `mlp(u) = gelu(u W1 + b1) W2 + b2`
#
# with `x, x1, out` all `(N, T, d)` and the MLP's hidden width `4 d`. Each residual is a fork:
# `x` goes around the attention and into it, so `dx = dx1 + (the gradient through ln1 and the
# attention)`, and the same for `x1` around the MLP. `tinylora.gradcheck.check` runs the fake
# loss over every LoRA factor and the block's input. In a picture, forward in black and the
# gradients in red, the two forks where they are summed:

# %%
fig, ax = plt.subplots(figsize=(12, 3.6))
pictures.blank(ax, (-1.2, 15.6), (-1.6, 2.6), "The pre-LN block: two residual forks")
spots = {"x": (0, 0), "ln1": (2.2, 1.4), "attn": (4.6, 1.4), "+1": (6.6, 0), "x1": (7.8, 0),
         "ln2": (9.6, 1.4), "mlp": (12.0, 1.4), "+2": (14.0, 0), "out": (15.2, 0)}
for key, text in (("x", "x"), ("ln1", "ln1"), ("attn", "attn\nLoRA: q, k, v, o"), ("+1", "+"),
                  ("x1", "x1"), ("ln2", "ln2"), ("mlp", "mlp\nLoRA: fc1, fc2"), ("+2", "+"),
                  ("out", "out")):
    lora = "LoRA" in text
    pictures.node(ax, *spots[key], text, width=1.9 if lora else 0.8, height=0.9 if lora else 0.6)
for a_key, b_key, label in (("x", "ln1", ""), ("ln1", "attn", ""), ("attn", "+1", ""),
                            ("x", "+1", "dx1 (the skip: unchanged)"), ("+1", "x1", ""),
                            ("x1", "ln2", ""), ("ln2", "mlp", ""), ("mlp", "+2", ""),
                            ("x1", "+2", "dout (the skip: unchanged)"), ("+2", "out", "")):
    pictures.arrow(ax, spots[a_key], spots[b_key], label, dy=-0.45, shrink=18)
ax.text(0, -1.3, "dx = dx1 + (through attn, ln1)", color="C3", ha="center", fontsize=8)
ax.text(7.8, -1.3, "dx1 = dout + (through mlp, ln2)", color="C3", ha="center", fontsize=8)
plt.show()

# %%
x_blk = rng.standard_normal((N, T, d))
holder = {"x": x_blk}
cache_holder = {}


def block_out():
    out, cache_holder["c"] = blk.forward(holder["x"])
    return out


def block_grads(g):
    block_out()
    dx, grads = blk.backward_with_input(g, cache_holder["c"])
    return {"x": dx, **grads}


results = check("block", block_out, block_grads, {**P, "x": x_blk}, keys=[*factor_keys, "x"])
for res in results:
    print(res.line())
assert all(res.ok for res in results)

# %% [markdown]
# **Causality, the invariant of a decoder block.** Position `t` may only read positions
# `u <= t`. Change the input at the last position, and every earlier output must stay
# *bit-identical*: the masked probabilities are exactly 0, and layer norm and the MLP act on
# each position alone.

# %%
out_before, _ = blk.forward(x_blk)
x_changed = x_blk.copy()
x_changed[:, -1] += 10.0 * rng.standard_normal((N, d))  # a large change, at position T-1 only
out_after, _ = blk.forward(x_changed)
assert np.array_equal(out_after[:, :-1], out_before[:, :-1])  # THE INVARIANT: causality
print(f"outputs at positions 0..{T - 2}: bit-identical; at position {T - 1}: moved by "
      f"{np.abs(out_after[:, -1] - out_before[:, -1]).max():.2f}")

# %% [markdown]
# ## 5. Experiment: a coordinate check of the block
#
# muP's *coordinate check* (`docs/paper.md`, related work): train at several widths and plot
# the typical size of a quantity (its root mean square over coordinates) against the width,
# log-log. A slope 0 is "Theta(1) in the width". The paper calls learning *efficient* when
# `delta1` and `delta2` are *both* Theta(1) (with the features stable, `docs/paper.md`): one
# flat quantity is not enough, since either factor may have stopped learning. It measures three
# quantities for each LoRA layer at each step (`docs/paper.md`), here in row form with `Z` the
# layer's input:
#
# - `delta1 = scale Z (A_t - A_{t-1}) B_{t-1}`: what moving `A` did,
# - `delta2 = scale Z A_{t-1} (B_t - B_{t-1})`: what moving `B` did,
# - `delta3 = scale Z (A_t - A_{t-1}) (B_t - B_{t-1})`: both (second order),
#
# and `delta1 + delta2 + delta3` is exactly the change of the LoRA path's output.
# `tinylora.lab.coordcheck` measures them (`tinylora coordcheck --model block` is the command). Its
# block set-up (`coordcheck.block_setup`) puts LoRA (rank 4, Init[1]) on all six projections,
# `q, k, v, o, fc1, fc2`, with a random input and regression target, and reads each layer's input
# `Z` out of the forward cache (`tinylora.lab.deltas.projection_inputs`). First we check that it
# reads the right `Z`: for `q, k, v` it is `ln1(x)`, for `o` the heads' output, recomputed here
# from the library's pieces.

# %%
widths = [32, 64, 128, 256] if FAST else [32, 64, 128, 256, 512, 1024]
steps = 3  # steps 2 and 3: A has moved (at step 1 only B moves: dA = 0 at B = 0)
c_lr, n0 = 1e-2, widths[0]


def attention_inputs(model, x):
    """Z of q, k, v, o by hand: ln1(x) feeds q, k, v; the attention heads' output feeds o."""
    p = model.params
    h1, _ = layernorm_forward(x, p["ln1.g"], p["ln1.b"])
    qkv = [proj_forward(h1, p, f"attn.{t}", model.scale)[0] for t in "qkv"]
    heads, _ = attention.attend_forward(*qkv, model.n_head)
    return {"attn.q": h1, "attn.k": h1, "attn.v": h1, "attn.o": heads}


setup = coordcheck.block_setup(n0, seed=0)
model_cc = setup.model
TARGETS = model_cc.targets
print(model_cc)
Z = setup.inputs(model_cc, model_cc.forward(setup.x)[1])  # what coordcheck reads from the cache
for name, z_ours in attention_inputs(model_cc, setup.x).items():
    assert np.array_equal(Z[name], z_ours), name
print({name: z.shape for name, z in Z.items()}, "; q, k, v, o: equal to ours")

# Two Adam steps by hand, and the decomposition checked on the second (the lab's `deltas`).
opt_cc = Adam(model_cc.trainable_params(), lr=c_lr)
for _ in range(2):  # at step 1 A cannot move (B = 0); at step 2 both move
    before = {k: a.copy() for k, a in model_cc.trainable_params().items()}
    Z = setup.inputs(model_cc, model_cc.forward(setup.x)[1])
    opt_cc.step(loss_and_grads(model_cc, setup.x, setup.y)[1])
A0, B0 = before["attn.v.A"], before["attn.v.B"]
A1, B1 = model_cc.params["attn.v.A"], model_cc.params["attn.v.B"]
parts = deltas(Z["attn.v"], A0, B0, A1, B1, model_cc.scale)  # each [N, T, n]
change = model_cc.scale * (Z["attn.v"] @ A1 @ B1 - Z["attn.v"] @ A0 @ B0)
assert np.allclose(parts["delta1"] + parts["delta2"] + parts["delta3"], change, atol=1e-15)
print("step 2, attn.v: RMS of " + ", ".join(
    f"{q} {np.sqrt((parts[q] ** 2).mean()):.2e}" for q in ("delta1", "delta2", "delta3"))
    + "; their sum is the LoRA path's change")

# %% [markdown]
# Now the sweep: each width trains `steps` full-batch Adam steps under two schedules:
# - **shared**: `eta_A = eta_B = c` at every width;
# - **width-scaled schedule**: `eta_B = c`, `eta_A = c n0 / n` (`lr_ratio = n / n0`): `eta_A ~ 1/n`.
#
# The paper's prediction with Adam: `delta2 ~ eta_B` and `delta1 ~ eta_A eta_B n` (each step
# of `A` has `n` coordinates of size `eta_A`, all pushing `Z A` the same way). So with a shared
# rate `delta1` grows with `n` (slope up to 1) and only the width-scaled schedule keeps both flat.
# `Z_B = scale Z A_t B_t`, the adapter's whole output so far, is recorded too.

# %%
SCHEDULES = {  # width n -> (eta_A, eta_B)
    "shared": lambda n: (c_lr, c_lr),
    "scaled": lambda n: (c_lr * n0 / n, c_lr),  # eta_A ~ 1/n, eta_B ~ 1
}


def coord_check(width, schedule):
    """`coordcheck.measure` on the block: rows {width, schedule, step, layer, quantity, value}."""
    eta_A, eta_B = SCHEDULES[schedule](width)
    rows = coordcheck.measure(coordcheck.block_setup(width, seed=0), eta_A, eta_B, steps)
    return [{"width": width, "schedule": schedule, **row} for row in rows]


records = [rec for schedule in ("shared", "scaled") for n in widths
           for rec in coord_check(n, schedule)]
print(f"{len(records)} records: widths {widths}, {steps} steps, 2 schedules; e.g. {records[0]}")


def series(schedule, step, quantity, target=None):
    """Per width: the quantity at `step`, averaged over the six LoRA layers (or one of them)."""
    out = []
    for n in widths:
        vals = [rec["value"] for rec in records if rec["width"] == n
                and rec["schedule"] == schedule and rec["step"] == step
                and rec["quantity"] == quantity and (target is None or rec["layer"] == target)]
        out.append(float(np.mean(vals)))
    return np.array(out)


def slope(values):
    """The least-squares slope of log(values) against log(width) (`tinylora.lab.fit`)."""
    return loglog_slope(widths, values).slope


print(f"slopes against width at step {steps} (0 = Theta(1), 1 = grows like n):")
slopes = {}
for schedule in ("shared", "scaled"):
    for quantity in ("delta1", "delta2", "Z_B"):
        slopes[schedule, quantity] = slope(series(schedule, steps, quantity))
        per_target = " ".join(
            f"{t.split('.')[-1]}:{slope(series(schedule, steps, quantity, t)):+.2f}"
            for t in TARGETS)
        print(f"  {schedule:>8} {quantity:>6}: {slopes[schedule, quantity]:+.2f}   {per_target}")
layer_d2 = {t: slope(series("shared", steps, "delta2", t)) for t in TARGETS}
print(f"shared, delta2 per layer: from {min(layer_d2.values()):+.2f} "
      f"({min(layer_d2, key=layer_d2.get)}) to {max(layer_d2.values()):+.2f} "
      f"({max(layer_d2, key=layer_d2.get)}); delta1's smallest per-layer slope "
      f"{min(slope(series('shared', steps, 'delta1', t)) for t in TARGETS):+.2f}")

# Step 2 is exact: step 1 moved only B (dA = 0 at B = 0), identically in both schedules, so at
# step 2 the gradients are the same and A's Adam step is proportional to eta_A.
d1_shared, d1_scaled = series("shared", 2, "delta1"), series("scaled", 2, "delta1")
assert np.allclose(d1_scaled / d1_shared, n0 / np.array(widths), rtol=1e-6)
assert np.allclose(series("shared", 2, "delta2"), series("scaled", 2, "delta2"), rtol=1e-6)
print("step 2: delta1(width-scaled schedule) / delta1(shared) = n0 / n exactly; delta2 identical")

assert slopes["shared", "delta1"] > 0.5  # a shared rate: A's effect grows with the width
assert abs(slopes["scaled", "delta1"]) < 0.35  # eta_A ~ 1/n: flat
assert slopes["shared", "delta1"] > slopes["shared", "delta2"] + 0.4  # and faster than B's
assert abs(slopes["scaled", "delta2"]) < 0.35
assert slopes["shared", "Z_B"] > slopes["scaled", "Z_B"] + 0.15
assert abs(slopes["scaled", "Z_B"]) < 0.35

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
titles = {"shared": "shared rate: eta_A = eta_B",
          "scaled": "width-scaled: eta_A = c n0 / n, eta_B = c"}
colors = {"delta1": "C0", "delta2": "C1", "Z_B": "C2"}
for ax, schedule in zip(axes, ("shared", "scaled")):
    for quantity, style in (("delta1", "o-"), ("delta2", "s-"), ("Z_B", "^--")):
        for t, alpha_line in ((2, 0.35), (steps, 1.0)):
            ax.loglog(widths, series(schedule, t, quantity), style, base=2, alpha=alpha_line,
                      color=colors[quantity],
                      label=(f"{quantity} (slope {slopes[schedule, quantity]:+.2f})"
                             if t == steps else None))
    ax.set(xlabel="width n = d_model", title=titles[schedule])
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below
axes[0].set_ylabel("RMS over coordinates (mean over the 6 layers)")
fig.suptitle(f"Coordinate check of a LoRA Transformer block (Adam; faint: step 2, "
             f"solid: step {steps})")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.**
# - Left (shared rate): the `delta1` line climbs with the width (its printed slope is well above
#   0.5) and faster than `delta2`, by more than 0.4 in slope (both asserted). `delta2` is not
#   flat either: its per-layer slopes are printed (their range, and which layers), and they
#   differ from layer to layer. One rate cannot keep both flat: make it small enough to tame
#   `delta1` at large `n` and `delta2` (B's learning) shrinks with it (measured below).
# - Right (`eta_A ~ 1/n`): both lines are flat. At step 2 the two panels differ by exactly
#   `n0 / n` in `delta1` and not at all in `delta2` (asserted): only `A`'s rate changed.
# - The shared slope of `delta1` is below the counting's 1 over these widths (printed): the
#   next cell explains why.
# - `Z_B` (green), the adapter's whole output so far, grows with the width under the shared rate
#   and stays flat under the width-scaled schedule (its two slopes are printed; asserted).
#
# **Why the shared slope is below 1.** The counting `delta1 ~ eta_A n` assumes that `A`'s step
# lines up with the input `Z` it multiplies, as `Δa` lined up with `x` in lesson 3's toy (slope
# 1, against 1/2 for a random direction). Here `A`'s Adam step is close to the *sign* of
# `Z^T dZ_A`, a sum over `M = 4 x 16 = 64` tokens, so it lines up with each token only in part:
# against one token `z`, `z . sign(sum_m z_m d_m)` has a mean that grows like `n / sqrt(M)`
# and a random part like `sqrt(n)`. The random part wins while `n` is below about `M`, the
# mean beyond: the slope goes from 1/2 to 1 across `n ~ M`, which is where these widths are. A
# model of that first move in ten lines, with layer-normed random tokens:

# %%
def first_move_alignment(n, M, r=4, draws=4, seed=0):
    """RMS over tokens and ranks of z_m . sign(Z^T D): A's first sign-like move, with M
    layer-normed random tokens Z (M, n) and a random upstream D (M, r), seen by each token."""
    rng_ = np.random.default_rng(seed)
    sizes = []
    for _ in range(draws):
        Z_ = rng_.standard_normal((M, n))
        Z_ = (Z_ - Z_.mean(1, keepdims=True)) / Z_.std(1, keepdims=True)  # like ln1's output
        step = np.sign(Z_.T @ rng_.standard_normal((M, r)))  # (n, r): sign of the gradient
        sizes.append(np.sqrt(((Z_ @ step) ** 2).mean()))
    return float(np.mean(sizes))


M_tokens = math.prod(coordcheck.block_setup(widths[0], seed=0).x.shape[:2])  # N x T tokens
regimes = {"n << M": [4, 8, 16], "the lesson's widths": widths, "n >> M": [4096, 8192, 16384]}
model_slopes = {name: loglog_slope(ws, [first_move_alignment(n, M_tokens) for n in ws]).slope
                for name, ws in regimes.items()}
print(f"M = {M_tokens} tokens; slope of the model's first move: " + ", ".join(
    f"{name} {v:+.2f}" for name, v in model_slopes.items()))
assert abs(model_slopes["n << M"] - 0.5) < 0.1 and abs(model_slopes["n >> M"] - 1) < 0.05
assert 0.5 < model_slopes["the lesson's widths"] < 0.95

layer_slopes = {t: slope(series("shared", steps, "delta1", t)) for t in TARGETS}
normed = ["attn.q", "attn.k", "attn.v", "mlp.fc1"]  # the layers that read ln1(x) or ln2(x1)
normed_mean = float(np.mean([layer_slopes[t] for t in normed]))
at_widths = model_slopes["the lesson's widths"]
print(f"the block, shared rate, delta1's slope: q, k, v, fc1 (layer-normed inputs) "
      f"{normed_mean:+.2f} on average, against the model's {at_widths:+.2f}; o "
      f"{layer_slopes['attn.o']:+.2f}, fc2 {layer_slopes['mlp.fc2']:+.2f}")
assert abs(normed_mean - at_widths) < 0.1
assert min(layer_slopes["attn.o"], layer_slopes["mlp.fc2"]) > at_widths

# %% [markdown]
# The four layers that read layer-normed tokens follow the model (asserted within 0.1). `o` and
# `fc2` read other inputs, the heads' mixes of tokens and `fc1`'s `4 n`-wide activations, whose
# rows share more of their direction, so `A`'s step lines up with them better and their slopes are
# closer to 1; the six-layer average printed after the figure is in between.

# %% [markdown]
# **One shared rate cannot do both.** Shrink the shared rate with the width,
# `eta_A = eta_B = c sqrt(n0 / n)`: `delta1` is tamed (its slope drops by about 1, to near 0),
# but `delta2` now shrinks (slope near -1/2): `B` stops learning at large width (the paper's
# Theorem 1).

# %%
SCHEDULES["shared_sqrt"] = lambda n: (c_lr * math.sqrt(n0 / n),) * 2
records += [rec for n in widths for rec in coord_check(n, "shared_sqrt")]
slope_d1_sqrt = slope(series("shared_sqrt", steps, "delta1"))
slope_d2_sqrt = slope(series("shared_sqrt", steps, "delta2"))
print(f"eta ~ 1/sqrt(n): delta1 slope {slope_d1_sqrt:+.2f} (shared "
      f"{slopes['shared', 'delta1']:+.2f}), delta2 slope {slope_d2_sqrt:+.2f}")
assert slope_d1_sqrt < slopes["shared", "delta1"] - 0.7 and abs(slope_d1_sqrt) < 0.35
assert -0.75 < slope_d2_sqrt < -0.3

# %% [markdown]
# ## Your turn: predict, derive, check
# Each exercise is a function to complete (replace the `raise`), then a checker cell. The
# checker calls your function on a few cases and prints `right.`, or the first case it gets
# wrong with what it expected and what came back. Nothing above answers them: *derive*
# exercises ask for a backward pass of a layer this lesson did not write, *predict* exercises for
# an answer before the experiment that shows it (the checker runs it). The solutions are in
# `lessons/solutions/05_transformer_block_by_hand.py`: try first.
#
# **Exercise 1 (derive): RMSNorm's backward.** Llama's RMSNorm drops layer norm's mean:
# `rstd = (mean_j x_j^2 + eps)^(-1/2)`, `y = x * rstd * g` (`eps` is `tinylora.norms.EPS`).
# Return `dx` for an upstream `dy`. (Part 1's steps, one path fewer.)

# %%
def rmsnorm_dx(dy, x, g):
    """dL/dx of y = x (mean(x^2) + eps)^(-1/2) g over the last axis, shaped like x."""
    raise NotImplementedError("your lines")


# %%
def rmsnorm_dx_numerical(dy_, x_, g_):
    """dx of RMSNorm by centred differences of the fake loss sum(y * dy_)."""
    x_arr = x_.copy()
    return numerical_grad(lambda: float((x_arr * ((x_arr**2).mean(-1, keepdims=True) + EPS)
                                         ** -0.5 * g_ * dy_).sum()), x_arr)


rms_cases = [("part 1's dy, x and gain", (dy, x, g_ln)),
             ("another draw, rows of 5", (rng.standard_normal((3, 5)),
                                          0.5 + rng.standard_normal((3, 5)),
                                          rng.standard_normal(5)))]
ex.check(rmsnorm_dx, [(what, args, rmsnorm_dx_numerical(*args)) for what, args in rms_cases],
         rtol=1e-6, atol=1e-8)

# %% [markdown]
# **Exercise 2 (predict): the bias that never learns.** Train the four biases of the attention
# (`attn.q.b`, `attn.k.b`, `attn.v.b`, `attn.o.b`). One of them gets a gradient of exactly zero,
# up to round-off, whatever the input. Which? Return `"q"`, `"k"`, `"v"` or `"o"`.
#
# **Inline question 1 (written).** Why that one? (What does its bias add to a row of scores,
# and what does softmax do with that?) Would it still get no gradient without the causal mask?
#
# *Your answer:* (write it here)

# %%
def bias_that_never_learns():
    """-> "q", "k", "v" or "o": the attention bias whose gradient is always zero."""
    raise NotImplementedError("your answer: return ...")


# %%
bias_keys = [f"attn.{t}.b" for t in "qkvo"]
bias_grads = {}
attention.attention_backward(g_out, att_cache, set(bias_keys), bias_grads, need_dx=False)
sizes = {key.split(".")[1]: float(np.abs(bias_grads[key]).max()) for key in bias_keys}
assert sorted(sizes.values())[1] > 1e-3  # the other three are far from zero
ex.check(bias_that_never_learns, [("part 3's LoRA attention", (), min(sizes, key=sizes.get))])
print("(measured: max |gradient| " + ", ".join(f"{t}.b {v:.1e}" for t, v in sizes.items()) + ")")

# %% [markdown]
# **Exercise 3 (derive): how wrong is a gradient `k` times too large?** Forget the
# `1 / sqrt(dh)` in the scores' backward and `dqh` comes out `sqrt(dh)` times too large. For a
# gradient that is `k > 0` times the right one, what relative error does the check of part 1
# report (`rel_error(a, n) = |a - n| / (|a| + |n|)`, norms over the whole tensor)?

# %%
def rel_error_of_scaled(k):
    """rel_error(k * g, g) for any non-zero g."""
    raise NotImplementedError("your line: return ...")


# %%
dqh_true = numerical_grad(L_scores, qh)
ex.check(rel_error_of_scaled, [(f"dqh {k:g} times too large" + (" (the forgotten 1/sqrt(dh))"
                                                                if k == math.sqrt(dh) else ""),
                                (k,), rel_error(k * dqh_ours, dqh_true))
                               for k in (math.sqrt(dh), 0.5, 10.0)], rtol=1e-6)

# %% [markdown]
# **Exercise 4 (derive): multi-query attention.** In multi-query attention (PaLM, Falcon) the
# `H` heads have their own queries but share *one* key and *one* value head: `q` is
# `(N, T, d)`, while `k` and `v` are `(N, T, dh)`, used by every head. Return `(dq, dk, dv)` for
# an upstream `dy` `(N, T, d)`. (Part 2's chain; `k` is broadcast over the heads: what is a
# broadcast's backward?)

# %%
def mqa_backward(dy, q, k, v):
    """-> (dq (N, T, d), dk (N, T, dh), dv (N, T, dh)) of causal multi-query attention."""
    raise NotImplementedError("your lines")


# %%
def mqa_forward(q, k, v):
    """Causal multi-query attention: part 2's steps, with k and v shared by the H heads."""
    qh_ = attention.split_heads(q, H)  # [N, H, T, dh]
    kh_, vh_ = k[:, None], v[:, None]  # [N, 1, T, dh]: broadcast over the heads
    p_ = attention.softmax_forward(attention.causal_mask_forward(
        c * qh_ @ kh_.swapaxes(-1, -2)))  # [N, H, T, T]
    return attention.merge_heads(p_ @ vh_)  # [N, T, d]


q_m, k_m, v_m = rng.standard_normal((N, T, d)), *rng.standard_normal((2, N, T, dh))
g_m = rng.standard_normal((N, T, d))
mqa_numerical = tuple(numerical_grad(lambda: float((mqa_forward(q_m, k_m, v_m) * g_m).sum()), arr)
                      for arr in (q_m, k_m, v_m))
ex.check(mqa_backward, [(f"N = {N}, T = {T}, H = {H} heads of {dh}", (g_m, q_m, k_m, v_m),
                         mqa_numerical)], rtol=1e-6, atol=1e-8)

# %% [markdown]
# **Exercise 5 (predict): more tokens.** The coordinate check trained on `M = 64` tokens.
# Suppose it had used four times as many (`M = 256`) over the same widths. Would the shared
# slope of `delta1` come out `"higher"` or `"lower"` than with 64? (The explanation after the
# figure says where the slope goes from 1/2 to 1.)

# %%
def slope_with_more_tokens():
    """-> "higher" or "lower": the shared delta1 slope with M = 256 tokens against M = 64."""
    raise NotImplementedError("your answer: return ...")


# %%
more = {M: loglog_slope(widths, [first_move_alignment(n, M) for n in widths]).slope
        for M in (64, 256)}
ex.check(slope_with_more_tokens, [(f"the model of A's first move, widths {widths[0]} .. "
                                   f"{widths[-1]}", (), "higher" if more[256] > more[64]
                                   else "lower")])
print("(measured with the model: slope " + ", ".join(f"M = {M}: {v:+.2f}" for M, v in
                                                     more.items()) + ")")
print(f"this lesson ran in {time.perf_counter() - T0:.1f} s (fast mode: {FAST})")

# %% [markdown]
# ## Recap
# - Layer norm's backward is five one-line steps (two forks: the mean and the variance paths),
#   and attention's is one line per step (softmax: `ds = p * (dp - sum(dp p))`); each step is
#   checked numerically, and LoRA on `q, k, v, o` only adds lesson 1's layer four times.
# - The block's gradient sums every fork (residuals, `q, k, v` sharing their input); causality
#   holds bit for bit: earlier outputs never see later inputs.
# - The coordinate check shows the paper's point inside a real block: with one shared Adam
#   rate, `A`'s effect grows with the width (more slowly than `n` while the width is below the
#   number of tokens, whose directions `A`'s step must share); `eta_A ~ 1/n`, `eta_B ~ 1`
#   keeps both `delta1` and `delta2` flat.
