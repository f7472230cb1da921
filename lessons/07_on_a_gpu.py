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
# # Lesson 7: On a GPU
#
# **Goal.** Run the same `tinylora` code on a GPU with CuPy, and see exactly what changes: where
# the arrays live (transfers), when the work happens (asynchronous launches, synchronisation),
# and how precise the numbers are (float32 against float64). Nothing in the library is written
# twice: the array module `xp` is NumPy or CuPy, and every function asks its arrays which.
#
# **No GPU?** The lesson still runs: every GPU cell says it is skipped, and why, and prints what
# it would have done. The float32 part runs on the CPU. With `TINYLORA_FAST=1` (what the tests
# use) the experiments are smaller; the last cell prints how long the lesson took.

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
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np  # a lesson is user code: it may use NumPy directly (the library may not)

import tinylora
import tinylora.fast
from tinylora import backend
from tinylora.backend import BackendError, cupy_available, get_xp, to_numpy, use_backend
from tinylora.gradcheck import TOLERANCE, numerical_grad, rel_error
from tinylora.groups import loraplus_groups
from tinylora.lab.shift import compare
from tinylora.layers import lora_linear_backward, lora_linear_forward
from tinylora.lessons.exercises import Exercises  # the checker of every exercise
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import Adam
from tinylora.train import loss_and_grads

T0 = time.perf_counter()
FAST = os.environ.get("TINYLORA_FAST") == "1"
ex = Exercises("07_on_a_gpu")
GPU, why_no_gpu = cupy_available()  # (True, "") where CuPy and a CUDA device both work
BACKENDS = ["numpy", "cupy"] if GPU else ["numpy"]


def skipped(would):
    """What a GPU cell says where there is no GPU."""
    print(f"SKIPPED: no GPU here ({why_no_gpu.split('. ')[0]}).")
    print(f"On a GPU this cell would {would}")


if GPU:
    cp = get_xp("cupy")
    name = cp.cuda.runtime.getDeviceProperties(0)["name"]
    print(f"GPU: {name.decode() if isinstance(name, bytes) else name}, CuPy {cp.__version__}")
else:
    print(f"No GPU: {why_no_gpu}")
print(f"NumPy {np.__version__}; backends in this lesson: {BACKENDS}")

# %% [markdown]
# ## 1. One code path, two array modules
#
# In the library, only `tinylora/backend.py` imports CuPy (asserted below) and picks between
# NumPy and CuPy. Everything else asks it for `xp`, the array module, in this order: an explicit
# `backend=` argument, then the innermost `with use_backend(...)`, then the environment variable
# `TINYLORA_BACKEND`, then NumPy. Layers ask the *array*: `backend.xp_of(x)` is `cupy` for a
# CuPy array, so `x @ W`, `xp.maximum(x, 0)`, ... run wherever `x` lives.
#
# Asking for CuPy where it cannot run is an error that says why, never a silent fall-back to NumPy
# (a "GPU run" that quietly ran on the CPU would be worse than a crash).

# %%
source = Path(tinylora.__file__).parent
assert sorted(p.name for p in source.glob("*.py") if "import cupy" in p.read_text()) == [
    "backend.py"]
assert get_xp() is np  # the default
with use_backend("numpy") as xp:
    print("inside use_backend('numpy'):", xp.__name__)
if GPU:
    with use_backend("cupy") as xp:
        print("inside use_backend('cupy'):", xp.__name__)
else:
    try:
        use_backend("cupy")
    except BackendError as err:
        print("use_backend('cupy') raised BackendError:", str(err).split(". ")[0])
    else:
        raise AssertionError("CuPy was accepted without a GPU")

# %% [markdown]
# The same model, on each backend: only the `backend=` argument changes.

# %%
for name in BACKENDS:
    m = LoRAMLP(MLPConfig(16, [64, 64], 4), LoRAConfig(r=4), seed=0, backend=name)
    owner = backend.xp_of(m.params["fc1.A"]).__name__
    print(f"backend={name!r}: parameters are {type(m.params['fc1.A']).__module__} arrays "
          f"({owner})")
    assert owner == name
if not GPU:
    skipped("build the same model with backend='cupy' and show its arrays are cupy.ndarray.")

