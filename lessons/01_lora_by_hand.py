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
# # Lesson 1: LoRA by hand
#
# **Goal.** Write the LoRA linear layer, `y = x W + b + scale (x A) B`, and its backward pass
# by hand, one gradient at a time, checking each against finite differences before moving on.
# Then assert that `tinylora`'s own layer computes exactly the same numbers, and see why LoRA
# starts from `B = 0` and what that does to the gradient of `A` (it is exactly zero at step 1).
#
# With `TINYLORA_FAST=1` (what the tests use) the experiment is smaller; the last cell prints
# how long the lesson took. The notation (`W`, `A`, `B`, `r`, `alpha`, `scale`, Init[1], ...) is
# on the card in `lessons/README.md`; the paper, as we read it, is `docs/paper.md`.

# %%
import math
import os
import time

import matplotlib.pyplot as plt
import numpy as np  # a lesson is user code: it may use NumPy directly (the library may not)
import pictures  # lessons/pictures.py: boxes and arrows for the diagrams
from exercises import Exercises  # lessons/exercises.py: the checker of every exercise

from tinylora import layers
from tinylora.gradcheck import TOLERANCE, numerical_grad, rel_error
from tinylora.lora import LoRAConfig, init_factors

T0 = time.perf_counter()
FAST = os.environ.get("TINYLORA_FAST") == "1"
ex = Exercises("01_lora_by_hand")
rng = np.random.default_rng(0)  # every random number in this lesson comes from this seed

N, d_in, d_out, r = 6, 5, 4, 2  # batch rows, input width, output width, LoRA rank
alpha = 4.0
scale = alpha / r  # = 2.0; deliberately not 1, so that a forgotten `scale` shows up

x = rng.standard_normal((N, d_in))
W = rng.standard_normal((d_in, d_out)) / math.sqrt(d_in)  # frozen
b = rng.standard_normal(d_out)  # frozen
A = rng.standard_normal((d_in, r)) / math.sqrt(d_in)  # trains
B = rng.standard_normal((r, d_out))  # trains; random and NON-zero on purpose (see part 4)
print(f"x {x.shape}, W {W.shape}, b {b.shape}, A {A.shape}, B {B.shape}, scale = {scale}")
print(f"finite-difference tolerance (relative error): {TOLERANCE:g}")

# %% [markdown]
# ## 1. The forward pass, with shapes
#
# The paper writes `W = W* + (alpha/r) B A` acting on a column vector: `A` (r x n) acts first,
# then `B` (n x r). Code that works on *rows* (`y = x @ W`, with `W` stored `(d_in, d_out)`)
# stores the transposes, so here `A` is `(d_in, r)` (the input side) and `B` is `(r, d_out)`
# (the output side):
#
# | quantity | formula | shape |
# |---|---|---|
# | input | `x` | `(N, d_in)` |
# | down-projection | `z_a = x A` | `(N, r)` |
# | scaled | `u = scale * z_a` | `(N, r)` |
# | output | `y = x W + b + u B` | `(N, d_out)` |
#
# The product `A B` (a full `d_in x d_out` matrix) is never formed: the LoRA path costs
# `N r (d_in + d_out)` multiplications instead of `N d_in d_out`. In a picture, with the
# widths of the boxes drawn to the shapes (`r` much smaller than `d_in`, `d_out`):

# %%
fig, ax = plt.subplots(figsize=(11, 3.2))
pictures.blank(ax, (-0.3, 17.5), (-1.0, 4.4),
               "y = x W + b + scale (x A) B: the LoRA path is two thin matrices beside W")
