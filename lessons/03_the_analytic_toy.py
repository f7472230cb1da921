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
# # Lesson 3: The analytic toy
#
# **Goal.** The LoRA+ paper's argument fits in one "layer" of width `n` with scalar output:
# `f(x) = b a^T x` (its Eq. 2). We take its steps by hand, split each step's change of the output
# into `delta1` (what moving `a` did), `delta2` (what moving `b` did) and `delta3` (both), and
# measure how each scales with the width, from `n = 16` to `n = 65536`: with one shared learning
# rate, and with the paper's `eta_A ~ 1/n`, `eta_B ~ 1`. The fitted log-log slopes land on the
# theory's numbers. In the toy `a` and `b` are rank-1 `A` and `B`, so their rates are still
# `eta_A` and `eta_B` (the card in `lessons/README.md`); the toy is `docs/paper.md`'s
# "analytic toy" (the paper's Eq. 2, Propositions 1 and 2).
#
# With `TINYLORA_FAST=1` (what the tests use) the widths stop at 4096; the last cell prints how
# long the lesson took.

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
from exercises import Exercises  # lessons/exercises.py: the checker of every exercise

from tinylora.gradcheck import TOLERANCE, numerical_grad, rel_error
from tinylora.lab import analytic_toy as toy
from tinylora.lab.fit import loglog_slope

T0 = time.perf_counter()
FAST = os.environ.get("TINYLORA_FAST") == "1"
rng = np.random.default_rng(0)  # every random number in this lesson comes from this seed
ex = Exercises("03_the_analytic_toy")

widths = [2**k for k in range(4, 13 if FAST else 17)]  # 16 .. 4096 (fast) or 65536
lr = 0.1  # the base learning rate of every schedule (toy.rates)
print(f"widths {widths[0]} .. {widths[-1]} ({len(widths)} of them), base lr = {lr}")

# %% [markdown]
# ## 1. The model and its gradients
#
# | quantity | formula | shape |
# |---|---|---|
# | input | `x`, coordinates `+-1` (so `\|\|x\|\|^2 = n` exactly) | `(n,)` |
# | down (the paper's `Z_A`) | `s = a^T x` | scalar |
# | output | `f = b s` | scalar |
# | loss, one data point | `L = (f - y)^2 / 2`, `U = f - y` | scalar |
#
# `a` is the input-side factor (LoRA's `A`, here rank 1) and `b` the output-side one (`B`). The
# frozen weight is 0 (replace `y` by `y - W* x`). By the chain rule:
#
# `dL/db = U s`   and   `dL/da = U b x`  (shape `(n,)`)
#
# Check both by finite differences at a point where neither is degenerate (`b != 0`, lesson 1).

# %%
n = 8
x = rng.choice([-1.0, 1.0], size=n)
a = rng.standard_normal(n) / math.sqrt(n)
b = np.array([0.7])  # a 1-element array, so that numerical_grad can nudge it in place
y = 1.0


def L():
    return 0.5 * (float(b[0] * (a @ x)) - y) ** 2


s, U = a @ x, b[0] * (a @ x) - y
db, da = np.array([U * s]), U * b[0] * x
for name, analytic, arr in (("dL/db", db, b), ("dL/da", da, a)):
    err = rel_error(analytic, numerical_grad(L, arr))
    print(f"{name}: relative error {err:.1e}")
    assert err < TOLERANCE

# %% [markdown]
# ## 2. One step, split in three
#
# A gradient-descent step moves `a` by `-eta_A U b x` and `b` by `-eta_B U s`. The output moves
# from `b s` to `(b + Δb)(s + Δs)`, with `Δs = (Δa)^T x`, and the product expands into three
# terms (`docs/paper.md`):
#
# `f_t - f_{t-1} = b Δs + Δb s + Δb Δs = delta1 + delta2 + delta3`
#
# `delta1`: `a` moved, `b` held; `delta2`: `b` moved, `a` held; `delta3`: both (second order).
# The identity is exact algebra: it must hold to round-off at every step of every run.

# %%
eta_A, eta_B = 0.05, 0.2
a_new, b_new = a - eta_A * da, b - eta_B * db
delta1 = b[0] * ((a_new - a) @ x)
delta2 = (b_new[0] - b[0]) * (a @ x)
delta3 = (b_new[0] - b[0]) * ((a_new - a) @ x)
f_before, f_after = b[0] * (a @ x), b_new[0] * (a_new @ x)
print(f"f: {f_before:.6f} -> {f_after:.6f}; delta1 {delta1:+.6f}, delta2 {delta2:+.6f}, "
      f"delta3 {delta3:+.6f}")