# %% [markdown]
# ## 2. Where the arrays live: transfers
#
# A CuPy array lives in GPU memory; NumPy arrays live in host memory. Moving data costs time,
# so `tinylora` moves as little as possible:
# - **Random numbers** are drawn on the host with `numpy.random.default_rng(seed)`, then moved
#   once with `xp.asarray`: NumPy and CuPy runs start from bit-identical numbers.
# - **Results** come back with `to_numpy(a)` (CuPy's `a.get()`; a no-op view for NumPy).
# - `np.asarray(cupy_array)` raises a `TypeError` on purpose: an implicit copy is a hidden cost.
# - During training, one number per step comes back: the loss, for the record and the
#   divergence check (`backend.finite_or_inf` in `tinylora.train`; checked in part 5).

# %%
host_draw = backend.normal(0, (3, 4), 1.0, np)
assert np.array_equal(host_draw, np.random.default_rng(0).standard_normal((3, 4)))
assert np.shares_memory(to_numpy(host_draw), host_draw)  # NumPy -> NumPy: no copy at all
print("host draw: identical to numpy.random.default_rng(0); to_numpy on NumPy is a view")

if GPU:
    device_draw = backend.normal(0, (3, 4), 1.0, cp)
    assert np.array_equal(to_numpy(device_draw), host_draw)  # the same numbers, bit for bit
    print("cupy draw: the same numbers, now in GPU memory:", device_draw.device)
    try:
        np.asarray(device_draw)
    except TypeError as err:
        print("np.asarray(cupy array) raised TypeError:", str(err)[:80], "...")
else:
    skipped("draw the same numbers on the GPU (asserting them bit-identical to the host's),\n"
            "and show that np.asarray(cupy_array) raises TypeError (use to_numpy instead).")

# %% [markdown]
# ## 3. When the work happens: synchronisation
#
# CuPy *launches* work on the GPU and returns at once; the GPU computes in the background.
# Python sees the result only when something waits for it. These all wait (synchronise):
# `to_numpy(a)`, `float(a)`, `a.item()`, `print(a)`, `if a > 0:`. Two consequences:
# - **Timing** must synchronise before reading the clock, or it measures the launch only.
#   Warm up first (the first call compiles CuPy's kernels and fills its memory pool), and take
#   the median of several runs.
# - **Reading the loss every step** (as `tinylora.train` does, to stop a diverged run)
#   synchronises every step: the CPU waits for the GPU before it queues the next step.
# - **A read inside a step** synchronises it too. The reference `Optimizer.step` checks on the
#   host that every gradient is finite before it writes anything: a read, in every step. Fast
#   mode's step (`tinylora.fast`) keeps the promise (a step with a NaN gradient writes nothing)
#   but decides it on the GPU, and reads the answer only at `opt.settle()`, where the caller
#   reads anyway (`train_step` calls it with the loss). Only a step that reads nothing lets the
#   CPU run ahead of the GPU.
#
# Here is a timer that is right on both backends (`synchronize` is a no-op on NumPy):

# %%
def synchronize(xp):
    """Wait until the device has finished all queued work (nothing to wait for on NumPy)."""
    if xp is not np:
        xp.cuda.Device().synchronize()


def median_time(fn, xp, repeats=5, sync=True):
    """Median wall time of fn(), in seconds, after one warm-up call."""
    fn()  # warm-up: allocations, kernel compilation
    times = []
    for _ in range(repeats):
        if sync:
            synchronize(xp)
        t0 = time.perf_counter()
        fn()
        if sync:
            synchronize(xp)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def training_step(name, width, batch=256, dtype="float32"):
    """One LoRA+ training step (forward, backward, Adam on A and B) as a function, on `name`;
    it returns the loss, still on the device."""
    xp = get_xp(name)
    model = LoRAMLP(MLPConfig(width, [width, width], width), LoRAConfig(r=8), seed=0, backend=name,
                    dtype=dtype)
    x = backend.normal(1, (batch, width), 1.0, xp, dtype)
    y = backend.normal(2, (batch, width), 1.0, xp, dtype)
    params = model.trainable_params()
    opt = Adam(params, groups=loraplus_groups(params, lr=1e-4, lr_ratio=16))

    def step():
        loss, grads = loss_and_grads(model, x, y)  # the loss stays on the device: no sync here
        opt.step(grads)
        return loss

    return step, xp


