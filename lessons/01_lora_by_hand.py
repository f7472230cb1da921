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

from tinylora import layers
from tinylora.gradcheck import TOLERANCE, numerical_grad, rel_error
from tinylora.lessons import pictures  # boxes and arrows for the diagrams
from tinylora.lessons.exercises import Exercises  # the checker of every exercise
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
zoom = min(30, steps)  # the first 30 steps: where B moves first and A catches up
steps_axis = np.arange(steps)
fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(13, 4.3))
ax0.semilogy(steps_axis, history["loss"])
ax0.axvspan(0, zoom - 1, color="C7", alpha=0.15, label=f"the first {zoom} steps (next panels)")
ax0.set(xlabel="step", ylabel="MSE loss", title=f"all {steps} steps (width {d})")
ax0.legend(fontsize=8, loc="upper right")
ax1.semilogy(steps_axis[:zoom], history["loss"][:zoom], "o-", ms=3)
ax1.set(xlabel="step", ylabel="MSE loss", title=f"the first {zoom} steps: the loss")
ax2.semilogy(steps_axis[1:zoom], history["|dA|"][1:zoom], "o-", ms=3,
             label="|dA| (exactly 0 at step 0: not drawn)")
ax2.semilogy(steps_axis[:zoom], history["|dB|"][:zoom], "s-", ms=3, label="|dB|")
ax2.set(xlabel="step", ylabel="gradient norm", title="Init[1]: B moves first, then A")
ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below the points
for ax in (ax0, ax1, ax2):
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.**
# - Right panel: the `|dA|` line starts at step 1, since at step 0 `dA` is exactly 0 (printed
#   above). It then grows from zero as `B` does: `dA` is linear in `B` (part 4).
# - Left panel: the loss falls by orders of magnitude: a rank-2 LoRA can represent the rank-1
#   shift exactly, and the learned `scale A B` ends close to `Delta` (the printed relative error).
#   The middle panel is its first 30 steps, where the two factors find the shift.
# - The frozen `W` is bit-identical after training (asserted): everything the model learned lives
#   in `A` and `B`.

# %% [markdown]
# ## Your turn: predict, derive, check
# Each exercise is a function to complete (replace the `raise`), then a checker cell. The
# checker calls your function on a few cases and prints `right.`, or the first case it gets
# wrong with what it expected and what came back. Nothing above answers them: they ask for the
# same reasoning on a case the lesson did not do. *Predict* exercises ask for an answer before
# the experiment that shows it (the checker runs the experiment); *derive* exercises ask for a
# backward pass of a layer this lesson did not write. The solutions are in
# `lessons/solutions/01_lora_by_hand.py`: try first.
#
# **Exercise 1 (predict): Init[2] at step 1.** The paper's other init, *Init[2]*, starts from
# `A = 0` and `B` random (`LoRAConfig(init="zero_A")`). It also starts exactly at the frozen
# model. At the first step, which gradient is exactly zero: `"dA"`, `"dB"`, `"both"` or
# `"neither"`? Answer from the formulas of part 2, before running anything.

# %%
def zero_gradient_at_init2():
    """-> "dA", "dB", "both" or "neither": exactly zero at step 1 under Init[2]."""
    raise NotImplementedError("your answer: return ...")


# %%
A2, B2 = init_factors(rng, d_in, d_out, LoRAConfig(r=r, alpha=alpha, init="zero_A"), np,
                      "float64")
y2, cache2 = layers.lora_linear_forward(x, W, b, A2, B2, scale)
assert np.array_equal(y2, y_frozen)  # Init[2] starts at the frozen model too
_, _, _, dA2, dB2 = layers.lora_linear_backward(dy, cache2)
zero = {(True, True): "both", (True, False): "dA", (False, True): "dB", (False, False): "neither"}
ex.check(zero_gradient_at_init2, [("Init[2], this lesson's x and dy", (),
                                   zero[bool(np.all(dA2 == 0)), bool(np.all(dB2 == 0))])])

# %% [markdown]
# **Inline question 1 (written).** Why that gradient? And part 4 showed that a gradient check
# at `B = 0` proves nothing about `dA`: which formula can a check at Init[2]'s starting point
# *not* test, and which bug of that formula would it miss?
#
# *Your answer:* (write it here)

# %% [markdown]
# **Exercise 2 (derive): a vector between the factors.** AdaLoRA writes the update as
# `P diag(s) Q`: a vector `s` of `r` numbers between the two factors, so that it can switch
# single directions off. In our row form the layer is
#
# `y = x W + b + scale ((x A) * s) B`,  with `s` of shape `(r,)` multiplying each row of `x A`.
#
# Return `(dA, ds, dB)` for the fake loss's `dy`. (Name each intermediate, as in part 2; a
# broadcast in the forward is a sum in the backward.)

# %%
def svd_lora_grads(x, dy, A, s, B, scale):
    """-> (dA (d_in, r), ds (r,), dB (r, d_out)) of y = x W + b + scale ((x A) * s) B."""
    raise NotImplementedError("your lines")