assert math.isclose(f_after - f_before, delta1 + delta2 + delta3, rel_tol=1e-12)

# The gradient of a is along x, so delta1 = -eta_A U b^2 ||x||^2 = -eta_A U b^2 n: the width
# enters through ||x||^2 = n. delta2 = -eta_B U s^2 has no n in it.
assert math.isclose(delta1, -eta_A * U * b[0] ** 2 * n, rel_tol=1e-12)
assert math.isclose(delta2, -eta_B * U * s**2, rel_tol=1e-12)
print(f"delta1 = -eta_A U b^2 n = {-eta_A * U * b[0]**2 * n:+.6f}  (n = {n})")

# %% [markdown]
# **Why `||x||^2 = n` makes `delta1` grow.** `delta1 = b (Δa)^T x = sum_i b Δa_i x_i`, and the
# step `Δa = -eta_A U b x` points *along* `x`: every one of the `n` terms is
# `-eta_A U b^2 x_i^2`, all of the same sign, so they add up to `n` times one term. Had `Δa`
# pointed in a random direction of the same size, the signs would cancel and the sum would grow
# like `sqrt(n)` only. `delta2 = Δb s` is one product of two width-free numbers.

# %%
picture_widths = [2**k for k in range(2, 13 if FAST else 17)]
draws = np.random.default_rng(3)
aligned, random_dir = [], []
for n_pic in picture_widths:
    x_pic = draws.choice([-1.0, 1.0], size=n_pic)
    aligned.append(float(x_pic @ x_pic))  # Δa along x: sum of n equal terms, = n
    signs = draws.choice([-1.0, 1.0], size=(64, n_pic))  # 64 random directions of the same size
    random_dir.append(float(np.abs(signs @ x_pic).mean()))  # ~ sqrt(2 n / pi)
slope_aligned = loglog_slope(picture_widths, aligned).slope
slope_random = loglog_slope(picture_widths, random_dir).slope
print(f"sum_i x_i Δa_i / (size of one term): along x slope {slope_aligned:.3f}, random direction "
      f"slope {slope_random:.3f}")
assert np.array_equal(aligned, picture_widths) and abs(slope_random - 0.5) < 0.1

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
terms = -eta_A * U * b[0] ** 2 * x**2  # the n = 8 terms of delta1 from part 2, all equal
ax1.bar(range(n), terms, color="C0", label=f"b Δa_i x_i (sum = delta1 = {terms.sum():+.4f})")
ax1.axhline(0, color="gray", lw=0.8)
ax1.margins(y=0.35)  # room for the legend
ax1.set(xlabel="coordinate i (n = 8)", ylabel="contribution to delta1",
        title="Δa is along x: n terms of one sign")
ax1.legend(fontsize=8)
ax2.loglog(picture_widths, aligned, "o-", base=2, label=f"Δa along x (slope {slope_aligned:.2f})")
ax2.loglog(picture_widths, random_dir, "s-", base=2,
           label=f"Δa in a random direction (slope {slope_random:.2f})")
ax2.set(xlabel="width n", ylabel="|sum_i x_i Δa_i| / |one term|",
        title="aligned terms add like n, random ones like sqrt(n)")
ax2.legend(fontsize=8)
for ax in (ax1, ax2):
    ax.grid(alpha=0.3, which="both")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The first two steps under Init[1], in closed form
#
# `tinylora.lab.analytic_toy` runs exactly this model at any width. Init[1]: `b_0 = 0` and
# `a_0 ~ N(0, 1/n)`, moved along `x` so that `s_0 = a_0^T x = 1` at every width (the only random
# number that matters, fixed, so widths differ only through `n`); `y = 1`, so `U_0 = -1`.
#
# - **Step 1.** `dL/da = U b x = 0` because `b_0 = 0`: `a` does not move, `delta1 = delta3 = 0`.
#   `b_1 = eta_B`, and `delta2 = eta_B`.
# - **Step 2.** `U_1 = b_1 s_1 - 1 = eta_B - 1`, and from part 2:
#   `delta1 = -eta_A b_1^2 U_1 n = eta_A eta_B^2 (1 - eta_B) n`,
#   `delta2 = -eta_B U_1 s_1^2 = eta_B (1 - eta_B)`.
#
# So at step 2 `delta1 ~ eta_A eta_B^2 n` and `delta2 ~ eta_B`: the paper's counting. With one
# shared rate `eta` independent of `n`, `delta1` grows like `n`; shrinking `eta` to stop that
# makes `delta2` vanish (the paper's Proposition 1). `eta_A ~ 1/n`, `eta_B ~ 1` makes both
# terms *width-free* (Proposition 2): the same numbers at every width. Width-free is not the
# same as stable: the constants in front still have to be tuned (part 5).
#
# The closed forms, checked against `toy.run_width` (gradient descent) at every width, for the
# schedules `shared` (`eta_A = eta_B = lr`) and `theory` (`eta_A = lr n0 / n`, `eta_B = 16 lr`,
# base width `n0 = 16`; `toy.rates`):