step, xp = training_step("numpy", 256)
print(f"NumPy, width 256, batch 256: {1e3 * median_time(step, xp):.2f} ms per step")
WIDE = 8192  # batch 1024: the GPU's work (about 0.7 TFLOP a step) outlasts the launching
if GPU:
    wide_step, xp = training_step("cupy", WIDE, batch=1024)
    times = {}
    for mode in ("reference", "fast"):
        with tinylora.fast.enabled(mode == "fast"):
            times[mode] = (median_time(wide_step, xp), median_time(wide_step, xp, sync=False))
        print(f"CuPy, width {WIDE}, batch 1024, {mode} step: {1e3 * times[mode][0]:.2f} ms "
              f"synchronised, {1e3 * times[mode][1]:.2f} ms without")
    assert times["fast"][1] < 0.5 * times["fast"][0]  # returns long before the GPU is done
    assert times["reference"][1] > 0.5 * times["reference"][0]  # waits inside the step
else:
    skipped(f"time a wide step on CuPy (width {WIDE}, batch 1024) synchronised and not, with\n"
            "the reference and in fast mode. Asserted: the fast step's unsynchronised time (the\n"
            "launching) is under half its real time; the reference's is not, as it reads the\n"
            "gradients on the host inside the step and so waits for the forward and backward.")

# %% [markdown]
# ## 4. float32 against float64
#
# float32 moves half the bytes of float64, so a pass over memory takes about half the time, on
# a GPU as on a CPU (twice the numbers per vector instruction too; measured below). Matrix
# products depend on the chip: consumer GPUs run float64 products 30-60 times slower than
# float32, while data-centre GPUs (A100, H100, H200) have float64 tensor cores, so there a
# float64 product runs at about float32's rate. Measure where the work, not the launching,
# sets the time: at small sizes a step is bound by kernel launches, and the dtype hardly
# matters (or the numbers are noise). `tinylora` defaults to float64 and takes
# `dtype="float32"`.
# What changes:
# - **Precision**: float32 keeps about 7 digits, float64 about 16.
# - **Gradient checks must be float64**: finite differences divide a round-off error of about
#   `eps * |L|` by `h`. With float32 that is `1e-7 / 1e-5 = 1e-2`: useless.
# - **Type promotion** (NumPy 2, and CuPy): a float32 array times a *NumPy* float64 scalar is
#   float64; times a *Python* float it stays float32. So `tinylora` keeps learning rates and
#   scales as Python floats, and a float32 model stays float32.

# %%
for dtype in (np.float32, np.float64):
    print(f"{np.dtype(dtype).name}: machine epsilon {np.finfo(dtype).eps:.1e}")
t32, t64 = (median_time(*training_step("numpy", 256, dtype=dt)) for dt in ("float32", "float64"))
print(f"NumPy, width 256: float64 step {1e3 * t64:.2f} ms, float32 {1e3 * t32:.2f} ms "
      f"(ratio {t64 / t32:.1f})")
if GPU:
    passes = {dt: cp.ones(2**26, dtype=dt) for dt in ("float32", "float64")}  # 256/512 MiB
    p32, p64 = (median_time(lambda a=a: cp.multiply(a, 0.5, out=a), cp)
                for a in passes.values())
    print(f"CuPy, one pass over 2^26 numbers: float64 {1e3 * p64:.3f} ms, float32 "
          f"{1e3 * p32:.3f} ms (ratio {p64 / p32:.1f})")
    assert p64 / p32 > 1.5  # half the bytes, about half the time
    with tinylora.fast.enabled():
        s32, s64 = (median_time(*training_step("cupy", WIDE, batch=1024, dtype=dt))
                    for dt in ("float32", "float64"))
    print(f"CuPy, a width-{WIDE} fast step (mostly products): float64 {1e3 * s64:.2f} ms, "
          f"float32 {1e3 * s32:.2f} ms (ratio {s64 / s32:.1f}: near 1 on a GPU with float64 "
          f"tensor cores, 10 or more on a consumer GPU)")
    del passes
else:
    skipped("time one pass over 2^26 numbers in float32 and float64 (asserted: float64\n"
            f"takes over 1.5 times as long), then a width-{WIDE} fast step in both.")

