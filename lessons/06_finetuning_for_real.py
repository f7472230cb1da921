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
# # Lesson 6: Fine-tuning for real
#
# **Goal.** Do what LoRA is for, end to end, on a model small enough to train here: pretrain a
# tiny character-level GPT (`TinyLM`) on Shakespeare with every weight trainable, freeze it, attach
# LoRA factors to every projection, and fine-tune it on Milton's prose. We take the first steps by
# hand (checking what moves and what must not), then run `tinylora.text.finetune`'s protocol to
# compare LoRA with LoRA+ fairly: each tuned over its own learning rates, then several seeds.
#
# Runs in under half a minute. With `TINYLORA_FAST=1` (what the tests use) in a few seconds: a
# narrower model, fewer steps, fewer seeds. (`tinylora pretrain` and `tinylora finetune` run the
# same code at larger widths; their recorded results are in `docs/results/finetune/`.)

# %%
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np  # a lesson is user code: it may use NumPy directly (the library may not)

from tinylora.optim import Adam, loraplus_groups
from tinylora.text.corpus import BatchSampler, load_text
from tinylora.text.finetune import Data, finetune_config, finetune_run, run_study, sample_text
from tinylora.text.pretrain import build_model, ensure_base, load_base, mean_loss, pretrain_config
from tinylora.text.report import lr_grid, summarize
from tinylora.train import loss_and_grads
from tinylora.transformer import BLOCK_TARGETS

FAST = os.environ.get("TINYLORA_FAST") == "1"
rng = np.random.default_rng(0)  # the lesson's own draws; the library's runs take their seeds

d_model = 32 if FAST else 64  # the model's width
pretrain_steps = 150 if FAST else 500  # AdamW steps on Shakespeare, every array trainable
finetune_steps = 30 if FAST else 80  # Adam steps on Milton, LoRA factors only
seeds = (1, 2) if FAST else (1, 2, 3)  # the comparison's seeds (seed 0 tunes the learning rate)
workdir = Path(tempfile.mkdtemp(prefix="tinylora-lesson6-"))  # the base's cache and the records