# %%
def svd_lora_numerical(s_vec, scale_):
    """(dA, ds, dB) by centred differences of the fake loss, at this lesson's random x, A, B."""
    s_arr = s_vec.copy()

    def loss():
        return float(((x @ W + b + scale_ * ((x @ A) * s_arr) @ B) * g).sum())

    return numerical_grad(loss, A), numerical_grad(loss, s_arr), numerical_grad(loss, B)


s_cases = (np.array([0.5, -2.0]), rng.standard_normal(r))
ex.check(svd_lora_grads, [(f"s = {np.round(sv, 2)}, scale {sc:g}", (x, dy, A, sv, B, sc),
                           svd_lora_numerical(sv, sc)) for sv, sc in zip(s_cases, (scale, 3.0))],
         rtol=1e-6, atol=1e-8)

# %% [markdown]
# **Exercise 3 (derive): dropout on the input of `A`.** PEFT's `lora_dropout` drops entries of
# the LoRA path's input only: with a fixed mask `m` (shaped like `x`, entries `0` or
# `1 / (1 - p)`),
#
# `y = x W + b + scale ((x * m) A) B`.
#
# Return `dx`. (Two paths again; on which of them does the mask act?)

# %%
def dropout_grad_x(dy, W, A, B, scale, m):
    """dL/dx of y = x W + b + scale ((x * m) A) B, shape (N, d_in)."""
    raise NotImplementedError("your line: return ...")


# %%
def dropout_dx_numerical(m):
    """dx by centred differences, mask m held fixed."""
    x_arr = x.copy()
    return numerical_grad(lambda: float(((x_arr @ W + b + scale * ((x_arr * m) @ A) @ B) * g
                                          ).sum()), x_arr)


masks = [(rng.random(x.shape) > p) / (1 - p) for p in (0.5, 0.25)]
ex.check(dropout_grad_x, [(f"a mask with p = {p}", (dy, W, A, B, scale, m),
                           dropout_dx_numerical(m)) for p, m in zip((0.5, 0.25), masks)],
         rtol=1e-6, atol=1e-8)

# %% [markdown]
# **Exercise 4 (predict): double `alpha`.** Keep `x`, `A`, `B` and the upstream `dy`, and double
# `alpha` (so `scale` doubles). By what factor does each of these change: the LoRA path's
# output `scale (x A) B`, `dA`, `dB`? Return the three factors.

# %%
def factors_when_alpha_doubles():
    """-> (factor of the LoRA path's output, factor of dA, factor of dB)."""
    raise NotImplementedError("your answer: return (..., ..., ...)")


# %%
def lora_part_and_grads(s_):
    """(the LoRA path's output, dA, dB) at scale s_, with the library's layer."""
    y_s, cache_s = layers.lora_linear_forward(x, W, b, A, B, s_)
    _, _, _, dA_s, dB_s = layers.lora_linear_backward(dy, cache_s)
    return y_s - y_frozen, dA_s, dB_s


one, two = lora_part_and_grads(scale), lora_part_and_grads(2 * scale)
measured = tuple(float(np.linalg.norm(b_) / np.linalg.norm(a_)) for a_, b_ in zip(one, two))
ex.check(factors_when_alpha_doubles, [("scale 2 -> 4, this lesson's arrays", (), measured)])

# %% [markdown]
# **Exercise 5 (predict): the step of the check.** `numerical_grad` uses
# `(L(θ + h) - L(θ - h)) / 2h` with `h = 1e-5`. Our fake loss is *linear* in `A`. Of `h = 1e-1`
# and `h = 1e-12`, which gives the larger error on `dA`? Return that `h`.
#
# **Inline question 2 (written).** Why? (What does a centred difference get wrong for a curved
# loss, what does floating point get wrong for a tiny `h`, and which of the two is zero here?)
#
# *Your answer:* (write it here)

# %%
def worse_step():
    """-> 1e-1 or 1e-12: the step h that gives the larger error of the centred difference."""
    raise NotImplementedError("your answer: return ...")


# %%
errors = {h: rel_error(dA, numerical_grad(L, A, h=h)) for h in (1e-1, 1e-12)}
print("(measured after your answer: relative errors "
      + ", ".join(f"h = {h:g}: {e:.1e}" for h, e in errors.items()) + ")")
ex.check(worse_step, [("this lesson's fake loss and dA", (), max(errors, key=errors.get))])
print(f"this lesson ran in {time.perf_counter() - T0:.1f} s (fast mode: {FAST})")

# %% [markdown]
# ## Recap
# - LoRA adds `scale (x A) B` to a frozen layer; each gradient (`dB = u^T dy`,
#   `dA = x^T (scale dy B^T)`, `dx` summed over two paths) is one matmul, checked numerically.
# - `B = 0` at init keeps the model exactly at the pretrained one, and makes `dA` exactly zero at
#   step 1: `B` moves first, `A` follows.
# - So a gradient check at `B = 0` proves nothing about `dA`: always check at a random `B`.
