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

from tinylora.gradcheck import TOLERANCE, numerical_grad, rel_error
from tinylora.lab import analytic_toy as toy
from tinylora.lab.fit import loglog_slope
from tinylora.lessons.exercises import Exercises  # the checker of every exercise
from tinylora.optim import Adam

T0 = time.perf_counter()
FAST = os.environ.get("TINYLORA_FAST") == "1"
rng = np.random.default_rng(0)  # every random number in this lesson comes from this seed
ex = Exercises("03_the_analytic_toy")

widths = [2**k for k in range(4, 13 if FAST else 17)]  # 16 .. 4096 (fast) or 65536
lr = 0.05  # the base learning rate of every schedule (toy.rates); part 5 doubles it
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
ax1.bar(range(n), terms, color="C0", label=f"b Δa_i x_i (sum = delta1 = {terms.sum():+.3g})")
ax1.set_ylim(1.6 * min(terms.min(), 0), 1.6 * max(terms.max(), 0))  # one end at 0, where the
# bars start; room beyond their other end for the legend
ax1.set(xlabel="coordinate i (n = 8)", ylabel="contribution to delta1",
        title="Δa is along x: n terms of one sign")
ax1.legend(fontsize=8, loc="upper center" if terms.max() > 0 else "lower center")
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
# gradient's size (exactly `eta` at step 1, lesson 2; a fixed fraction of `eta` for `a`'s first
# move, exercise 4; later steps are shorter), so for Adam at these early steps
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
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
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
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.15))  # below
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
# The runs above used the base `lr = 0.05`, so the `theory` schedule had `eta_B = 16 lr = 0.8`:
# under gradient descent `b` then settles on the target (the toy's `f` converges to `y = 1`),
# identically at every width, since with `eta_A n` and `eta_B` fixed the run does not depend on
# `n` at all. Double the constant (`lr = 0.1`, `eta_B = 1.6`) and `b` overshoots
# (`U_1 = eta_B - 1 = 0.6`, and each later step overshoots more): the run diverges, again at
# every width. The schedule fixes how the rates move with `n`; the constant in front is a
# hyper-parameter, tuned at one width. (Adam's sign-like steps keep `f` bounded at both
# constants here; it does not reach the target faster for that.)

# %%
def theory_run(n, base_lr, n_steps, optimizer="gd"):
    """f at steps 1..n_steps under the theory schedule, or None if the run diverged."""
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            f_steps = toy.run_width(n, "theory", optimizer, steps=n_steps, lr=base_lr)["f"]
        except ValueError:  # the optimizer refuses a non-finite gradient: diverged
            return None
    return f_steps if all(math.isfinite(v) and abs(v) < 1e6 for v in f_steps) else None


calm = {n: theory_run(n, lr, 30) for n in widths}
print(f"lr = {lr}, gradient descent, f at steps 1..6:", [round(v, 2) for v in calm[widths[0]][:6]],
      "(every width)")
assert all(np.allclose(calm[n], calm[widths[0]], rtol=1e-9) for n in widths)
assert all(abs(f[-1] - 1) < 1e-3 for f in calm.values())  # converged at every width
adam_f = [theory_run(n, lr, 30, "adam") for n in widths]
print(f"lr = {lr}, Adam: |f| <= {max(max(map(abs, f)) for f in adam_f):.2f} over 30 steps at "
      "every width")
assert all(f is not None and max(map(abs, f)) < 3 for f in adam_f)
diverged = [theory_run(n, 2 * lr, 30) is None for n in widths]
print(f"lr = {2 * lr}, gradient descent: diverged within 30 steps at {sum(diverged)} of "
      f"{len(widths)} widths")
assert all(diverged)

# %% [markdown]
# ## Your turn: predict, derive, check
# Each exercise is a function to complete (replace the `raise`), then a checker cell. The
# checker calls your function on a few cases and prints `right.`, or the first case it gets
# wrong with what it expected and what came back. Nothing above answers them: *predict*
# exercises ask for an answer before the experiment that shows it (the checker runs it),
# *derive* exercises for a closed form the lesson did not write. The solutions are in
# `lessons/solutions/03_the_analytic_toy.py`: try first.
#
# **Exercise 1 (derive): Init[2]'s first two steps.** Under Init[2] the toy starts from
# `a_0 = 0` and `b_0 = 1` (`toy.run_width(..., init=2)`), with `y = 1`. Redo part 3 for it:
# under gradient descent, return `delta1` and `delta2` at step 1 and at step 2, as functions of
# `eta_A`, `eta_B` and `n`. (Which factor cannot move at step 1 now? Write `u = eta_A n`.)