# The study's small shapes (context 32, batches of 16): `fast=True` below is the library's
# setting for small models, not this lesson's fast mode.
config = finetune_config(fast=True, widths=(d_model,), pretrain_steps=pretrain_steps,
                         steps=finetune_steps, eval_every=max(1, finetune_steps // 10),
                         lrs=(1e-3, 3e-3, 1e-2), seeds=seeds)
pcfg = pretrain_config(d_model, fast=True, steps=pretrain_steps)
print(config)

# %% [markdown]
# ## 1. The data: characters, windows, next-character targets
#
# Both texts ship with the package (public domain). One character tokenizer covers both, so the
# pretrained model and its adapter share a vocabulary of `V` characters. A training batch is
# `N` random windows of `T + 1` characters: the model reads `x = batch[:, :-1]` `(N, T)` and must
# predict `y = batch[:, 1:]` `(N, T)`, each character's successor. The loss is the mean
# cross-entropy in nats per character; guessing uniformly scores `log V`.

# %%
data = Data(config)  # the tokenizer, Milton's train split, fixed validation windows of both texts
tok = data.tokenizer
V = tok.vocab_size
for name in ("shakespeare", "areopagitica"):
    text = load_text(name)
    print(f"{name}: {len(text):,} characters, e.g. {text[1000:1060]!r}")
print(f"vocabulary: V = {V} characters; a uniform guess scores log V = {math.log(V):.3f} nats")

sampler = BatchSampler(data.train, config.batch_size, config.context, seed=0)
batch = sampler.sample()  # (N, T + 1)
x, y = batch[:, :-1], batch[:, 1:]
print(f"batch {batch.shape}: x {x.shape}, y {y.shape}; window 0 = {tok.decode(batch[0])!r}")
assert np.array_equal(y[:, :-1], x[:, 1:])  # y is x shifted by one character
assert tok.decode(tok.encode(text[:500])) == text[:500]  # the tokenizer round-trips

# %% [markdown]
# ## 2. Pretraining: every array trains
#
# `TinyLM` (lesson 5's block, twice, with embeddings and an output head) with
# `trainable="all"` and AdamW is ordinary pretraining. `ensure_base` trains it and saves its
# arrays in a cache folder (here a temporary one), so that every fine-tuning run below starts
# from the very same base.

# %%
base_record = ensure_base(pcfg, workdir, show_progress=False)
curve = base_record["curve"]
print(f"pretrained d_model = {d_model}: {base_record['n_params']:,} numbers, "
      f"{pretrain_steps} steps, {base_record['seconds']:.1f} s")
print("validation loss on Shakespeare:", [round(v, 3) for v in curve["val_loss"]])
assert curve["val_loss"][-1] < curve["val_loss"][0] - 1.0  # it learned something
assert curve["val_loss"][-1] < math.log(V) - 1.0  # far better than a uniform guess

base = build_model(pcfg, targets=(), trainable="all")  # the architecture, no LoRA
load_base(base, pcfg, workdir)
print("the base writes:", repr(sample_text(base, data, 80, seed=1)))

# %% [markdown]
# ## 3. Freeze it, attach LoRA
#
# The same architecture with rank-`r` factors on `q, k, v, o, fc1, fc2` of both blocks, and only
# those trainable (`trainable="lora"`). Init[1]: `B = 0`. The base arrays are loaded from the
# cache; `seed` draws only the factors (the base never depends on it).

# %%
lm = build_model(pcfg, targets=BLOCK_TARGETS, r=config.r, init=config.init, trainable="lora",
                 seed=1)
load_base(lm, pcfg, workdir)
print(lm)
n_lora, n_all = lm.n_params(lm.trainable), lm.n_params()
print(f"trainable: {n_lora:,} of {n_all:,} numbers ({100 * n_lora / n_all:.1f} %): "
      f"{len(lm.trainable)} arrays, e.g. {lm.trainable[:2]}")
assert set(lm.trainable) == set(lm.adapter_keys())
# Per block the base has 12 d^2 numbers in its six W (4 d^2 attention, 8 d^2 MLP) and the
# adapter 18 r d (see exercise 4): the fraction 1.5 r / d shrinks as the width grows.
for width in (d_model, 4096):
    print(f"  per block at d = {width}, r = {config.r}: adapter / base weights = "
          f"{18 * config.r * width / (12 * width**2):.2%}")

logits_base, _ = base.forward(x)
logits_lora, _ = lm.forward(x)
assert np.array_equal(logits_lora, logits_base)  # THE INVARIANT: B = 0 starts at the base, exactly
print("with B = 0 the LoRA model's logits equal the base's, bit for bit "
      f"({logits_lora.shape}, {logits_lora.dtype})")

# %% [markdown]
# ## 4. The first fine-tuning steps, by hand
#
# One step is `loss_and_grads` (forward, cross-entropy, every backward of lesson 5) and one Adam
# step with the LoRA+ groups (lesson 2). We check, at step 1, what lessons 1 and 2 predict:
# the gradient dict holds exactly the trainable keys; every `dA` is exactly 0 (since `B = 0`)
# while the `dB` are not; so the first step moves only the `B`s, each entry by about `lr_B`.
# Then we take a few more steps and check that the frozen arrays never changed.

# %%
lr_A, ratio = 2.5e-3, 16.0
frozen_before = {k: lm.params[k].copy() for k in lm.base_keys()}
opt = Adam(lm.trainable_params(), groups=loraplus_groups(lm.trainable_params(), lr=lr_A,
                                                        lr_ratio=ratio))
loss0, grads = loss_and_grads(lm, x, y, loss="cross_entropy")
assert set(grads) == set(lm.trainable)
assert all(np.all(grads[k] == 0) for k in grads if k.endswith(".A"))
assert all(np.linalg.norm(grads[k]) > 0 for k in grads if k.endswith(".B"))
B_before = {k: lm.params[k].copy() for k in lm.trainable}
opt.step(grads)
moves = {k: np.abs(lm.params[k] - B_before[k]) for k in lm.trainable}
move_B = np.concatenate([m.ravel() for k, m in moves.items() if k.endswith(".B")])
print(f"step 1: loss {float(loss0):.4f}; |dA| = 0 for all {len(grads) // 2} targets; "
      f"A moved by {max(m.max() for k, m in moves.items() if k.endswith('.A')):.1e}; "
      f"median |move| of B = {np.median(move_B):.2e} (lr_B = {lr_A * ratio:.2e})")
assert all(np.all(m == 0) for k, m in moves.items() if k.endswith(".A"))
assert np.median(move_B) > 0.99 * lr_A * ratio and move_B.max() <= lr_A * ratio * (1 + 1e-6)

hand_steps = 20 if FAST else 40
for _ in range(hand_steps - 1):  # a fresh random batch each step
    b = sampler.sample()
    loss, grads = loss_and_grads(lm, b[:, :-1], b[:, 1:], loss="cross_entropy")
    opt.step(grads)
val_before, val_after = mean_loss(base, data.val), mean_loss(lm, data.val)
print(f"{hand_steps} steps: Milton validation loss {val_before:.4f} (base) -> {val_after:.4f}")
assert val_after < val_before
assert all(np.array_equal(lm.params[k], frozen_before[k]) for k in frozen_before)
print(f"all {len(frozen_before)} frozen arrays are bit-identical after training")

# %% [markdown]
# ## 5. Experiment: LoRA against LoRA+, tuned fairly
#
# A comparison at one learning rate says little (lesson 2): each method must get its own best
# rate. `tinylora.finetune.run_study` runs the study's protocol at our width:
# 1. *tune*: every ratio `lr_B / lr_A` (1 = LoRA, 16 = LoRA+) at every `lr_A` of a small grid
#    (for ratio 16 the grid is divided by `sqrt(16) = 4`: halfway between keeping `lr_A` and
#    keeping `lr_B`), on seed 0; each ratio keeps its lowest final validation loss;
# 2. *compare*: each ratio at its tuned rate on the other seeds (new factor init, new batches).
#
# It reuses our cached base (same configuration), writes `records.json`, and
# `tinylora.text.report.summarize` turns the records into means with 95 % intervals and the paired
# speed-up (steps LoRA needs to reach its final loss / steps LoRA+ needs for the same loss).

# %%
for ratio in (1.0, 16.0):
    print(f"ratio {ratio:g}: lr_A over {lr_grid(config.lrs, ratio)}")
records = run_study(config, workdir / "study", cache=workdir, show_progress=False)
summary, details = summarize(records)
detail = details[0]
base_loss = detail["base"]["loss_finetune_text"]
assert detail["base"]["pretrain_val_loss"] == base_record["val_loss"]  # the same base, reused
print(f"{len(records['runs'])} fine-tuning runs of {finetune_steps} steps; frozen base on "
      f"Milton: {base_loss:.4f}")
print("tuning (seed 0), best lr_A per ratio:",
      {ratio: f"lr {lr:g}: {loss:.4f}" for ratio, (lr, loss) in detail["tuning"].items()})
for ratio in (1.0, 16.0):
    m = detail["methods"][ratio]
    mean, lo, hi = m["final"]
    edge = " (an end of its grid)" if m["lr_at_grid_edge"] else ""
    print(f"{m['label']:>17} at lr_A = {m['lr']:g}{edge}: final loss {mean:.4f} "
          f"[{lo:.4f}, {hi:.4f}] over {len(m['runs'])} seeds")
plus = detail["methods"][16.0]
print(f"speed-up of LoRA+ (paired by seed): {plus['speedup'][0]:.2f} "
      f"[{plus['speedup'][1]:.2f}, {plus['speedup'][2]:.2f}]")
gain, gain_lo, gain_hi = plus["loss_gain"]
print(f"gain of LoRA+ over LoRA (final loss, > 0: LoRA+ better): {gain:+.4f} "
      f"[{gain_lo:+.4f}, {gain_hi:+.4f}] -> "
      + ("no difference detectable at this width" if gain_lo <= 0 <= gain_hi
         else ("LoRA+ better" if gain_lo > 0 else "LoRA better")))
for ratio in (1.0, 16.0):
    m = detail["methods"][ratio]
    assert m["final"][0] < base_loss - 0.05 and m["diverged"] == 0  # both adapt to Milton

recorded = Path("..") / "docs" / "results" / "finetune" / "summary.json"  # run from lessons/
if recorded.exists():
    study = json.loads(recorded.read_text())
    print("the recorded study (tinylora finetune, 3 seeds):")
    for i, w in enumerate(study["widths"]):
        lo, hi = study["speedup_interval"][i]
        print(f"  d_model {w}: LoRA {study['loss_lora'][i]:.4f}, LoRA+ (16) "
              f"{study['loss_loraplus'][i]:.4f}, speed-up {study['speedup'][i]:.2f} "
              f"[{lo:.2f}, {hi:.2f}], best ratio {study['best_ratio'][i]:g}")
    print("  every speed-up interval contains 1:",
          all(lo <= 1 <= hi for lo, hi in study["speedup_interval"]),
          "; largest best ratio:", max(study["best_ratio"]))
else:
    print(f"(the recorded study is not here: {recorded.resolve()} is missing)")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for ratio, color in ((1.0, "C0"), (16.0, "C1")):
    m = detail["methods"][ratio]
    for run in m["runs"]:
        ax1.plot(run["eval_steps"], run["val_loss"], color=color, alpha=0.3, lw=1)
    ax1.plot(m["eval_steps"], m["curve_mean"], color=color, lw=2,
             label=f"{m['label']}, lr_A {m['lr']:g} (mean of {len(m['runs'])} seeds)")
    tuning = sorted((r["lr"], r["final_loss"]) for r in records["runs"]
                    if r["ratio"] == ratio and r["seed"] == config.tune_seed)
    ax2.semilogx(*zip(*tuning), "o-", color=color, label=m["label"])
    ax2.plot(m["lr"], detail["tuning"][ratio][1], "k*", markersize=12)
for ax in (ax1, ax2):
    ax.axhline(base_loss, color="gray", ls=":", label="frozen base")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
ax1.set(xlabel="fine-tuning step", ylabel="Milton validation loss (nats/char)",
        title=f"d_model = {d_model}: validation curves (thin: seeds)")
ax2.set(xlabel="lr_A (lr_B = ratio x lr_A)", ylabel=f"final loss after {finetune_steps} steps",
        title="tuning on seed 0 (star: the rate kept)")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.**
# - Left: both methods leave the frozen base's loss (dotted) well behind (asserted), training
#   only the adapter's fraction of the numbers (printed in part 3).
# - Left: how far apart the two thick curves are compared with the spread of the thin (per-seed)
#   ones. The printed interval of the gain says whether the difference is real at this width.
# - The recorded study (printed above, from `docs/results/finetune/`) measured the same at
#   widths 64 to 256: its best ratio is small (4) and every speed-up interval of ratio 16 contains
#   1. That is what the theory expects at small width; the `Theta(n)` growth of the best ratio
#   is lesson 4's subject.
# - Right: each ratio has its own best `lr_A` (star). Ratio 16's grid sits 4x lower, since its
#   `lr_B` is 16 times larger: comparing both at one `lr_A` would decide the race by the choice
#   of rate. A star at an end of its grid (printed above) means the best rate may lie beyond it.

# %%
print("prompt + 80 characters, temperature 0.8:")
print("  frozen base:", repr(sample_text(base, data, 80, seed=1)))
print("  after our hand-run LoRA+ steps:", repr(sample_text(lm, data, 80, seed=1)))

# %% [markdown]
# ## Exercises
# Each has its expected outcome; the cell after the list checks them all.
# 1. **Merge the adapter.** Write `W + scale A B` (`lm.merged_weights()`) into a copy of the
#    base. *Expected:* its logits equal the LoRA model's up to float32 round-off (relative
#    difference below `1e-5`), at the cost of the base: LoRA adds nothing at inference once
#    merged.
# 2. **Ship only the adapter.** `lm.save(path)` writes the LoRA factors alone. *Expected:* a file
#    of `2 x 6 x n_layer = 24` arrays holding exactly the trainable numbers (4 bytes each in
#    float32, plus a few hundred bytes of headers per array); loaded onto a fresh LoRA model over
#    the same base, the logits are bit-identical.
# 3. **The wrong way round.** Fine-tune with `lr_ratio = 1/16` (`B` slow) at plain LoRA's tuned
#    `lr_A`, seed 0. *Expected:* a higher final loss than plain LoRA's tuning run at that rate:
#    `B` is what moves first (lesson 1), slowing it slows everything.
# 4. **LoRA on q and v only** (the original LoRA paper's choice). *Expected:* exactly `2/9` of the
#    trainable numbers: per block, `q` and `v` have `2 x r (d + d)`, and all six have
#    `4 x 2 r d + 2 x r (d + 4d) = 18 r d`.

# %%
# Answers, checked.
# 1. merge
merged = build_model(pcfg, targets=(), trainable="all")
load_base(merged, pcfg, workdir)
for layer, W in lm.merged_weights().items():
    merged.params[f"{layer}.W"][...] = W
logits_merged, _ = merged.forward(x)
logits_lm, _ = lm.forward(x)
rel = float(np.abs(logits_merged - logits_lm).max() / np.abs(logits_lm).max())
print(f"1. merged model vs LoRA model: max relative difference {rel:.1e}")
assert rel < 1e-5

# 2. save only the adapter
path = workdir / "adapter.npz"
lm.save(path)
with np.load(path) as saved:
    n_saved, n_arrays = sum(a.size for a in saved.values()), len(saved.files)
print(f"2. {path.name}: {n_arrays} arrays, {n_saved:,} numbers, {path.stat().st_size:,} bytes "
      f"(the base: {n_all - n_lora:,} numbers)")
assert n_arrays == 2 * 6 * pcfg.n_layer and n_saved == n_lora
assert 4 * n_saved < path.stat().st_size < 4 * n_saved + 1024 * n_arrays
fresh = build_model(pcfg, targets=BLOCK_TARGETS, r=config.r, trainable="lora", seed=7)
load_base(fresh, pcfg, workdir)
fresh.load(path)
assert np.array_equal(fresh.forward(x)[0], logits_lm)

# 3. the wrong way round
lr_lora = detail["tuning"][1.0][0]
slow_B = finetune_run(config, d_model, 1 / 16, lr_lora, config.tune_seed, data, workdir)
lora_run = next(r for r in records["runs"] if r["ratio"] == 1.0 and r["lr"] == lr_lora
                and r["seed"] == config.tune_seed)
print(f"3. at lr_A = {lr_lora:g}: ratio 1/16 ends at {slow_B['final_loss']:.4f}, "
      f"ratio 1 at {lora_run['final_loss']:.4f}")
assert slow_B["final_loss"] > lora_run["final_loss"]

# 4. q and v only
qv = build_model(pcfg, targets=("q", "v"), r=config.r, trainable="lora")
fraction = qv.n_params(qv.trainable) / n_lora
print(f"4. q, v only: {qv.n_params(qv.trainable):,} trainable numbers = {fraction:.6f} of all six "
      f"(2/9 = {2 / 9:.6f})")
assert math.isclose(fraction, 2 / 9)

shutil.rmtree(workdir)  # the temporary cache, records and adapter: not needed any more

# %% [markdown]
# ## Recap
# - Fine-tuning with LoRA = load a pretrained base, freeze it, add `A, B` (Init[1]: the model
#   starts exactly at the base), train only them; the frozen arrays never change.
# - An adapter is a fraction of the numbers (`1.5 r / d` of a block's weights): it merges into
#   `W` for free at inference, or ships alone and loads onto the same base bit for bit.
# - LoRA against LoRA+ is only fair with each tuned over its own rates and several seeds, with
#   intervals; at these small widths the two end close, and which ratio is best is a question
#   about width (lesson 4).