def check_dA(dtype, h=1e-5):
    """Relative error of the library's dA against centred differences, all in `dtype`."""
    rng = np.random.default_rng(0)
    x, W, b, A, B = (backend.normal(rng, s, 1.0, np, dtype)
                     for s in [(8, 6), (6, 5), (5,), (6, 2), (2, 5)])  # random, non-zero B
    g = backend.normal(rng, (8, 5), 1.0, np, dtype)
    dA = lora_linear_backward(g, lora_linear_forward(x, W, b, A, B, 2.0)[1])[3]

    def fake_loss():
        return float((lora_linear_forward(x, W, b, A, B, 2.0)[0] * g).sum())

    return rel_error(dA, numerical_grad(fake_loss, A, h=h))


errors = {dtype: check_dA(dtype) for dtype in ("float64", "float32")}
for dtype, err in errors.items():
    print(f"gradient check of dA in {dtype}: relative error {err:.1e}")
assert errors["float64"] < TOLERANCE < 1e-4 < errors["float32"]

# %%
x32 = np.ones(3, dtype=np.float32)
print("float32 array * np.float64(0.5):", (x32 * np.float64(0.5)).dtype)
print("float32 array * 0.5            :", (x32 * 0.5).dtype)
assert (x32 * np.float64(0.5)).dtype == np.float64 and (x32 * 0.5).dtype == np.float32

model32 = LoRAMLP(MLPConfig(16, [64, 64], 4), LoRAConfig(r=4), seed=0, dtype="float32")
x_in = backend.normal(1, (32, 16), 1.0, np, "float32")
y_out = backend.normal(2, (32, 4), 1.0, np, "float32")
params32 = model32.trainable_params()
opt32 = Adam(params32, groups=loraplus_groups(params32, lr=1e-3, lr_ratio=4.0))
for _ in range(3):
    opt32.step(loss_and_grads(model32, x_in, y_out)[1])
print("dtypes after 3 Adam steps:", {str(a.dtype) for a in model32.params.values()})
assert all(a.dtype == np.float32 for a in model32.params.values())  # THE INVARIANT

# %% [markdown]
# ## 5. Experiment: the same training everywhere, and its cost
#
# (a) **Same numbers?** Train the LoRA+ run of the low-rank-shift comparison
# (`tinylora.lab.shift.compare`, lr_ratio 16) on every backend available, in float64 and
# float32, and compare each loss curve with NumPy float64. Float64 on CuPy should agree with
# NumPy to round-off (different libraries add in different orders); float32 should agree to
# about float32's precision.
#
# (b) **What it costs.** Time one training step (float32, batch 256, rank 8) at growing widths.

# %%
steps = 50 if FAST else 200
runs = {}
for name in BACKENDS:
    for dtype in ("float64", "float32"):
        curve = compare(lr=3e-3, lr_ratios=(16.0,), steps=steps, backend_name=name,
                        dtype=dtype)[16.0]
        assert len(curve) == steps and all(type(v) is float for v in curve)
        runs[(name, dtype)] = np.array(curve)
print(f"each run brought back {steps} Python floats (host numbers): one loss per step")
reference = runs[("numpy", "float64")]
rel_diff = {key: np.abs(curve / reference - 1) for key, curve in runs.items()
            if key != ("numpy", "float64")}
for (name, dtype), diff in rel_diff.items():
    print(f"{name:>5} {dtype}: relative difference from numpy float64: step 0 {diff[0]:.1e}, "
          f"max {diff.max():.1e}")
assert 0 < rel_diff[("numpy", "float32")].max() < 1e-2  # float32: close, not identical
assert rel_diff[("numpy", "float32")][0] < 1e-6  # and at step 0, within float32's precision
if GPU:
    assert rel_diff[("cupy", "float64")].max() < 1e-8  # float64 on the GPU: round-off only
else:
    skipped("add cupy float64 (expected within 1e-8 of NumPy, asserted) and cupy float32.")

# %%
widths = [64, 128, 256] if FAST else [128, 256, 512, 1024, 2048]
gpu_widths = widths + ([] if FAST else [4096, 8192])
timings = {}
for name in BACKENDS:
    for width in gpu_widths if name == "cupy" else widths:
        step, xp = training_step(name, width)
        timings.setdefault(name, {})[width] = median_time(step, xp, repeats=3 if FAST else 5)
    print(name, {w: f"{1e3 * t:.2f} ms" for w, t in timings[name].items()})