pictures.matrix(ax, 0, 1.25, 4, 1.5, "x", "(N, d_in)", "#e0e0e0")
ax.text(4.45, 2, "@", ha="center", va="center", fontsize=12)
pictures.matrix(ax, 4.9, 0, 4, 4, "W\n(frozen)", "(d_in, d_out)", "#b0b0b0")
ax.text(10.4, 2, "+ scale · x @", ha="center", va="center", fontsize=11)
pictures.matrix(ax, 11.9, 0, 0.5, 4, "A", "(d_in, r)", "C0")
ax.text(12.75, 2, "@", ha="center", va="center", fontsize=12)
pictures.matrix(ax, 13.1, 1.75, 4, 0.5, "B", "(r, d_out)", "C1")
ax.text(15.1, 3.2, "trains: r (d_in + d_out) numbers\nagainst d_in d_out in W", ha="center",
        fontsize=8)
plt.show()

# %%
def lora_forward(x, W, b, A, B, scale):
    """Our own forward, written for this lesson (the library's comes in part 3)."""
    z_a = x @ A  # [N, d_in] @ [d_in, r] -> [N, r]
    u = scale * z_a  # [N, r]
    return x @ W + b + u @ B  # [N, d_out]


y = lora_forward(x, W, b, A, B, scale)
print("y", y.shape)

# Check: the adapted layer is the frozen layer with a merged weight W + scale * A B.
y_merged = x @ (W + scale * A @ B) + b
print(f"max |y - y_merged| = {np.abs(y - y_merged).max():.1e}")
assert np.allclose(y, y_merged, rtol=0, atol=1e-12)
print(f"trainable numbers here: {A.size + B.size} (LoRA) vs {W.size} (full W)")
n_big, r_big = 4096, 8  # a typical layer of a large model
print(f"at d_in = d_out = {n_big}, r = {r_big}: {r_big * 2 * n_big:,} trainable numbers vs "
      f"{n_big * n_big:,}, and the LoRA path costs {r_big * 2 * n_big:,} multiply-adds per row "
      f"against {n_big * n_big:,} for x W")

# %% [markdown]
# ## 2. The backward pass, one gradient at a time
#
# To check a backward pass we need a loss. The **fake loss** trick: draw a random `g` shaped like
# `y` and use `L = sum(y * g)`. Then `dL/dy = g` exactly, so `dy = g` is the upstream gradient,
# and every gradient below must equal the numerical derivative of `L`. We compare with centred
# finite differences, `(L(θ + h) - L(θ - h)) / 2h` entry by entry, in float64
# (`tinylora.gradcheck.numerical_grad`), and measure one number per tensor,
# `rel_error = ||a - n|| / (||a|| + ||n||)`, with Frobenius norms over the *whole tensor*
# (per entry, an entry that is nearly zero would carry the differences' round-off, about
# `1e-11`, as a large relative error).
#
# The graph of the layer, forward in black, each gradient in red on the edge it flows back
# along. Where `x` forks into two paths, its two gradients are summed:

# %%
fig, ax = plt.subplots(figsize=(12, 4.8))
pictures.blank(ax, (-2.6, 13.6), (-2.6, 4.6),
               "One LoRA layer: forward (black), backward (red, on the edges)")
for (px, py), text, color in (((0, 1), "x", "#e0e0e0"), ((4, 2.8), "x W + b", "#b0b0b0"),
                              ((3, -0.4), "z_a = x A", "#cfe0f5"),
                              ((6.5, -0.4), "u = scale z_a", "white"),
                              ((10, -0.4), "u B", "#fbd9bf"), ((12.5, 1), "y", "#e0e0e0"),
                              ((3, -2.0), "A", "C0"), ((10, -2.0), "B", "C1"),
                              ((4, 4.0), "W, b (frozen)", "#b0b0b0")):
    pictures.node(ax, px, py, text, color, width=0.15 * len(text) + 0.5)
for start, end, grad in (((0, 1), (4, 2.8), "dy W^T"), ((0, 1), (3, -0.4), "dz_a A^T"),
                         ((4, 2.8), (12.5, 1), "dy"), ((10, -0.4), (12.5, 1), "dy"),
                         ((3, -2.0), (3, -0.4), ""), ((10, -2.0), (10, -0.4), ""),
                         ((4, 4.0), (4, 2.8), "")):
    pictures.arrow(ax, start, end, grad)
