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
# # Lesson 9: LoRA+ in PEFT
#
# **Goal.** Most people meet LoRA+ as one argument of Hugging Face PEFT,
# `create_loraplus_optimizer(model, optimizer_cls, lr=..., loraplus_lr_ratio=...)`. Lesson 2
# showed that LoRA+ is nothing but parameter groups: `B` at `lr * lr_ratio`, `A` at `lr`. This
# lesson is about everything *around* that line, where PEFT and tinylora differ and where runs go
# quietly wrong: which arrays get the fast rate (tinylora's rule against PEFT's), AdamW's weight
# decay (which runs `lr_ratio` times faster on `B`, and which PEFT's groups can switch off), why
# "ratio 1" is not always plain LoRA, and how to choose the ratio, by init, from the paper and
# from this project's recorded runs. The last cell runs PEFT itself where `torch` and `peft` are
# installed. The reference page is [`docs/peft.md`](../docs/peft.md) (a name map from PEFT to
# tinylora included); the notation is the card in `lessons/README.md`.
#
# With `TINYLORA_FAST=1` (what the tests use) nothing changes but the last cell's timing: this
# lesson is small either way.

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
import json
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np  # a lesson is user code: it may use NumPy directly (the library may not)

from tinylora.block import BlockConfig, TransformerBlock
from tinylora.groups import loraplus_groups
from tinylora.lessons.exercises import Exercises  # the checker of every exercise
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import AdamW
from tinylora.train import loss_and_grads
from tinylora.transformer import LMConfig, TinyLM

T0 = time.perf_counter()
FAST = os.environ.get("TINYLORA_FAST") == "1"
rng = np.random.default_rng(0)  # every random number in this lesson comes from this seed
ex = Exercises("09_loraplus_in_peft")
LR, RATIO = 1e-3, 16.0  # eta_A, and lambda = eta_B / eta_A: passed explicitly everywhere

# %% [markdown]
# ## 1. Which arrays get the fast rate: two rules
#
# Fine-tuning often trains more than the LoRA factors: biases (PEFT's `bias="all"`), layer-norm
# gains, sometimes LoRA on the token embedding. The paper's argument covers `B` alone
# (`eta_B = Theta(1)` against `eta_A = Theta(1/n)`, lesson 3). Every codebase must still put
# every other trainable array somewhere. `tinylora.groups.loraplus_groups(params, lr, lr_ratio,
# rule=...)` does it by two rules:
#
# | trainable array | `rule="tinylora"` | `rule="peft"` |
# |---|---|---|
# | LoRA `A` (`*.A`) | "A (and others)": `lr` | "A": `lr`, decays |
# | LoRA `B` (`*.B`) | "B": `lr * lr_ratio` | "B": `lr * lr_ratio`, decays |
# | the embedding's LoRA (`tok_emb.A`, `.B`) | by its letter | "embedding": `lr_embedding`, decays |
# | bias `*.b`, norm gain `*.g` | "A (and others)": `lr` | "B (no decay)": `lr * lr_ratio` |
# | any other 1-D array | "A (and others)": `lr` | "B": `lr * lr_ratio`, decays |
# | any other 2-D array (a trained `W`) | "A (and others)": `lr` | "A": `lr`, decays |
#
# (`rule="peft"` is `create_loraplus_optimizer`'s grouping; `lr_embedding` is its
# `loraplus_lr_embedding`, `1e-6` by default; "B (no decay)" never decays.)
#
# tinylora's rule keeps everything but `B` at plain LoRA's rate; PEFT's (and the LoRA+ authors'
# code) sends every 1-D array to `B`'s rate. A Transformer block with LoRA on `q` and `v`, its
# attention biases and layer-norm gains trainable too:

# %%
block = TransformerBlock(BlockConfig(16, 2), LoRAConfig(r=2, targets=("q", "v")), seed=0,
                         trainable=["attn.q.A", "attn.q.B", "attn.v.A", "attn.v.B", "attn.q.b",
                                    "attn.v.b", "ln1.g", "ln1.b"])