# %%
for schedule in ("shared", "theory"):
    for n in widths:
        ea, eb = toy.rates(schedule, n, lr)
        got = toy.run_width(n, schedule, "gd", steps=2, lr=lr)
        assert got["delta1"][0] == 0 and got["delta3"][0] == 0
        assert math.isclose(got["delta2"][0], eb, rel_tol=1e-9)
        assert math.isclose(got["delta1"][1], ea * eb**2 * (1 - eb) * n, rel_tol=1e-9)
        assert math.isclose(got["delta2"][1], eb * (1 - eb), rel_tol=1e-9)
    ea_hi, eb_hi = toy.rates(schedule, widths[-1], lr)
    print(f"{schedule:>7}: closed forms hold at all {len(widths)} widths; at n = {widths[-1]}: "
          f"eta_A = {ea_hi:.2e}, eta_B = {eb_hi:g}, delta1(step 2) = "
          f"{ea_hi * eb_hi**2 * (1 - eb_hi) * widths[-1]:+.3g}")

# %% [markdown]
# ## 4. Experiment: slopes against the width
#
# `toy.run` trains every (optimizer, schedule, width) for a few steps and returns records (one
# row per step and quantity); `toy.slopes` fits `|delta| ~ c n^slope` by least squares in
# log-log axes (`tinylora.lab.fit.loglog_slope`) and puts the theory's slope beside it
# (`toy.theory_slope`, derived in `tinylora/lab/analytic_toy.py`'s docstring). Both optimizers:
# gradient descent, and Adam, whose first steps move each coordinate by about `eta` whatever the
# gradient's size (exactly `eta` at step 1, lesson 2; `0.744 eta` for `a`'s first move,
# experiment 4; later steps are shorter), so for Adam at these early steps
# `delta1 ~ eta_A eta_B n` (one factor `eta_B`, not two): the slopes below check it.

# %%
steps = 3
rows = toy.run(widths, steps=steps, init=1, schedules=("shared", "theory"), lr=lr)
fits = toy.slopes(rows, init=1)
print(f"{len(rows)} records, e.g. {rows[0]}")
print("step 2: measured slope of log|delta| against log n (theory in brackets)")
by_key = {(f["optimizer"], f["schedule"], f["step"], f["quantity"]): f for f in fits}
for opt in toy.OPTIMIZERS:
    for schedule in ("shared", "theory"):
        cells = []
        for q in toy.DELTAS:
            f = by_key[opt, schedule, 2, q]
            cells.append(f"{q} {round(f['slope'], 3) + 0.0:+.3f} ({f['theory']:+.2f})")
        print(f"  {opt:>4} {schedule:>7}: " + ",  ".join(cells))

exact = [f for f in fits if f["exact"] and f["slope"] is not None and f["theory"] is not None]
gap = max(abs(f["slope"] - f["theory"]) for f in exact)
print(f"{len(exact)} slopes the theory predicts exactly: largest |measured - theory| = {gap:.1e}")
assert gap < 1e-6
assert all(f["slope"] is None for f in fits  # step 1 under Init[1]: a cannot move
           if f["step"] == 1 and f["quantity"] in ("delta1", "delta3"))

# %% [markdown]
# **The invariant, on every record.** `f_t - f_{t-1} = delta1 + delta2 + delta3` at every step of
# every run (with `f_0 = b_0 s_0 = 0` under Init[1]), whether the run is calm or exploding.

# %%
runs = {}
for r in rows:
    runs.setdefault((r["optimizer"], r["schedule"], r["width"]), {}).setdefault(
        r["quantity"], {})[r["step"]] = r["value"]