cpu = timings["numpy"]
slope = np.log(cpu[widths[-1]] / cpu[widths[-2]]) / np.log(widths[-1] / widths[-2])
print(f"NumPy: time grows like width^{slope:.2f} between widths {widths[-2]} and {widths[-1]}")
if not GPU:
    skipped(f"time the same step on CuPy at widths {gpu_widths} (and beyond).")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for (name, dtype), diff in rel_diff.items():
    ax1.semilogy(np.maximum(diff, 1e-17), label=f"{name} {dtype}")
ax1.set(xlabel="step", ylabel="|loss / loss(numpy float64) - 1|",
        title="(a) the same run on each backend and dtype")
for name, t in timings.items():
    ax2.loglog(list(t), [1e3 * v for v in t.values()], "o-", label=name)
all_widths = sorted({w for t in timings.values() for w in t})
ax2.set_xscale("log", base=2)
ax2.set_xticks(all_widths, [str(w) for w in all_widths], minor=False)
ax2.set_xticks([], minor=True)
ax2.set(xlabel="width (batch 256, rank 8, float32)", ylabel="ms per training step",
        title="(b) the cost of one step (synchronised, median)")
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle("One code path on " + (" and ".join(BACKENDS)) + ("" if GPU else " (no GPU here)"))
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.**
# - (a) float32 starts within about float32's precision of float64 (the printed step-0
#   difference, below `1e-6`) and drifts as training goes on, yet stays small (the printed
#   maximum). On a GPU, CuPy float64 stays at round-off from NumPy float64, far below float32's
#   drift (asserted below `1e-8`): the same code, the same numbers.
# - (b) NumPy's time grows fast with the width: each product with a frozen `W` costs
#   `batch x width^2` multiply-adds, so expect the printed log-log slope near 2 at large widths
#   (at small widths Python's fixed cost per operation flattens the curve; caches can make it
#   steeper for a while; and a shared machine makes any timing noisy). On a GPU the CuPy line
#   stays nearly flat over the small widths, where the launch cost dominates, and far below
#   NumPy's at large widths.

# %% [markdown]
# ## Experiments to try
# Two are exercises like the ones below (a function to complete, a checker under it that
# computes the expected value); two are experiments to run yourself, with what to look for. The
# solutions, and the code of the two to run, are in `lessons/solutions/07_on_a_gpu.py`.
#
# **Experiment 1 (run it): ask for CuPy by environment variable.** Set
# `TINYLORA_BACKEND=cupy` (`backend.ENV_VAR`), build a `LoRAMLP` and put the variable back.
# *Look for:* without a GPU, a `BackendError` that names the cause, not a model that silently
# fell back to NumPy; with one, `backend.xp_of(model.params["fc1.A"])` is `cupy`.
#
# **Experiment 2 (predict): a bigger step for the float32 check.** Our fake loss is linear in
# `A`, so a large `h` costs no truncation error: what is left is round-off, about float32's
# precision times the size of the loss, divided by `h`. Given the float32 check's error at
# `h = 1e-5` (part 4), predict its error at another `h`. The checker accepts a factor of 4
# either way (round-off is not exactly proportional).

# %%
def float32_error_at(h, error_at_1e5):
    """-> the predicted relative error of the float32 check of dA with step h."""
    raise NotImplementedError("your line: return ...")


# %%
ex.check(float32_error_at, [(f"h = {h:g}", (h, errors["float32"]), check_dA("float32", h=h))
                            for h in (1e-4, 1e-3, 1e-2, 1e-1)],
         compare=lambda got, expected: expected / 4 < got < 4 * expected)
err_big_h = check_dA("float32", h=1e-2)
print(f"float32 check: error {errors['float32']:.1e} with h = 1e-5, {err_big_h:.1e} with "
      f"h = 1e-2: {'still above' if err_big_h > TOLERANCE else 'below'} the float64 tolerance "
      f"{TOLERANCE:g}")

# %% [markdown]
# **Experiment 3 (predict): promotion.** Return the dtype (its name, `"float32"`) of an array
# of dtype `array_dtype` times the scalar `scalar` (part 4: NumPy 2's rule for Python and NumPy
# scalars).