params = block.trainable_params()


def rates_by_key(groups):
    """{key: (group name, lr, weight decay or None: the optimizer's)} of a list of groups."""
    return {k: (g["name"], g["lr"], g.get("weight_decay")) for g in groups for k in g["params"]}


ours = rates_by_key(loraplus_groups(params, lr=LR, lr_ratio=RATIO, rule="tinylora"))
peft = rates_by_key(loraplus_groups(params, lr=LR, lr_ratio=RATIO, rule="peft"))
print(f"{'key':>10} | {'tinylora: group, lr':<26} | peft: group, lr, weight decay")
for key in params:
    (g_t, lr_t, _), (g_p, lr_p, wd_p) = ours[key], peft[key]
    wd_text = "the optimizer's" if wd_p is None else f"{wd_p:g}"
    print(f"{key:>10} | {g_t:<15} {lr_t:<10g} | {g_p:<13} {lr_p:<8g} {wd_text}")
assert all(ours[k][1:] == peft[k][1:] for k in params if k[-2:] in (".A", ".B"))  # A, B agree
fast_under_peft = sorted(k for k in params if k[-2:] not in (".A", ".B") and peft[k][1] > LR)
assert fast_under_peft == sorted(["attn.q.b", "attn.v.b", "ln1.g", "ln1.b"])
assert all(ours[k][1] == LR for k in fast_under_peft)  # tinylora: at A's rate
print(f"at {RATIO:g} x lr under PEFT's rule, at lr under tinylora's: {fast_under_peft}")

# %% [markdown]
# Neither rule is wrong: the paper says nothing about biases and norms. But they are different
# experiments, and a comparison of "LoRA+ in PEFT" with "LoRA+ in tinylora" that does not say
# which rule it used compares two things at once.
#
# ## 2. AdamW decays `B` `lr_ratio` times faster
#
# AdamW's weight decay is *decoupled*: before its Adam step it shrinks each parameter,
# `p <- p (1 - lr * wd)`, with **its own group's** `lr`. Under LoRA+ `B`'s `lr` is `lr_ratio`
# times `A`'s, so `B` decays `lr_ratio` times faster: a `weight_decay` tuned for plain LoRA
# means something else for `B` under LoRA+. Zero gradients isolate the decay (Adam's step is
# exactly 0 for a zero gradient):

# %%
def decay_only(lr_ratio, weight_decay, steps):
    """|A_t| / |A_0| and |B_t| / |B_0| per step: AdamW with LoRA+ groups, zero gradients."""
    p = {"fc.A": np.ones((8, 2)), "fc.B": np.ones((2, 8))}
    opt = AdamW(p, weight_decay=weight_decay, groups=loraplus_groups(p, lr=LR, lr_ratio=lr_ratio))
    sizes = {"A": [], "B": []}
    for _ in range(steps):
        opt.step({k: np.zeros_like(a) for k, a in p.items()})
        for f in "AB":
            sizes[f].append(float(np.linalg.norm(p[f"fc.{f}"]) / np.linalg.norm(np.ones(16))))
    return {f: np.array(v) for f, v in sizes.items()}


wd, horizon = 0.1, 3000
curves = {ratio: decay_only(ratio, wd, horizon) for ratio in (1.0, 4.0, 16.0)}
shrink_A, shrink_B = 1 - curves[16.0]["A"][0], 1 - curves[16.0]["B"][0]
print(f"one step, lr_ratio 16: A shrinks by {shrink_A:.2e} (lr wd = {LR * wd:.0e}), "
      f"B by {shrink_B:.2e}: {shrink_B / shrink_A:.6f} times as much")
assert np.isclose(shrink_B / shrink_A, 16.0, rtol=1e-9)
assert np.allclose(curves[1.0]["B"], curves[1.0]["A"], rtol=0, atol=0)  # ratio 1: the same

