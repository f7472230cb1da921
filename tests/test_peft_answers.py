"""The answers of docs/peft.md that are claims about training, each shown on a toy in seconds,
and the numbers that page quotes, read from the recorded runs.

- rsLoRA's scale and the ratio: under Adam, the scale is a factor on the rate of the factor
  that starts at zero (exact up to Adam's eps), so changing the scale changes the ratio.
- An LR-free optimizer and the ratio: a port of Prodigy's step (an Adam whose step size d is
  estimated from the gradients) does not keep the ratio it is given.
- Which rates `lm_head`, `modules_to_save` copies and DoRA-like 1-D arrays get under PEFT's rule.
"""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tinylora import (
    Adam,
    LMConfig,
    LoRAConfig,
    LoRAMLP,
    MLPConfig,
    TinyLM,
    loraplus_groups,
    loss_and_grads,
    train,
)
from tinylora.groups import peft_kind

ROOT = Path(__file__).resolve().parents[1]
PEFT_MD = " ".join((ROOT / "docs" / "peft.md").read_text().split())


# --------------------------------------------------------------------------------------------
# Which lr_ratio: the page quotes the recorded fine-tuning study


def test_the_lr_ratio_guidance_quotes_the_recorded_study():
    """docs/peft.md's guidance by init quotes docs/results/finetune/summary.json: the widths where
    ratio 16 was slower than plain LoRA under Init[1] (95 % interval below 1), with those
    speed-ups, and the tuned ratios under each init; and the paper's values."""
    s = json.loads((ROOT / "docs/results/finetune/summary.json").read_text())
    rows = list(zip(s["init"], s["widths"], s["tuned_lr_ratio"], s["speedup"],
                    s["speedup_interval"]))
    slower = [(w, x) for i, w, _, x, (_, high) in rows if i == "zero_B" and high < 1]
    assert len(slower) == 2
    (w1, x1), (w2, x2) = slower
    assert (f"ratio 16 was slower than plain LoRA at d_model {w1} and {w2} (speed-up {x1:.2f} "
            f"and {x2:.2f}, both 95 % intervals below 1)") in PEFT_MD
    for init, name in (("zero_B", "Init[1]"), ("zero_A", "Init[2]")):
        tuned = [t for i, _, t, _, _ in rows if i == init]
        assert f"{name}: the tuned ratio was {' , '.join(f'{t:g}' for t in tuned)}".replace(
            " ,", ",") in PEFT_MD
    assert "2^4 with Init[2] on RoBERTa" in PEFT_MD and "2^2 to 2^3 with Init[1]" in PEFT_MD
    assert "2^1 to 2^2 for Llama" in PEFT_MD


# --------------------------------------------------------------------------------------------
# rsLoRA's scale and the ratio