for start, end, grad in (((4.0, -0.4), (5.2, -0.4), "dz_a =\nscale du"),
                         ((7.8, -0.4), (9.5, -0.4), "du = dy B^T")):  # box edge to box edge
    pictures.arrow(ax, start, end, grad, shrink=2)
ax.text(3.2, -1.2, "dA = x^T dz_a", color="C3", fontsize=8, va="center")
ax.text(10.2, -1.2, "dB = u^T dy", color="C3", fontsize=8, va="center")
ax.text(-2.5, 1.6, "dx = dy W^T + dz_a A^T\n(the fork: summed)", color="C3", fontsize=8)
plt.show()

# %%

# %%
g = rng.standard_normal(y.shape)
dy = g  # dL/dy for L = sum(y * g)


def L():
    """The fake loss; it reads x, W, b, A, B *now* (numerical_grad nudges them in place)."""
    return float((lora_forward(x, W, b, A, B, scale) * g).sum())


print(f"L = {L():.6f}")

# %% [markdown]
# ### Step 1: `dB`
# `y[n, j]` contains `sum_k u[n, k] B[k, j]`, so `dL/dB[k, j] = sum_n u[n, k] dy[n, j]`:
#
# `dB = u^T dy`  — `[r, N] @ [N, d_out] -> [r, d_out]`, the shape of `B`.

# %%
u = scale * (x @ A)  # [N, r]
dB = u.T @ dy  # [r, N] @ [N, d_out] -> [r, d_out]
err = rel_error(dB, numerical_grad(L, B))
print(f"dB: relative error {err:.1e}")
assert dB.shape == B.shape and err < TOLERANCE

# %% [markdown]
# ### Step 2: `dz_a`, the gradient at the rank-`r` bottleneck
# By the same argument for `y = ... + u B`: `du = dy B^T` (`[N, d_out] @ [d_out, r] -> [N, r]`),
# and `u = scale * z_a` gives `dz_a = scale * du`. To check an intermediate, write the loss as a
# function of `z_a` itself:

# %%
z_a = x @ A  # [N, r]
dz_a = scale * (dy @ B.T)  # [N, d_out] @ [d_out, r] -> [N, r]


def L_of_z_a():
    return float(((x @ W + b + scale * z_a @ B) * g).sum())


err = rel_error(dz_a, numerical_grad(L_of_z_a, z_a))
print(f"dz_a: relative error {err:.1e}")
assert err < TOLERANCE

# %% [markdown]
# ### Step 3: `dA`
# `z_a = x A` is a linear layer of its own, so `dA = x^T dz_a` (`[d_in, N] @ [N, r] -> [d_in, r]`).
# Written out: `dA = scale * x^T dy B^T`. Note the factor `B`: it will matter in part 4.

# %%
dA = x.T @ dz_a  # [d_in, N] @ [N, r] -> [d_in, r]
err = rel_error(dA, numerical_grad(L, A))
print(f"dA: relative error {err:.1e}")
assert dA.shape == A.shape and err < TOLERANCE

# %% [markdown]
# ### Step 4: `dx`, where two paths meet
# `x` feeds the frozen path (`x W`) *and* the LoRA path (`x A`). At a fork the gradients add:
#
# `dx = dy W^T + dz_a A^T`  — both `[N, d_in]`.
#
# Forgetting the LoRA term is a classic bug; the check catches it.

# %%
dx = dy @ W.T + dz_a @ A.T  # frozen path + LoRA path, each [N, d_in]
dx_numerical = numerical_grad(L, x)
err = rel_error(dx, dx_numerical)
err_frozen_only = rel_error(dy @ W.T, dx_numerical)  # the bug: LoRA path forgotten
print(f"dx: relative error {err:.1e};  without the LoRA term: {err_frozen_only:.1e}")
assert err < TOLERANCE and err_frozen_only > 1e-3