fig, ax = plt.subplots(figsize=(7.5, 4))
steps_axis = np.arange(1, horizon + 1)
ax.plot(steps_axis, curves[1.0]["A"], "k-", lw=2.5, label="A (every ratio), and B at ratio 1")
for ratio, style in ((4.0, "--"), (16.0, ":")):
    ax.plot(steps_axis, curves[ratio]["B"], style, lw=2, label=f"B at ratio {ratio:g}")
ax.set(xlabel="AdamW step (zero gradients: decay alone)", ylabel="|p_t| / |p_0|",
       title=f"Decoupled decay, lr = {LR:g}, weight_decay = {wd:g}", ylim=(0, 1.02))
ax.legend(fontsize=8, loc="lower left")
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** The black line is `(1 - lr wd)^t`: `A` at every ratio. `B` at ratio 16
# follows `(1 - 16 lr wd)^t`: after the same steps it has lost far more of its size. In real
# training the gradient pushes back, so the loss is what decides whether that matters; but the
# decay you set is not the decay `B` gets.
#
# ## 3. The weight-decay trap: a decay that reaches no group
#
# An optimizer's `weight_decay=` is a default for its groups; a group that names its own
# `weight_decay` overrides it. PEFT writes `loraplus_weight_decay` (default `0.0`) into every
# group it builds, so `AdamW(..., weight_decay=0.01)` around PEFT's groups decayed nothing
# (PEFT issue #1915, axolotl #4010; `docs/peft.md`). `loraplus_groups` writes no decay unless
# asked (`weight_decay=None`), so the optimizer's reaches every group; only PEFT's
# "B (no decay)" group is pinned at 0.

# %%
def one_decay_step(groups_weight_decay, optimizer_weight_decay):
    """Which arrays shrank in one zero-gradient AdamW step."""
    p = {"fc.A": np.ones((4, 2)), "fc.B": np.ones((2, 4)), "fc.b": np.ones(4)}
    groups = loraplus_groups(p, lr=LR, lr_ratio=RATIO, weight_decay=groups_weight_decay,
                             rule="peft")
    AdamW(p, weight_decay=optimizer_weight_decay, groups=groups).step(
        {k: np.zeros_like(a) for k, a in p.items()})
    return sorted(k for k, a in p.items() if np.all(a < 1))


as_peft_writes = one_decay_step(0.0, 0.01)  # every group says 0: the optimizer's 0.01 is lost
as_tinylora_writes = one_decay_step(None, 0.01)  # no group says: the optimizer's 0.01 applies
print(f"groups carry weight_decay 0.0: decayed {as_peft_writes}; groups carry none: decayed "
      f"{as_tinylora_writes}")
assert as_peft_writes == [] and as_tinylora_writes == ["fc.A", "fc.B"]  # fc.b: "no decay"

# %% [markdown]
# ## 4. The ratio-1 trap: when "LoRA+ at ratio 1" is not plain LoRA
#
# With only `A` and `B` trainable, LoRA+ at `lr_ratio = 1` is plain LoRA, bit for bit, under
# both rules and with any weight decay (`tests/test_groups.py` pins it over 20 AdamW steps).
# Trainable biases break that under PEFT's rule: they sit in "B (no decay)", so with
# `weight_decay > 0` they stop decaying although the ratio is 1. An MLP with trainable biases and
# `AdamW(lr, weight_decay=0.1)`: first what each array gets (its group's rate and decay, as the
# optimizer holds them), then 20 steps of each rule at ratio 1 against one plain group:

# %%
def mlp_with_biases():
    return LoRAMLP(MLPConfig(6, 12, 3, bias=True), LoRAConfig(r=2), seed=1,
                   trainable=["fc1.A", "fc1.B", "fc2.A", "fc2.B", "fc1.b", "fc2.b"])