def _merged_after(init: str, rslora: bool, lr: float, lr_ratio: float, steps: int = 20):
    """scale * A B of fc1 after `steps` Adam steps (eps 1e-12) on a fixed toy, and its loss."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8))
    y = np.sin(x[:, :2].sum(axis=1, keepdims=True))
    lora = LoRAConfig(r=4, alpha=4.0, rslora=rslora, init=init, targets=["fc1"])
    model = LoRAMLP(MLPConfig(8, [32], 1), lora, seed=0)
    params = model.trainable_params()
    opt = Adam(params, eps=1e-12, groups=loraplus_groups(params, lr=lr, lr_ratio=lr_ratio))
    train(model, opt, x, y, steps=steps)
    return model.scale * model.params["fc1.A"] @ model.params["fc1.B"]


@pytest.mark.parametrize("init", ["zero_B", "zero_A"])
def test_the_scale_is_a_factor_on_the_rate_of_the_factor_that_starts_at_zero(init):
    """Under Adam, training with scale s at (lr, ratio) is training with scale 1 at (lr,
    s * ratio) under Init[1] (B = 0), and at (s * lr, ratio / s) under Init[2] (A = 0), exactly
    up to Adam's eps: rsLoRA (s = alpha / sqrt(r) = 2 here, not alpha / r = 1) at ratio 4 trains
    as plain LoRA at ratio 8 (Init[1]), and differs from plain LoRA at ratio 4."""
    s = 2.0  # alpha / sqrt(r) with alpha = r = 4; plain LoRA's alpha / r is 1
    rs = _merged_after(init, True, 1e-2, 4.0)
    same = (_merged_after(init, False, 1e-2, 4.0 * s) if init == "zero_B"
            else _merged_after(init, False, 1e-2 * s, 4.0 / s))
    unchanged = _merged_after(init, False, 1e-2, 4.0)
    size = np.abs(rs).max()
    assert np.abs(rs - same).max() < 1e-7 * size
    assert np.abs(rs - unchanged).max() > 0.1 * size


# --------------------------------------------------------------------------------------------
# An LR-free optimizer and the ratio: a port of Prodigy's step (Mishchenko and Defazio, 2023;
# konstmish/prodigy, without weight decay, bias correction or safeguard warm-up)


def prodigy(lr_ratio: float, per_group: bool, seed: int, steps: int = 60):
    """A LoRA MLP (width 64, Init[1]) trained by Prodigy with A's group at rate 1 and B's at
    `lr_ratio`; one step-size estimate d shared by both groups (Prodigy's own; it refuses
    unequal rates, allowed here to see what they would do) or one per group (as variants with
    per-group adaptation). -> (A's effective rate d_A * 1, B's d_B * lr_ratio) at the end."""
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((128, 8))
    y = np.sin(x[:, :2].sum(axis=1, keepdims=True))
    model = LoRAMLP(MLPConfig(8, [64, 64], 1), LoRAConfig(r=4, targets=["fc1", "fc2"]), seed=seed)
    p = model.trainable_params()
    rate = {k: lr_ratio if k.endswith(".B") else 1.0 for k in p}
    group = {k: (k[-1] if per_group else "all") for k in p}
    beta1, beta2, beta3, eps, d0 = 0.9, 0.999, math.sqrt(0.999), 1e-8, 1e-6
    d = {g: d0 for g in set(group.values())}
    d_max, numerator = dict(d), dict.fromkeys(d, 0.0)
    x0 = {k: v.copy() for k, v in p.items()}
    m, v, s = ({k: np.zeros_like(a) for k, a in p.items()} for _ in range(3))
    for _ in range(steps):
        _, g = loss_and_grads(model, x, y)
        before, denominator = dict(d), dict.fromkeys(d, 0.0)  # the step is taken with d before
        for name in d:
            numerator[name] *= beta3
        for k in p:
            dk, dlr = d[group[k]], d[group[k]] * rate[k]
            numerator[group[k]] += dk / d0 * dlr * float(np.vdot(g[k], x0[k] - p[k]))
            m[k] = beta1 * m[k] + dk * (1 - beta1) * g[k]
            v[k] = beta2 * v[k] + dk * dk * (1 - beta2) * g[k] ** 2
            s[k] = beta3 * s[k] + dk / d0 * dlr * g[k]
            denominator[group[k]] += float(np.abs(s[k]).sum())
        for name in d:  # d only grows: to the largest estimate seen
            if denominator[name] > 0:
                d_max[name] = max(d_max[name], numerator[name] / denominator[name])
                d[name] = max(d[name], d_max[name])
        for k in p:  # Prodigy steps with this step's d * lr (dlr) over sqrt(v) + d_new * eps
            p[k] -= before[group[k]] * rate[k] * m[k] / (np.sqrt(v[k]) + d[group[k]] * eps)
    d_a, d_b = (d["A"], d["B"]) if per_group else (d["all"], d["all"])
    return d_a, d_b * lr_ratio


SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def prodigy_runs():
    return {(per_group, ratio, seed): prodigy(ratio, per_group, seed)
            for per_group in (False, True) for ratio in (1.0, 16.0) for seed in SEEDS}


def test_a_shared_step_estimate_keeps_the_ratio_but_moves_both_rates(prodigy_runs):
    """With one estimate d for both groups the effective rates keep the ratio set (one d
    multiplies both), but d itself moves: setting B's rate 16 times A's (instead of equal)
    raised B's effective rate 6- to 7-fold, not 16-fold, and cut A's 2- to 3-fold, on every
    seed. The page quotes these bounds."""
    for seed in SEEDS:
        (a1, b1), (a16, b16) = prodigy_runs[(False, 1.0, seed)], prodigy_runs[(False, 16.0, seed)]
        assert b1 == pytest.approx(a1) and b16 == pytest.approx(16.0 * a16)
        assert 6.0 < b16 / b1 < 7.0 and 2.0 < a1 / a16 < 3.0
    assert "raised B's effective rate 6- to 7-fold, not 16-fold, and cut A's 2- to 3-fold" in (
        PEFT_MD)


def test_per_group_step_estimates_give_a_ratio_nobody_set(prodigy_runs):
    """With one estimate per group, the realised ratio d_B lr_B / (d_A lr_A) was off the set one
    by more than 25 % on every seed, at ratio 1 and at ratio 16; the page quotes its range."""
    realised = {ratio: [prodigy_runs[(True, ratio, seed)][1] / prodigy_runs[(True, ratio, seed)][0]
                        for seed in SEEDS] for ratio in (1.0, 16.0)}
    for ratio, values in realised.items():
        assert all(abs(math.log(v / ratio)) > math.log(1.25) for v in values), (ratio, values)
    quoted = (f"from {min(realised[1.0]):.1f} to {max(realised[1.0]):.1f} with the two rates "
              f"set equal, and from {min(realised[16.0]):.0f} to {max(realised[16.0]):.0f} with "
              f"ratio 16 set")
    assert quoted in PEFT_MD, quoted


# --------------------------------------------------------------------------------------------
# lm_head, modules_to_save, DoRA's magnitude: the rates PEFT's rule gives them


def test_fully_trained_modules_get_As_rate_and_their_biases_Bs():
    """A fully trained head or embedding table (PEFT's `modules_to_save` copies, `lm_head`)
    goes to A's rate under PEFT's rule, never `lr_embedding` (only an embedding's LoRA factors
    get that); its bias and the norms go to B's rate without decay."""
    lm = TinyLM(LMConfig(vocab_size=8, d_model=8, n_head=2, n_layer=1, context=4),
                LoRAConfig(r=2, targets=("tok_emb", "q")), trainable="all")
    groups = {k: g["name"] for g in loraplus_groups(lm.trainable_params(), 1e-3, 4.0,
                                                      rule="peft") for k in g["params"]}
    assert groups["head.W"] == groups["tok_emb"] == groups["blocks.0.attn.q.W"] == "A"
    assert groups["tok_emb.A"] == groups["tok_emb.B"] == "embedding"
    assert groups["blocks.0.attn.q.b"] == groups["ln_f.g"] == "B (no decay)"


def test_a_one_dimensional_array_like_DoRAs_magnitude_gets_Bs_rate_under_peft():
    """PEFT sends every other 1-D trainable array (DoRA's magnitude vector is one) to B's rate,
    with decay; tinylora's rule keeps it at A's."""
    assert peft_kind("blocks.0.attn.q.magnitude", 1) == "B"
    params = {"q.A": np.zeros((4, 2)), "q.B": np.zeros((2, 4)), "q.magnitude": np.ones(4)}
    ours = {k: g["name"] for g in loraplus_groups(params, 1e-3, 4.0) for k in g["params"]}
    assert ours["q.magnitude"] == "A (and others)"


def test_the_page_answers_the_six_questions():
    """docs/peft.md has a section for each question asked in the issue threads."""
    for heading in ("LoRA+ in a Hugging Face `Trainer`", "LR-free optimizers such as Prodigy",
                    "DoRA's magnitude vector", "rsLoRA's scale and the ratio",
                    "`lm_head` and `modules_to_save`", "LongLoRA's \"LoRA+\""):
        assert re.search(rf"^### .*{re.escape(heading)}", (ROOT / "docs/peft.md").read_text(),
                         re.M), heading