# %% [markdown]
# ### Step 5: the frozen weights
# `W` and `b` do not train, so LoRA never needs their gradients; for completeness (full
# fine-tuning needs them): `dW = x^T dy` and `db = sum over rows of dy`.

# %%
dW = x.T @ dy  # [d_in, N] @ [N, d_out] -> [d_in, d_out]
db = dy.sum(axis=0)  # [d_out]
err_W, err_b = rel_error(dW, numerical_grad(L, W)), rel_error(db, numerical_grad(L, b))
print(f"dW: relative error {err_W:.1e};  db: relative error {err_b:.1e}")
assert err_W < TOLERANCE and err_b < TOLERANCE

# %% [markdown]
# ## 3. The library's layer computes the same numbers
#
# `tinylora.layers.lora_linear_forward(x, W, b, A, B, scale) -> (y, cache)` and
# `lora_linear_backward(dy, cache) -> (dx, dW, db, dA, dB)` are the same equations (read them in
# `tinylora/layers.py`). A frozen weight gets no gradient unless asked for (`need_dW=True`):
# by default `dW` and `db` come back as `None` and are never computed.

# %%
y_lib, cache = layers.lora_linear_forward(x, W, b, A, B, scale)
assert np.allclose(y_lib, y, rtol=0, atol=1e-12)
dx_lib, dW_lib, db_lib, dA_lib, dB_lib = layers.lora_linear_backward(
    dy, cache, need_dW=True, need_db=True
)
for name, ours, lib in [("dx", dx, dx_lib), ("dW", dW, dW_lib), ("db", db, db_lib),
                        ("dA", dA, dA_lib), ("dB", dB, dB_lib)]:
    print(f"{name}: max |ours - library| = {np.abs(ours - lib).max():.1e}")
    assert np.allclose(ours, lib, rtol=0, atol=1e-12)

_, dW_default, db_default, _, _ = layers.lora_linear_backward(dy, cache)
print("by default, dW and db are:", dW_default, db_default)
assert dW_default is None and db_default is None

# %% [markdown]
# ## 4. Why `B = 0` at init, and what it does to `dA`
#
# LoRA's init, the paper's *Init[1]*: `B = 0` and `A` random with variance `Theta(1/d_in)`;
# tinylora draws `A ~ N(0, 1/d_in)`. (HF PEFT's default is Init[1] too, with `A` drawn from
# a Kaiming-uniform distribution, variance `1/(3 d_in)`: the same `Theta(1/d_in)`, another
# constant.)
# - With `B = 0` the LoRA path adds exactly nothing: fine-tuning **starts at the pretrained
#   model**. This is the lesson's invariant, asserted bit for bit below.
# - Not both zero: with `A = B = 0`, `dA = scale x^T dy B^T = 0` and `dB = u^T dy = 0`: a saddle
#   where nothing ever moves. With `A` random, `dB` is non-zero.
# - But `dA` carries the factor `B`: **at step 1, `dA` is exactly zero.** `A` starts moving
#   only once `B` has.

# %%
config = LoRAConfig(r=r, alpha=alpha)  # init="zero_B" is Init[1]
A0, B0 = init_factors(rng, d_in, d_out, config, np, "float64")
assert np.all(B0 == 0) and np.any(A0 != 0)

y0, cache0 = layers.lora_linear_forward(x, W, b, A0, B0, config.scale)
y_frozen, _ = layers.linear_forward(x, W, b)
assert np.array_equal(y0, y_frozen)  # THE INVARIANT: B = 0 leaves the output bit-identical
print("B = 0: the LoRA layer's output equals the frozen layer's, bit for bit")

_, _, _, dA0, dB0 = layers.lora_linear_backward(dy, cache0)
print(f"at init: |dA| = {np.linalg.norm(dA0):.1e},  |dB| = {np.linalg.norm(dB0):.3f}")
assert np.all(dA0 == 0) and np.linalg.norm(dB0) > 0

# both zero: a saddle point, no gradient at all
_, _, _, dA00, dB00 = layers.lora_linear_backward(
    dy, layers.lora_linear_forward(x, W, b, 0 * A0, B0, config.scale)[1])