def treatment(p, rule, lr_ratio=1.0, weight_decay=0.1):
    """{key: (lr, weight decay)} as AdamW holds them; rule None: one plain group at LR."""
    groups = None if rule is None else loraplus_groups(p, lr=LR, lr_ratio=lr_ratio, rule=rule)
    opt = AdamW(p, lr=LR, weight_decay=weight_decay, groups=groups)
    return {k: (g["lr"], g["weight_decay"]) for g in opt.groups for k in g["params"]}


def trained(rule, steps=20):
    """The trainable arrays after `steps` AdamW steps at ratio 1; rule None: one plain group."""
    mlp = mlp_with_biases()
    x_, y_ = np.random.default_rng(2).standard_normal((16, 6)), np.ones((16, 3))
    p = mlp.trainable_params()
    groups = None if rule is None else loraplus_groups(p, lr=LR, lr_ratio=1.0, rule=rule)
    opt = AdamW(p, lr=LR, weight_decay=0.1, groups=groups)
    for _ in range(steps):
        opt.step(loss_and_grads(mlp, x_, y_)[1])
    return {k: a.copy() for k, a in p.items()}


mlp_params = mlp_with_biases().trainable_params()
plain_treatment, plain = treatment(mlp_params, None), trained(None)
for rule in ("tinylora", "peft"):
    treated = treatment(mlp_params, rule)
    other = sorted(k for k in mlp_params if treated[k] != plain_treatment[k])
    moved = sorted(k for k, a in trained(rule).items() if not np.array_equal(a, plain[k]))
    print(f"rule {rule!r}, ratio 1: treated unlike plain LoRA: {other}; after 20 steps, "
          f"different from plain LoRA: {moved}")
    if rule == "tinylora":
        assert other == [] and moved == []  # plain LoRA, bit for bit
    else:
        assert other == ["fc1.b", "fc2.b"]  # the biases: no decay
        assert moved == sorted(mlp_params)  # and through the loss, every array
print("the biases under PEFT's rule:", {k: treatment(mlp_params, "peft")[k] for k in ("fc1.b",)},
      "against plain LoRA's", {k: plain_treatment[k] for k in ("fc1.b",)})

# %% [markdown]
# The second trap is the embedding: under PEFT's rule LoRA on the token embedding trains at
# `loraplus_lr_embedding`, `1e-6` by default, whatever `lr` is (until PEFT #3503 that group was
# always empty and `lora_embedding_B` trained at `lr`; `docs/peft.md`). Exercise 3 asks you to
# predict the whole list for a small language model.
#
# ## 5. Choosing the ratio, by init
#
# **The paper** (`docs/paper.md`) suggests `lambda = 2^4 = 16`, found with Init[2]
# (`A = 0`, `B` random) on RoBERTa; with Init[1] (`B = 0`, PEFT's default) its best ratios were
# smaller, `2^2` to `2^3`, and for Llama `2^1` to `2^2`. Summaries that print "24" lost the
# superscript. Neither PEFT nor the authors' code sets a default, and `loraplus_groups` is
# becoming the same: pass `lr_ratio` every time.
#
# **This project's records.** `tinylora finetune` tuned `eta_A` separately for every ratio from
# 1 up, on two seeds, then measured on four others, at three widths and both inits
# (`docs/results/README.md`, `docs/results/finetune/`). Read from the recorded run, when it is
# here:

# %%
recorded = Path("..") / "docs" / "results" / "finetune" / "summary.json"  # run from lessons/
if recorded.exists():
    study = json.loads(recorded.read_text())
    rows = list(zip(study["init"], study["widths"], study["speedup"], study["speedup_interval"],
                    study["tuned_lr_ratio"]))
    print("init     d_model  speed-up of ratio 16 over plain LoRA [95 %]  tuned ratio")
    for init, width, speedup, (lo, hi), tuned in rows:
        name = {"zero_B": "Init[1]", "zero_A": "Init[2]"}[init]
        print(f"{name:<8} {width:>7}  {speedup:>21.2f} [{lo:.2f}, {hi:.2f}]  {tuned:>13g}")
    init1 = [r for r in rows if r[0] == "zero_B"]
    init2 = [r for r in rows if r[0] == "zero_A"]
    assert all(r[2] < 1 for r in init1)  # Init[1]: ratio 16 slower than LoRA at every width
    assert all(r[4] <= 4 for r in init1)  # and the tuned ratio was 4 or less
    assert all(r[3][0] > 1 for r in init2)  # Init[2]: ratio 16 faster, interval above 1
    assert all(r[4] >= 64 for r in init2)  # and the tuned ratio was 64 or more
    at = {(init, w): i for i, (init, w) in enumerate(zip(study["init"], study["widths"]))}
    for width in sorted({r[1] for r in rows}):
        i1, i2 = at["zero_B", width], at["zero_A", width]
        lo_tuned, hi_tuned = study["speedup_tuned_lr_ratio_interval"][i1]
        lo_lora, hi_lora = study["loss_lora_interval"][i1]
        print(f"d_model {width}: Init[1] at its tuned ratio, speed-up "
              f"{study['speedup_tuned_lr_ratio'][i1]:.2f} [{lo_tuned:.2f}, {hi_tuned:.2f}]; "
              f"Init[2] at its tuned ratio ends at {study['loss_tuned_lr_ratio'][i2]:.4f}, "
              f"plain LoRA with Init[1] at {study['loss_lora'][i1]:.4f} [{lo_lora:.4f}, "
              f"{hi_lora:.4f}]")
        assert lo_tuned <= 1 <= hi_tuned  # Init[1]: the tuned ratio ends level with plain LoRA
        assert study["loss_tuned_lr_ratio"][i2] >= lo_lora  # Init[2] tuned: no better than that

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for init_rows, name, marker in ((init1, "Init[1] (B = 0: PEFT's default)", "o"),
                                    (init2, "Init[2] (A = 0)", "s")):
        ax.plot([r[1] for r in init_rows], [r[4] for r in init_rows], marker + "-", label=name)
    ax.axhline(16, color="gray", ls="--", lw=1, label="16, the paper's suggestion")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set(xlabel="d_model", ylabel="tuned lr_ratio (tuning seeds)", ylim=(0.25, 4096),
           title="The ratio a practitioner would have picked, by init")
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    plt.show()
else:
    print(f"(the recorded study is not here: {recorded.resolve()} is missing; it is in the "
          "repository's docs/results/finetune/)")

# %% [markdown]
# **What this says, and what to type.**
# - **With Init[1]** (PEFT's default), the records agree with the paper that the best ratio is
#   small, and say more: ratio 16 was *slower* than tuned plain LoRA at every width, and the
#   tuned ratio ended level with plain LoRA (its speed-up's interval holds 1). Start at
#   `lr_ratio` 1 to 4 and tune `lr`; do not take 16 on faith.
# - **With Init[2]**, a large ratio helped at every width: 16 was faster than plain LoRA with
#   Init[2], and the tuned ratios were larger still. But that only brought Init[2] back to where
#   plain LoRA with Init[1] already was, no lower (the losses printed above;
#   `docs/results/README.md`).
# - Either way, **tune `lr` (= `eta_A`) for the ratio you pick** (LoRA+ is "fix `lambda`, tune
#   `eta_A`"), and expect the best ratio to grow with the width (lessons 3 and 4): a ratio tuned on
#   a small model is a floor, not a ceiling, for a wider one.
#
# ## 6. PEFT itself
#
# Where `torch` and `peft` are installed, this cell builds PEFT's optimizer for a small LoRA MLP
# with trainable biases and sets its groups beside `loraplus_groups(..., rule="peft")` on the
# same MLP in tinylora: as many arrays per group, at the same rates. Elsewhere it says what it
# would have done.