# %%
def init2_deltas(eta_A, eta_B, n):
    """-> (delta1 at step 1, delta2 at step 1, delta1 at step 2, delta2 at step 2), GD, Init[2]."""
    raise NotImplementedError("your lines")


# %%
def init2_measured(schedule, n):
    got = toy.run_width(n, schedule, "gd", steps=2, init=2, lr=lr)
    return got["delta1"][0], got["delta2"][0], got["delta1"][1], got["delta2"][1]


ex.check(init2_deltas, [(f"{schedule}, n = {n}", (*toy.rates(schedule, n, lr), n),
                         init2_measured(schedule, n))
                        for schedule in ("shared", "theory") for n in (16, 1024)])

# %% [markdown]
# **Exercise 2 (predict): shrink the one shared rate.** Under Init[1] and gradient descent, take
# one shared rate `eta_A = eta_B = eta ~ n^-c`. Return the log-log slopes of `|delta1|` and
# `|delta2|` against the width at step 2, for any `c` (part 3's closed forms, large `n`). Is
# there a `c` that keeps both at slope 0?

# %%
def step2_slopes(c):
    """-> (slope of |delta1|, slope of |delta2|) at step 2, GD, Init[1], eta ~ n^-c."""
    raise NotImplementedError("your line: return (..., ...)")


# %%
def shared_power_slopes(c, base=0.05, n0=16):
    """The toy's two GD steps from Init[1] (s_0 = 1, b_0 = 0, y = 1) at eta = base (n0/n)^c,
    written as the recurrence of toy.run_width (a moves along x); -> the two fitted slopes."""
    ns = [2**k for k in range(6, 17)]
    d1, d2 = [], []
    for n_ in ns:
        eta = base * (n0 / n_) ** c
        s_, b_ = 1.0, 0.0
        b_ -= eta * s_ * (b_ * s_ - 1)  # step 1: a cannot move (its gradient is b U x = 0)
        U1 = b_ * s_ - 1
        ds, db_ = -eta * b_ * U1 * n_, -eta * s_ * U1  # step 2: s = a^T x moves by -eta b U n
        d1.append(abs(b_ * ds))
        d2.append(abs(db_ * s_))
    return loglog_slope(ns, d1).slope, loglog_slope(ns, d2).slope


ex.check(step2_slopes, [(f"c = {c:.3g}", (c,), shared_power_slopes(c)) for c in (0.5, 1 / 3, 1.0)],
         atol=0.05)

# %% [markdown]
# **Exercise 3 (predict): a fixed ratio.** The schedule `loraplus16` keeps `eta_B = 16 eta_A`
# and scales neither with `n` (LoRA+ with a fixed ratio). Under gradient descent and under
# Adam, return the slopes of `|delta1|` and `|delta2|` at step 2.

# %%
def fixed_ratio_slopes(optimizer):
    """-> (slope of |delta1|, slope of |delta2|) at step 2 under loraplus16, Init[1]."""
    raise NotImplementedError("your line: return (..., ...)")


# %%
lp_fits = {(f["optimizer"], f["quantity"]): f["slope"] for f in toy.slopes(
    toy.run(widths, steps=2, schedules=("loraplus16",), lr=lr), init=1) if f["step"] == 2}
ex.check(fixed_ratio_slopes, [(opt, (opt,), (lp_fits[opt, "delta1"], lp_fits[opt, "delta2"]))
                              for opt in toy.OPTIMIZERS], atol=0.05)

# %% [markdown]
# **Exercise 4 (derive): Adam's factor at step 2.** Under Init[1], `a`'s first gradient is 0
# and its second is `g`. Return the factor `k` with `|a_2 - a_1| = k eta_A` per coordinate
# (Adam with `beta1`, `beta2`, bias corrections, `eps` negligible; lesson 2's table).

# %%
def adam_step2_factor(beta1=0.9, beta2=0.999):
    """|Adam's second step| / lr when the first gradient was 0."""
    raise NotImplementedError("your line: return ...")


# %%
def measured_step2_factor(beta1, beta2):
    p_ = {"a": np.zeros(3)}
    opt_ = Adam(p_, lr=1e-3, betas=(beta1, beta2))
    opt_.step({"a": np.zeros(3)})  # the first gradient: 0 (b = 0 under Init[1])
    opt_.step({"a": np.array([0.5, -3.0, 20.0])})  # the second: any size
    return float(np.abs(p_["a"]).mean()) / 1e-3