print(f"A = B = 0: |dA| = {np.linalg.norm(dA00):.1e}, |dB| = {np.linalg.norm(dB00):.1e}")
assert np.all(dA00 == 0) and np.all(dB00 == 0)

# %% [markdown]
# ### Never check a gradient at `B = 0`
# Because `dA = 0` there, *any* formula for `dA` that carries the factor `B` passes a gradient
# check at init, right or wrong. Here is a buggy `dA` that forgets `scale`: at `B = 0` its error
# is zero; at a random `B` it is caught at once. (This is why `tinylora gradcheck` always uses a
# random, non-zero `B`.) And with `scale = 1` this bug hides everywhere: check with a `scale`
# that is not 1 too.

# %%
def dA_buggy(x, dy, B):
    return x.T @ (dy @ B.T)  # forgot `scale`


def L_init():
    return float((lora_forward(x, W, b, A0, B0, scale) * g).sum())


err_at_init = rel_error(dA_buggy(x, dy, B0), numerical_grad(L_init, A0))
err_at_random_B = rel_error(dA_buggy(x, dy, B), numerical_grad(L, A))
print(f"buggy dA: error {err_at_init:.1e} at B = 0 (passes!),  {err_at_random_B:.1e} at random B")
assert err_at_init < TOLERANCE and err_at_random_B > 1e-3


def L_scale_1():
    return float((lora_forward(x, W, b, A, B, 1.0) * g).sum())


err_scale_1 = rel_error(dA_buggy(x, dy, B), numerical_grad(L_scale_1, A))
print(f"buggy dA at random B but scale = 1: error {err_scale_1:.1e} (passes too!)")
assert err_scale_1 < TOLERANCE

# %% [markdown]
# ## 5. Experiment: who moves first
#
# Train one LoRA layer by plain gradient descent (two lines, by hand) to learn a rank-1 change
# `Delta` of a frozen `W`: the targets are `Y = X (W + Delta)`, the loss is the mean squared
# error (`tinylora.layers.mse_forward`). We record the loss and the sizes of `dA` and `dB` at
# every step. Expect `|dA| = 0` at step 0 and non-zero from step 1 on.

# %%
d, n_points, steps, lr = (16, 128, 60, 1.0) if FAST else (64, 128, 300, 1.0)
rng_exp = np.random.default_rng(1)
W_exp = rng_exp.standard_normal((d, d)) / math.sqrt(d)
W_exp_before = W_exp.copy()
Delta = np.outer(rng_exp.standard_normal(d), rng_exp.standard_normal(d)) / math.sqrt(d)  # rank 1
X = rng_exp.standard_normal((n_points, d))
Y = X @ (W_exp + Delta)

cfg = LoRAConfig(r=2, alpha=2.0)
A_t, B_t = init_factors(rng_exp, d, d, cfg, np, "float64")
history = {"loss": [], "|dA|": [], "|dB|": []}
for _ in range(steps):
    out, c = layers.lora_linear_forward(X, W_exp, None, A_t, B_t, cfg.scale)
    loss, loss_cache = layers.mse_forward(out, Y)
    _, _, _, dA_t, dB_t = layers.lora_linear_backward(layers.mse_backward(1.0, loss_cache), c,
                                                      need_dx=False)
    history["loss"].append(float(loss))
    history["|dA|"].append(float(np.linalg.norm(dA_t)))
    history["|dB|"].append(float(np.linalg.norm(dB_t)))
    A_t -= lr * dA_t  # gradient descent, in place
    B_t -= lr * dB_t