# %%
try:
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.optimizers import create_loraplus_optimizer
except ImportError as err:
    print(f"torch and peft are not installed here ({err}). With `pip install torch peft`, this "
          "cell would build a LoRA MLP in PEFT, call create_loraplus_optimizer(model, "
          f"torch.optim.AdamW, lr={LR:g}, loraplus_lr_ratio={RATIO:g}) and check its groups "
          "against loraplus_groups(..., rule='peft').")
else:
    net = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    peft_model = get_peft_model(net, LoraConfig(r=2, target_modules=["0", "2"], bias="all"))
    peft_opt = create_loraplus_optimizer(peft_model, torch.optim.AdamW, lr=LR,
                                         loraplus_lr_ratio=RATIO)
    theirs = [(len(g["params"]), g["lr"], g["weight_decay"]) for g in peft_opt.param_groups
              if g["params"]]
    mlp = LoRAMLP(MLPConfig(6, 12, 3, bias=True), LoRAConfig(r=2), trainable="all")
    keys = [*mlp.adapter_keys(), "fc1.b", "fc2.b"]
    ours_groups = loraplus_groups({k: mlp.params[k] for k in keys}, lr=LR, lr_ratio=RATIO,
                                  weight_decay=0.0, rule="peft")  # PEFT's default decay, 0
    mine = [(len(g["params"]), g["lr"], g["weight_decay"]) for g in ours_groups]
    print(f"PEFT's groups (arrays, lr, weight decay): {theirs}")
    print(f"tinylora's, rule 'peft':                  {mine}")
    assert mine == theirs

# %% [markdown]
# ## Your turn: predict, derive, check
# Each exercise is a function to complete (replace the `raise`), then a checker cell. The
# checker calls your function on a few cases and prints `right.`, or the first case it gets
# wrong with what it expected and what came back. The solutions are in
# `lessons/solutions/09_loraplus_in_peft.py`: try first.
#
# **Exercise 1 (derive): PEFT's rule, written by you.** Write the grouping of
# `create_loraplus_optimizer` from part 1's table: for each trainable array, its group's name
# (`"A"`, `"embedding"`, `"B"` or `"B (no decay)"`) and learning rate. Keys are tinylora's
# (`<layer>.A`, `<layer>.B`, `<layer>.b` a bias, `<layer>.g` a norm gain; the embedding's LoRA is
# `tok_emb.A`, `tok_emb.B`); `ndim` is the array's number of dimensions. The checker tries models
# part 1 did not show.

# %%
def peft_group(key, ndim, lr, lr_ratio, lr_embedding=1e-6):
    """-> (group name, learning rate) of one trainable array under PEFT's LoRA+ rule."""
    raise NotImplementedError("your lines")


# %%
lm = TinyLM(LMConfig(vocab_size=20, d_model=8, n_head=2, n_layer=1, context=8),
            LoRAConfig(r=2, targets=("tok_emb", "q", "fc2")), seed=0,
            trainable=["tok_emb.A", "tok_emb.B", "blocks.0.attn.q.A", "blocks.0.attn.q.B",
                       "blocks.0.mlp.fc2.A", "blocks.0.mlp.fc2.B", "blocks.0.mlp.fc2.b",
                       "blocks.0.ln2.g", "ln_f.b", "head.W", "pos_emb"])
lm_params = lm.trainable_params()
peft_cases = []
for lr_, ratio_ in ((LR, RATIO), (3e-4, 4.0)):
    truth = rates_by_key(loraplus_groups(lm_params, lr=lr_, lr_ratio=ratio_, rule="peft"))
    peft_cases += [(f"{k}, lr {lr_:g}, ratio {ratio_:g}", (k, lm_params[k].ndim, lr_, ratio_),
                    truth[k][:2]) for k in lm_params]
ex.check(peft_group, peft_cases)

# %% [markdown]
# **Exercise 2 (derive): a decay for `B` that means what you meant.** You tuned
# `weight_decay = wd` for plain LoRA (one group at `lr`). Under LoRA+ with `lr_ratio`, which
# `weight_decay` must `B`'s group carry so that `B` shrinks per AdamW step exactly as it did under
# plain LoRA?