# %%
def promoted(array_dtype, scalar):
    """-> the name of the dtype of np.ones(3, dtype=array_dtype) * scalar."""
    raise NotImplementedError("your line: return ...")


# %%
ex.check(promoted, [(f"a {dt} array times {s!r}", (dt, s), str((np.ones(3, dtype=dt) * s).dtype))
                    for dt, s in (("float32", np.float32(0.5)), ("float32", np.float64(0.5)),
                                  ("float16", 0.5), ("float16", np.float32(0.5)),
                                  ("float64", np.float32(0.5)))])

# %% [markdown]
# **Experiment 4 (run it, on a GPU): one read inside the step.** Read the loss inside the wide
# fast step of part 3 (`float(wide_step())`) and time it with `median_time(..., sync=False)`.
# *Look for:* how its time compares with part 3's synchronised and unsynchronised times of the
# same step (`times["fast"]`): one read anywhere in a step waits for everything queued before
# it.

# %% [markdown]
# ## Exercises: your turn
# Complete each function (replace the `raise`), then run the checker below it. They run on a CPU:
# each asks you to predict, from parts 2 to 4, what a GPU would do, and the checker computes the
# answer from the code itself (it counts, it does not time). A wrong answer is told the case, the
# expected value and what it gave. The solutions are in `lessons/solutions/07_on_a_gpu.py`: try
# first.
#
# **Exercise 1 (predict): the bytes of one pass.** Part 4 times `cp.multiply(a, 0.5, out=a)` over
# `n` numbers of a dtype. Return how many bytes that pass moves between the GPU's memory and its
# cores, reads and writes together (assume every number is read once and written once, and
# nothing is cached). Then: what should the float64 / float32 time ratio be where memory sets the
# time?

# %%
def bytes_moved(n, dtype):
    """Bytes read plus bytes written by one in-place pass a *= 0.5 over n numbers of `dtype`."""
    raise NotImplementedError("your line: return ...")


# %%
def bytes_of_the_pass(n, dtype):
    """What the pass does, counted: it reads `a` (a.nbytes) and writes `a` back (a.nbytes)."""
    a = np.ones(n, dtype=dtype)
    np.multiply(a, 0.5, out=a)  # the same pass on the CPU: one read and one write of each number
    return a.nbytes + a.nbytes


ex.check(bytes_moved, [
    (f"part 4's float32 pass, n = 2^{k}", (2**k, "float32"), bytes_of_the_pass(2**k, "float32"))
    for k in (10, 20)] + [
    ("the same numbers in float64", (2**20, "float64"), bytes_of_the_pass(2**20, "float64")),
    ("half precision, n = 1000", (1000, "float16"), bytes_of_the_pass(1000, "float16"))])
mib = {dt: bytes_of_the_pass(2**26, dt) / 2**20 for dt in ("float32", "float64")}
print(f"part 4's passes over 2^26 numbers: float32 moves {mib['float32']:.0f} MiB, float64 "
      f"{mib['float64']:.0f} MiB")

# %% [markdown]
# **Exercise 2 (count): how often the CPU waits.** Every `float(loss)` of a device number is a
# read: the CPU waits until the GPU has computed it (part 3). Here is a training loop that logs
# the loss every `every` steps and returns the last loss as a Python float. Return how many
# host reads it makes in `steps` steps (count only the reads this loop does: the step itself
# reads nothing here, as in fast mode).

# %%
def logged_loop(step, steps, every):
    """Run `steps` training steps; log float(loss) every `every` steps; return (log, last loss)."""
    log = []
    for t in range(steps):
        loss = step()  # stays on the device
        if (t + 1) % every == 0:
            log.append(float(loss))
    return log, float(loss)


def host_reads(steps, every):
    """The number of host reads (float() of a device number) logged_loop makes."""
    raise NotImplementedError("your line: return ...")


# %%
class DeviceNumber:
    """A stand-in for a loss on the GPU: it counts how often Python reads its value."""

    reads = 0

    def __init__(self, value):
        self.value = value

    def __float__(self):
        DeviceNumber.reads += 1  # on a GPU: a synchronisation
        return float(self.value)