checked = 0
for run in runs.values():
    for t in range(1, steps + 1):
        f_prev = run["f"][t - 1] if t > 1 else 0.0
        total = run["delta1"][t] + run["delta2"][t] + run["delta3"][t]
        if math.isfinite(run["f"][t]):
            step_change = run["f"][t] - f_prev
            assert math.isclose(step_change, total, rel_tol=1e-9, abs_tol=1e-12)  # THE INVARIANT
            checked += 1
largest_f, where = max((abs(v), (*key, t)) for key, run in runs.items()
                       for t, v in run["f"].items())
print(f"f_t - f_(t-1) = delta1 + delta2 + delta3 on {checked} steps; the largest |f|, "
      f"{largest_f:.2g}, is at (optimizer, schedule, width, step) = {where} (the target is y = 1)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, opt in zip(axes, toy.OPTIMIZERS):
    for schedule, style in (("shared", "-"), ("theory", "--")):
        for q, color in (("delta1", "C0"), ("delta2", "C1")):
            values = [abs(r["value"]) for r in rows if (r["optimizer"], r["schedule"], r["step"],
                      r["quantity"]) == (opt, schedule, 2, q)]
            ax.loglog(widths, values, style, marker="o", ms=3, base=2, color=color,
                      label=f"{q}, {schedule} "
                            f"(slope {round(by_key[opt, schedule, 2, q]['slope'], 2) + 0.0:+.2f})")
    ax.set(xlabel="width n", title=f"{'gradient descent' if opt == 'gd' else 'Adam'}, step 2")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
axes[0].set_ylabel("|delta| at step 2")
fig.suptitle("Analytic toy, Init[1]: solid = one shared rate, dashed = eta_A ~ 1/n, eta_B ~ 1")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.**
# - Solid blue (`delta1`, shared rate) is a straight line of slope 1 for both optimizers: what
#   `a` does to the output grows in proportion to the width. At `n = 65536` (full mode) it is
#   thousands of times larger than at `n = 16`, and the run blows up a step later (the
#   largest `|f|` printed above, against a target of 1).
# - Solid orange (`delta2`, shared) is flat: `b`'s effect does not care about `n`.
# - Dashed (the theory's schedule): both flat, and the run is the same function of the step at
#   every width (`eta_A n` and `eta_B` are width-free), so the slopes are exactly 0. Flat in `n`
#   is not the same as stable in time: part 5.
# - The measured slopes match the theory to `1e-6` or better (printed): in this toy nothing is
#   statistical, because the only random number, `s_0`, is fixed.

# %% [markdown]
# ## 5. Width-free is not stable: the constant still needs tuning
#
# The `theory` schedule with base `lr = 0.1` has `eta_B = 16 lr = 1.6`. Under gradient descent
# the toy's `b` then overshoots (`U_1 = eta_B - 1 = 0.6`, and each later step overshoots more):
# the run diverges, identically at every width, since the run does not depend on `n` at all.
# Halving the constant (`lr = 0.05`, `eta_B = 0.8`) converges at every width. The schedule fixes
# how the rates move with `n`; the constant in front is a hyper-parameter, tuned at one width.

# %%
def theory_gd(n, base_lr, n_steps):
    """f at steps 1..n_steps under the theory schedule (GD), or None if the run diverged."""
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            f_steps = toy.run_width(n, "theory", "gd", steps=n_steps, lr=base_lr)["f"]
        except ValueError:  # the optimizer refuses a non-finite gradient: diverged
            return None
    return f_steps if all(math.isfinite(v) and abs(v) < 1e6 for v in f_steps) else None


first = {n: theory_gd(n, lr, 6) for n in widths}
print("lr = 0.1, f at steps 1..6:", [round(v, 2) for v in first[widths[0]]], "(every width)")
assert all(np.allclose(first[n], first[widths[0]], rtol=1e-9) for n in widths)
diverged = [theory_gd(n, lr, 30) is None for n in widths]
calm = {n: theory_gd(n, lr / 2, 30) for n in widths}
print(f"30 steps at lr = 0.1: diverged at {sum(diverged)} of {len(widths)} widths; at lr = 0.05: "
      f"|f - 1| <= {max(abs(f[-1] - 1) for f in calm.values()):.1e} at every width")
assert all(diverged) and all(f is not None and abs(f[-1] - 1) < 1e-3 for f in calm.values())

# %% [markdown]
# ## Experiments to try
# Each has its expected outcome; the cell after the list checks them all.
# 1. **Shrink the shared rate** like `1/sqrt(n)` (schedule `shared_sqrt`), gradient descent.
#    *Expected:* at step 2, `delta2` has slope `-1/2` (it vanishes) and `delta1`
#    `1 - 1/2 - 2 x 1/2 = -1/2`: both die. No power of `n` in one shared rate keeps both at 0:
#    with `eta ~ n^-c` the slopes are `1 - 3c` and `-c`, so `delta1`'s slope minus three times
#    `delta2`'s is always 1 under GD (the paper's Proposition 1, for this toy; its Theorem 1
#    is the general result, for Adam and networks).
# 2. **A fixed ratio is not enough.** Schedule `loraplus16` (`eta_B = 16 eta_A`, neither
#    scaled with `n`). *Expected:* the same slopes as `shared` at step 2 (`delta1` 1, `delta2`
#    0): LoRA+'s ratio must grow with the width; a fixed ratio can suit one width only.
# 3. **Init[2]** (`a_0 = 0`, `b_0 = 1`), shared rate. *Expected:* now at step 1 only `a` moves:
#    `delta2 = delta3 = 0` and `delta1 = eta_A n` exactly (`U_0 = -1`, `b_0 = 1`), slope 1.
# 4. **Adam's 0.744.** At step 2 under Init[1], `a`'s first non-zero gradient arrives after a
#    zero one. *Expected:* its bias-corrected Adam step is
#    `eta_A (0.1 / 0.19) / sqrt(0.001 / 0.001999) = 0.744 eta_A` per coordinate, so
#    `|delta1| = 0.744 eta_A |b_1| n` with `|b_1| = eta_B`.

# %%
# Answers, checked.
# 1. shared_sqrt, gradient descent
sqrt_fits = {(f["step"], f["quantity"]): f for f in toy.slopes(
    toy.run(widths, steps=2, optimizers=("gd",), schedules=("shared_sqrt",), lr=lr), init=1)}
s1, s2 = sqrt_fits[2, "delta1"]["slope"], sqrt_fits[2, "delta2"]["slope"]
print(f"1. shared_sqrt, GD, step 2: delta1 slope {s1:+.3f}, delta2 slope {s2:+.3f}")
assert abs(s1 + 0.5) < 0.05 and abs(s2 + 0.5) < 0.05
for fitted in ((s1, s2), (by_key["gd", "shared", 2, "delta1"]["slope"],
                          by_key["gd", "shared", 2, "delta2"]["slope"])):
    assert abs(fitted[0] - 3 * fitted[1] - 1) < 0.05  # slope(delta1) - 3 slope(delta2) = 1

# 2. a fixed ratio of 16
lp_fits = {(f["optimizer"], f["step"], f["quantity"]): f["slope"] for f in toy.slopes(
    toy.run(widths, steps=2, schedules=("loraplus16",), lr=lr), init=1)}
print("2. loraplus16, step 2: " + ", ".join(
    f"{o} {q} {lp_fits[o, 2, q]:+.3f}" for o in toy.OPTIMIZERS for q in ("delta1", "delta2")))
for o in toy.OPTIMIZERS:
    assert abs(lp_fits[o, 2, "delta1"] - 1) < 1e-6 and abs(lp_fits[o, 2, "delta2"]) < 1e-6

# 3. Init[2]
for n in (widths[0], widths[-1]):
    got = toy.run_width(n, "shared", "gd", steps=1, init=2, lr=lr)
    assert got["delta2"][0] == 0 and got["delta3"][0] == 0
    assert math.isclose(got["delta1"][0], lr * n, rel_tol=1e-12)
print(f"3. Init[2], step 1: delta1 = eta_A n exactly (e.g. {lr * widths[-1]:g} at n = "
      f"{widths[-1]}); delta2 = delta3 = 0")

# 4. Adam's 0.744
factor = (0.1 / (1 - 0.9**2)) / math.sqrt(0.001 / (1 - 0.999**2))
for n in (widths[0], widths[-1]):
    ea, eb = toy.rates("shared", n, lr)
    got = toy.run_width(n, "shared", "adam", steps=2, lr=lr)
    assert math.isclose(abs(got["delta1"][1]), factor * ea * eb * n, rel_tol=1e-6)
print(f"4. Adam at step 2: |delta1| / (eta_A eta_B n) = {factor:.4f}")

# %% [markdown]
# ## Exercises: your turn
# Complete each function (replace the `raise`), then run the checker below it. The solutions are
# in `lessons/solutions/03_the_analytic_toy.py`: try first.
#
# **Exercise 1: one step, split in three.** From `a`, `b` (a 1-element array), `x`, `y` and
# the two rates, take one gradient-descent step and return `(delta1, delta2, delta3)`.

# %%
def one_step_deltas(a, b, x, y, eta_A, eta_B):
    """-> (delta1, delta2, delta3) of one GD step of f = b a^T x, L = (f - y)^2 / 2."""
    raise NotImplementedError("your lines")


# %%
def matches_part_2(f):
    got = f(a, b, x, y, 0.05, 0.2)
    x2, a2 = rng.standard_normal(16), rng.standard_normal(16)  # a second, random point
    U2 = 0.3 * (a2 @ x2) - 2.0
    d = f(a2, np.array([0.3]), x2, 2.0, 0.01, 0.5)
    f_change = (0.3 - 0.5 * U2 * (a2 @ x2)) * ((a2 - 0.01 * U2 * 0.3 * x2) @ x2) - 0.3 * (a2 @ x2)
    return np.allclose(got, (delta1, delta2, delta3), rtol=1e-12) and math.isclose(
        sum(d), f_change, rel_tol=1e-9) and math.isclose(d[1], -0.5 * U2 * (a2 @ x2) ** 2)


ex.check(one_step_deltas, matches_part_2)

# %% [markdown]
# **Exercise 2: `delta1` at step 2, in closed form.** Under Init[1] (`b_0 = 0`, `s_0 = 1`,
# `y = 1`) and gradient descent, return `delta1` at step 2 for the rates and the width `n`.

# %%
def delta1_at_step2(eta_A, eta_B, n):
    """delta1 of the second GD step of the toy, Init[1]."""
    raise NotImplementedError("your line: return ...")


# %%
def matches_the_toy(f):
    return all(math.isclose(f(*toy.rates(sched, n, lr), n),
                            toy.run_width(n, sched, "gd", steps=2, lr=lr)["delta1"][1],
                            rel_tol=1e-9) for sched in ("shared", "theory") for n in (16, 1024))


ex.check(delta1_at_step2, matches_the_toy)

# %% [markdown]
# **Exercise 3: predict the slopes.** Under gradient descent with one shared rate
# `eta_A = eta_B ~ n^-c`, return the log-log slopes `(slope of delta1, slope of delta2)` at
# step 2 against the width. The checker compares with the slopes fitted above for `c = 0`
# (`shared`) and `c = 1/2` (`shared_sqrt`).

# %%
def step2_slopes(c):
    """-> (slope of |delta1|, slope of |delta2|) at step 2, GD, eta ~ n^-c."""
    raise NotImplementedError("your line: return ...")


# %%
fitted = {0.0: (by_key["gd", "shared", 2, "delta1"]["slope"],
                by_key["gd", "shared", 2, "delta2"]["slope"]), 0.5: (s1, s2)}
ex.check(step2_slopes, lambda f: all(np.allclose(f(c), fitted[c], atol=0.05) for c in fitted))

# %% [markdown]
# **Exercise 4: Adam's factor at step 2.** Under Init[1], `a`'s first gradient is 0 and its
# second is `g`. Return the factor `k` with `|a_2 - a_1| = k eta_A` per coordinate (Adam with
# `beta1`, `beta2`, bias corrections, `eps` negligible).

# %%
def adam_step2_factor(beta1=0.9, beta2=0.999):
    """|Adam's second step| / lr when the first gradient was 0."""
    raise NotImplementedError("your line: return ...")


# %%
def matches_adam(f):
    got = toy.run_width(64, "shared", "adam", steps=2, lr=lr)
    ea, eb = toy.rates("shared", 64, lr)
    return math.isclose(abs(got["delta1"][1]), f() * ea * eb * 64, rel_tol=1e-6)


ex.check(adam_step2_factor, matches_adam)
print(f"this lesson ran in {time.perf_counter() - T0:.1f} s (fast mode: {FAST})")

# %% [markdown]
# ## Recap
# - One step of LoRA changes the output by `delta1` (A moved) `+ delta2` (B moved) `+ delta3`;
#   in the toy `delta1 ~ eta_A eta_B^2 n` (GD) or `eta_A eta_B n` (Adam), `delta2 ~ eta_B`.
# - So one shared rate makes `delta1` grow like `n`, or, shrunk to stop it, `delta2` vanish;
#   `eta_A ~ 1/n`, `eta_B ~ 1` makes both width-free: the ratio `eta_B / eta_A` must grow like
#   `n`. The constant in front still needs tuning: too large, and the run diverges at every width.
# - In this toy the measured log-log slopes equal the theory's exactly; lesson 4 asks the same
#   question of a network that must actually learn.