# %%
def matched_B_decay(wd, lr_ratio):
    """The weight decay of B's group under LoRA+ that gives plain LoRA's per-step decay."""
    raise NotImplementedError("your line: return ...")


# %%
def decay_that_matches(wd_, lr_ratio_):
    """B's group decay found numerically: bisection until B's one-step shrink equals plain
    LoRA's (zero gradients)."""
    def shrink_of_B(wd_B):
        p = {"fc.A": np.ones((2, 2)), "fc.B": np.ones((2, 2))}
        groups = loraplus_groups(p, lr=LR, lr_ratio=lr_ratio_)
        for g in groups:
            g["weight_decay"] = wd_B if g["name"] == "B" else wd_
        AdamW(p, groups=groups).step({k: np.zeros_like(a) for k, a in p.items()})
        return 1 - p["fc.B"][0, 0]

    target = LR * wd_  # plain LoRA: p <- p (1 - lr wd)
    lo, hi = 0.0, wd_
    for _ in range(100):
        lo, hi = ((lo + hi) / 2, hi) if shrink_of_B((lo + hi) / 2) < target else (lo, (lo + hi) / 2)
    return (lo + hi) / 2


ex.check(matched_B_decay, [(f"wd = {w:g}, lr_ratio = {k:g}", (w, k), decay_that_matches(w, k))
                           for w, k in ((0.1, 16.0), (0.01, 4.0))], rtol=1e-6)

# %% [markdown]
# **Exercise 3 (predict): the ratio-1 trap on a language model.** The small language model of
# exercise 1 (LoRA on the token embedding, `q` and `fc2`; a bias, a norm gain, the final norm's
# shift, the head and the position table trainable too) is given to
# `AdamW(lr, weight_decay=0.1)`, once as one plain group, once with
# `loraplus_groups(..., lr_ratio=1, rule="peft")` and PEFT's default `lr_embedding`. For a
# trainable key, return `True` if its learning rate or its weight decay differs between the two.
# (After a few steps every array ends elsewhere, as part 4 showed: the loss couples them. The
# question is which arrays the groups treat differently.)

# %%
def treated_differently_at_ratio_1(key):
    """True when PEFT's rule at lr_ratio 1 gives `key` another rate or decay than plain LoRA."""
    raise NotImplementedError("your line: return ...")


# %%
lm_plain, lm_peft = treatment(lm_params, None), treatment(lm_params, "peft")
ex.check(treated_differently_at_ratio_1, [(k, (k,), lm_peft[k] != lm_plain[k])
                                          for k in lm_params])

# %% [markdown]
# **Inline question (written).** A colleague fine-tunes with PEFT's defaults (Init[1],
# `bias="all"`), `loraplus_lr_ratio=16`, and the Trainer's `weight_decay=0.01`, and reports that
# "LoRA+ made no difference". List what their run actually did to `B`'s decay, to the biases'
# rate and decay, and which ratio and `lr` you would have tried instead, citing part 5.
#
# *Your answer:* (write it here)

# %%
print(f"this lesson ran in {time.perf_counter() - T0:.1f} s (fast mode: {FAST})")

# %% [markdown]
# ## Recap
# - LoRA+ is two learning rates, but every codebase also decides where the *other* trainable
#   arrays go: PEFT's rule puts every 1-D array (biases, norms) at `B`'s rate, without decay,
#   and the embedding's LoRA at its own tiny rate; tinylora's keeps them at `A`'s.
# - AdamW's decoupled decay runs at each group's rate, so `B` decays `lr_ratio` times faster;
#   and a group that carries its own `weight_decay` (PEFT writes 0) overrides the optimizer's.
#   "Ratio 1" is plain LoRA only when nothing but `A` and `B` trains (or with tinylora's rule).
# - Choose the ratio by init: small (1 to 4) with Init[1], PEFT's default; large with Init[2];
#   and tune `lr` for it, whatever you pick.