def reads_of(steps, every):
    """Run logged_loop on stand-in losses and count the reads."""
    DeviceNumber.reads = 0
    logged_loop(lambda: DeviceNumber(1.0), steps, every)
    return DeviceNumber.reads


ex.check(host_reads, [(f"{s} steps, float(loss) every {k}", (s, k), reads_of(s, k))
                      for s, k in ((100, 1), (100, 10), (100, 7), (5, 10))])

# %% [markdown]
# **Exercise 3 (predict): where does it wait?** Below, a few lines of CuPy as they might appear in
# a training script (`x`, `W` and `t` are CuPy arrays). Return the set of line numbers at which
# Python waits for the GPU (a synchronisation). The rule from part 3: a line waits when Python
# needs a *value* the GPU computes; CuPy keeps an array's shape, size and dtype on the host,
# with the array object, so reading those waits for nothing.

# %%
SNIPPET = """\
y = x @ W
loss = ((y - t) ** 2).mean()
if loss > 10.0:
    print("diverging")
z = cp.maximum(y, 0)
print(z.shape, z.dtype)
peak = float(z.max())
n = z.size * 2
out = to_numpy(z)
z *= 0.5""".splitlines()
for i, line in enumerate(SNIPPET):
    print(f"{i}: {line}")


def lines_that_wait(snippet):
    """The set of line numbers (0-based, as printed) where the CPU waits for the GPU."""
    raise NotImplementedError("your answer: return {...}")


# %%
WAITS = {  # each line of SNIPPET, and what it asks of the GPU
    0: False,  # launches a product; returns at once
    1: False,  # launches more kernels; `loss` is a 0-d CuPy array, still on the device
    2: True,   # `if` needs bool(loss > 10.0): the value, so the CPU waits for lines 0-2
    3: False,  # prints a Python string
    4: False,  # a launch
    5: False,  # shape and dtype are kept on the host with the array object
    6: True,   # float() reads the maximum: a wait
    7: False,  # size is on the host too
    8: True,   # to_numpy copies the values to the host: a wait
    9: False,  # an in-place launch
}
ex.check(lines_that_wait, [("the snippet above", (SNIPPET,),
                            {i for i, w in WAITS.items() if w})],
         compare=lambda got, expected: set(got) == expected)

# %% [markdown]
# **Exercise 4 (unit round-off).** Return the unit round-off `u` of a float dtype: the largest
# relative error of rounding a real number to the nearest float (`1 + u` rounds to 1, `1 + 2u`
# does not). It is why a float32 gradient check cannot reach the float64 tolerance of `1e-7`
# (part 4).

# %%
def unit_roundoff(dtype):
    """u of np.float32 or np.float64, a Python float."""
    raise NotImplementedError("your line: return ...")


# %%
def roundoff_by_halving(dtype):
    """The largest power of two u with 1 + u rounding to 1 and 1 + 2u not, found by halving."""
    one, u = dtype(1), dtype(1)
    while one + u != one:
        u = dtype(u / 2)
    return float(u)


ex.check(unit_roundoff, [(f"{np.dtype(dt).name}", (dt,), roundoff_by_halving(dt))
                         for dt in (np.float32, np.float64)], rtol=0, atol=0)

# %% [markdown]
# **Inline question (written).** Fast mode's step decides on the GPU whether a gradient was
# finite, and the caller reads that answer at `opt.settle()`, together with the loss. Why does
# that keep the promise "a step with a NaN gradient writes nothing", although the CPU has already
# queued the next step before it knows? And what does your answer to exercise 2 say about how
# often a GPU training loop should read its loss?
#
# *Your answer:* (write it here)

# %%
print(f"this lesson ran in {time.perf_counter() - T0:.1f} s (fast mode: {FAST})")

# %% [markdown]
# ## Recap
# - The same `tinylora` code runs on NumPy and CuPy: the array module comes from `backend`, and
#   random numbers come from the host, so both backends start from identical numbers.
# - On a GPU, work is asynchronous: synchronise before reading a clock, warm up, take medians;
#   move data as rarely as possible (`to_numpy` at the end, one loss per step or fewer: every
#   `float(loss)`, `if` on a device value or `to_numpy` is a wait, while shape, size and dtype
#   are free).
# - float32 is fast and close (about `1e-7` relative) but gradient checks need float64; keep
#   scalars as Python floats so float32 stays float32.