ex.check(adam_step2_factor, [(f"beta1 = {b1}, beta2 = {b2}", (b1, b2),
                              measured_step2_factor(b1, b2)) for b1, b2 in ((0.9, 0.999),
                                                                            (0.8, 0.99))],
         rtol=1e-6)

# %% [markdown]
# **Exercise 5 (predict): the balanced rates under Init[2].** The *balanced* rates at step 2
# are the `(eta_A, eta_B)` at which `|delta1| = |delta2| = c`, a small fixed size. With Adam and
# Init[1], the counting above gives `eta_A* ~ n^-1`, `eta_B* ~ n^0`, so the ratio grows like
# `n^1`. Under Init[2] (exercise 1 tells you which factor moves first, and which rate each delta
# carries), return the exponents of `(eta_A*, eta_B*, eta_B* / eta_A*)` against `n`.

# %%
def balanced_exponents_init2():
    """-> (exponent of eta_A*, of eta_B*, of the ratio) against n: Adam, Init[2], step 2."""
    raise NotImplementedError("your line: return (..., ..., ...)")


# %%
def init2_adam_deltas(n, eta_A, eta_B):
    """|delta1|, |delta2| at step 2 of the toy under Init[2] and Adam (tinylora.optim.Adam)."""
    x_ = np.random.default_rng(5).choice([-1.0, 1.0], size=n)
    p_ = {"a": np.zeros(n), "b": np.ones(1)}
    opt_ = Adam(p_, groups=[{"params": ["a"], "lr": eta_A}, {"params": ["b"], "lr": eta_B}])
    for _ in range(2):
        s_ = p_["a"] @ x_
        U = p_["b"][0] * s_ - 1.0
        a_prev, b_prev = p_["a"].copy(), p_["b"][0]
        opt_.step({"a": p_["b"][0] * U * x_, "b": np.array([s_ * U])})
    return abs(b_prev * ((p_["a"] - a_prev) @ x_)), abs((p_["b"][0] - b_prev) * (a_prev @ x_))


def balanced_rates(n, c=0.01):
    """(eta_A*, eta_B*): |delta1| = c by bisection on log eta_A (delta1 does not depend on eta_B
    here: b cannot move at step 1), then eta_B* from |delta2|, which is linear in eta_B."""
    lo, hi = -12.0, 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if init2_adam_deltas(n, 10**mid, 1.0)[0] < c else (lo, mid)
    eta_A_star = 10 ** ((lo + hi) / 2)
    return eta_A_star, c / init2_adam_deltas(n, eta_A_star, 1.0)[1]


balance_widths = [64, 256, 1024, 4096]
stars = np.array([balanced_rates(n) for n in balance_widths])
exponents = tuple(loglog_slope(balance_widths, v).slope
                  for v in (stars[:, 0], stars[:, 1], stars[:, 1] / stars[:, 0]))
ex.check(balanced_exponents_init2, [("Adam, Init[2], step 2, c = 0.01, n = 64 .. 4096", (),
                                     exponents)], atol=0.02)

# %% [markdown]
# **Inline question (written).** Part 5 showed that the theory schedule still needs its
# constant tuned. You have a budget for one learning-rate sweep at `n = 256` and must train at
# `n = 65536`. What do you sweep, and how do you move the two rates you found to the large
# width? What would go wrong if you moved both by the same factor?
#
# *Your answer:* (write it here)

# %%
print(f"this lesson ran in {time.perf_counter() - T0:.1f} s (fast mode: {FAST})")

# %% [markdown]
# ## Recap
# - One step of LoRA changes the output by `delta1` (A moved) `+ delta2` (B moved) `+ delta3`;
#   in the toy `delta1 ~ eta_A eta_B^2 n` (GD) or `eta_A eta_B n` (Adam), `delta2 ~ eta_B`.
# - So one shared rate makes `delta1` grow like `n`, or, shrunk to stop it, `delta2` vanish;
#   `eta_A ~ 1/n`, `eta_B ~ 1` makes both width-free: the ratio `eta_B / eta_A` must grow like
#   `n`. The constant in front still needs tuning: too large, and the run diverges at every width.
# - In this toy the measured log-log slopes equal the theory's exactly; lesson 8 asks the same
#   question of a network that must actually learn.