rel_fit = np.linalg.norm(cfg.scale * A_t @ B_t - Delta) / np.linalg.norm(Delta)
print(f"width {d}, {steps} steps: loss {history['loss'][0]:.3f} -> {history['loss'][-1]:.1e}")
print(f"|dA| at steps 0, 1, 2: {history['|dA|'][:3]}")
print(f"|scale A B - Delta| / |Delta| after training: {rel_fit:.1e}")
assert history["|dA|"][0] == 0.0 and history["|dA|"][1] > 0
assert history["loss"][-1] < 1e-3 * history["loss"][0]
assert np.array_equal(W_exp, W_exp_before)  # the frozen weight never changed

# %%
steps_axis = np.arange(steps)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.semilogy(steps_axis, history["loss"])
ax1.set(xlabel="step", ylabel="MSE loss", title=f"LoRA layer learns a rank-1 shift (width {d})")
ax2.semilogy(steps_axis[1:], history["|dA|"][1:], label="|dA| (exactly 0 at step 0: not drawn)")
ax2.semilogy(steps_axis, history["|dB|"], label="|dB|")
ax2.set(xlabel="step", ylabel="gradient norm", title="Init[1]: B moves first, then A")
ax2.legend()
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.**
# - Right panel: the `|dA|` line starts at step 1, since at step 0 `dA` is exactly 0 (printed
#   above). It then grows from zero as `B` does: `dA` is linear in `B` (part 4).
# - Left panel: the loss falls by orders of magnitude: a rank-2 LoRA can represent the rank-1
#   shift exactly, and the learned `scale A B` ends close to `Delta` (the printed relative error).
# - The frozen `W` is bit-identical after training (asserted): everything the model learned lives
#   in `A` and `B`.

# %% [markdown]
# ## Experiments to try
# Each has its expected outcome; the cell after the list checks them all.
# 1. **Init[2].** Use `LoRAConfig(r=r, alpha=alpha, init="zero_A")` (`A = 0`, `B` random).
#    *Expected:* the output is still the frozen output, but now `dB` is exactly zero at step 1
#    and `dA` is not.
# 2. **Double alpha.** At fixed `x, A, B, dy`, double `alpha`. *Expected:* `dA` and `dB` both
#    double, bit for bit (each carries one factor of `scale`, and a factor 2 is exact in
#    floating point); the LoRA part of `y` doubles too (to round-off).
# 3. **The step size of the check.** Our fake loss is *linear* in `A`, so centred differences
#    have no truncation error: only round-off, about `1e-16 / h`. *Expected:* with `h = 1e-1` the
#    check still passes (error below `1e-9`); with `h = 1e-12` round-off dominates and the error
#    is far above the tolerance.
# 4. **Another bug.** Forget the LoRA term of `dx` at `B = 0`. *Expected:* it passes the check
#    there (the LoRA path carries `B`), and fails at random `B` (shown in step 4).

# %%
# Answers, checked.
# 1. Init[2]
A2, B2 = init_factors(rng, d_in, d_out, LoRAConfig(r=r, alpha=alpha, init="zero_A"), np, "float64")
y2, cache2 = layers.lora_linear_forward(x, W, b, A2, B2, scale)
_, _, _, dA2, dB2 = layers.lora_linear_backward(dy, cache2)
assert np.array_equal(y2, y_frozen) and np.all(dB2 == 0) and np.linalg.norm(dA2) > 0
print(f"1. Init[2]: |dA| = {np.linalg.norm(dA2):.3f}, |dB| = {np.linalg.norm(dB2):.1e}")

# 2. double alpha (scale doubles)
_, _, _, dA_2x, dB_2x = layers.lora_linear_backward(dy, layers.lora_linear_forward(
    x, W, b, A, B, 2 * scale)[1])
assert np.array_equal(dA_2x, 2 * dA_lib) and np.array_equal(dB_2x, 2 * dB_lib)
lora_part = lora_forward(x, W, b, A, B, scale) - y_frozen
lora_part_2x = lora_forward(x, W, b, A, B, 2 * scale) - y_frozen
assert np.allclose(lora_part_2x, 2 * lora_part)
print(f"2. |dA(2 scale)| / |dA(scale)| = {np.linalg.norm(dA_2x) / np.linalg.norm(dA):.6f}")

# 3. the step size h
err_big_h = rel_error(dA, numerical_grad(L, A, h=1e-1))
err_tiny_h = rel_error(dA, numerical_grad(L, A, h=1e-12))
print(f"3. dA error with h = 1e-1: {err_big_h:.1e};  with h = 1e-12: {err_tiny_h:.1e}")
assert err_big_h < 1e-9 and err_tiny_h > TOLERANCE

# 4. the forgotten LoRA term of dx passes at B = 0 and fails at random B
err_dx_init = rel_error(dy @ W.T, numerical_grad(L_init, x))
print(f"4. dx without LoRA term: error {err_dx_init:.1e} at B = 0, "
      f"{err_frozen_only:.1e} at random B")
assert err_dx_init < TOLERANCE and err_frozen_only > 1e-3

# %% [markdown]
# ## Exercises: your turn
# Each exercise is a function to complete (replace the `raise`), then a checker cell that says
# right or not yet. The solutions are in `lessons/solutions/01_lora_by_hand.py`: try first.
#
# **Exercise 1: `dB`.** Write `dB` from `u = scale (x A)` and the upstream `dy`
# (`[r, N] @ [N, d_out]`).

# %%
def grad_B(u, dy):
    """dL/dB of y = ... + u B, shape (r, d_out)."""
    raise NotImplementedError("your line: return ...")


# %%
ex.check(grad_B, lambda f: np.allclose(f(u, dy), dB_lib, rtol=0, atol=1e-12))

# %% [markdown]
# **Exercise 2: `dA`, `scale` included.** From `x`, `dy`, `B` and `scale`. The checker uses a
# random `B` and two scales (2 and 3), so neither a forgotten `B` nor a forgotten `scale` hides.

# %%
def grad_A(x, dy, B, scale):
    """dL/dA of y = ... + scale (x A) B, shape (d_in, r)."""
    raise NotImplementedError("your line: return ...")


# %%
def fake_loss_at(s):
    """The fake loss of part 2 with scale s (a function of the arrays as they are now)."""
    return lambda: float((lora_forward(x, W, b, A, B, s) * g).sum())


ex.check(grad_A, lambda f: all(rel_error(f(x, dy, B, s), numerical_grad(fake_loss_at(s), A))
                               < TOLERANCE for s in (scale, 3.0)))

# %% [markdown]
# **Exercise 3: `dx`, where the two paths meet.** From `dy`, `W`, `A`, `B` and `scale`.

# %%
def grad_x(dy, W, A, B, scale):
    """dL/dx of y = x W + b + scale (x A) B, shape (N, d_in)."""
    raise NotImplementedError("your line: return ...")


# %%
ex.check(grad_x, lambda f: rel_error(f(dy, W, A, B, scale), numerical_grad(L, x)) < TOLERANCE)

# %% [markdown]
# **Exercise 4: merge the adapter.** The one matrix that does the work of `W` and the LoRA path
# together (so that inference costs nothing extra once training is over).

# %%
def merged_weight(W, A, B, scale):
    """W' with x W' + b = x W + b + scale (x A) B for every x, shape (d_in, d_out)."""
    raise NotImplementedError("your line: return ...")


# %%
ex.check(merged_weight, lambda f: np.allclose(x @ f(W, A, B, scale) + b,
                                              lora_forward(x, W, b, A, B, scale), atol=1e-12))
print(f"this lesson ran in {time.perf_counter() - T0:.1f} s (fast mode: {FAST})")

# %% [markdown]
# ## Recap
# - LoRA adds `scale (x A) B` to a frozen layer; each gradient (`dB = u^T dy`,
#   `dA = x^T (scale dy B^T)`, `dx` summed over two paths) is one matmul, checked numerically.
# - `B = 0` at init keeps the model exactly at the pretrained one, and makes `dA` exactly zero at
#   step 1: `B` moves first, `A` follows.
# - So a gradient check at `B = 0` proves nothing about `dA`: always check at a random `B`.
