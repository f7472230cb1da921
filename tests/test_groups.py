"""The LoRA+ parameter groups by both rules (tinylora.groups), and the traps users fall into."""

import importlib.util
import math

import numpy as np
import pytest

from tinylora import LoRAConfig, LoRAMLP, MLPConfig, loss_and_grads
from tinylora.groups import loraplus_groups
from tinylora.optim import Adam, AdamW

# Our keys and the names PEFT gives the same arrays, with the class of the module that owns each.
PEFT_NAMES = {
    "fc1.A": ("fc1.lora_A.default.weight", "Linear", 2),
    "fc1.B": ("fc1.lora_B.default.weight", "Linear", 2),
    "fc1.W": ("fc1.base_layer.weight", "Linear", 2),
    "fc1.b": ("fc1.base_layer.bias", "Linear", 1),
    "ln1.g": ("ln1.weight", "LayerNorm", 1),
    "ln1.b": ("ln1.bias", "LayerNorm", 1),
    "scale.s": ("scale.s", "Module", 1),  # a 1-D array that is neither bias nor norm
    "tok_emb.A": ("tok_emb.lora_embedding_A.default", "LoraEmbedding", 2),
    "tok_emb.B": ("tok_emb.lora_embedding_B.default", "LoraEmbedding", 2),
}


def peft_mirror(named, lr, ratio, loraplus_weight_decay=0.0, loraplus_lr_embedding=1e-6):
    """A hand-written mirror of `peft.optimizers.create_loraplus_optimizer`'s grouping:
    (PEFT name, module class, ndim) rows -> its four groups, in its order (empty ones dropped)."""
    decay = [n for n, module, _ in named if module != "LayerNorm" and "bias" not in n]
    groups = {"groupA": [], "embedding": [], "groupB": [], "groupB_no_decay": []}
    for name, module, ndim in named:
        if module == "LoraEmbedding":
            groups["embedding"].append(name)
        elif "lora_B" in name or ndim == 1:
            groups["groupB" if name in decay else "groupB_no_decay"].append(name)
        else:
            groups["groupA"].append(name)
    rows = [(groups["groupA"], lr, loraplus_weight_decay),
            (groups["embedding"], loraplus_lr_embedding, loraplus_weight_decay),
            (groups["groupB"], lr * ratio, loraplus_weight_decay),
            (groups["groupB_no_decay"], lr * ratio, 0.0)]
    return [(names, rate, wd) for names, rate, wd in rows if names]


def _arrays():
    return {k: np.zeros((2, 3) if ndim == 2 else 3) for k, (_, _, ndim) in PEFT_NAMES.items()}


def test_peft_rule_matches_a_mirror_of_create_loraplus_optimizer():
    """rule="peft" gives PEFT's groups, in its order, with its rates and decays, for every kind
    of array (LoRA factors, frozen-turned-trainable W, biases, norms, other 1-D, embeddings)."""
    params = _arrays()
    ours = loraplus_groups(params, lr=2e-4, lr_ratio=16, weight_decay=0.05, rule="peft",
                           lr_embedding=3e-6)
    mirror = peft_mirror([PEFT_NAMES[k] for k in params], 2e-4, 16, 0.05, 3e-6)
    assert [([PEFT_NAMES[k][0] for k in g["params"]], g["lr"], g["weight_decay"])
            for g in ours] == mirror


def test_tinylora_rule_puts_only_B_in_the_fast_group():
    """rule="tinylora" (the default): every ``*.B``, the embedding's too, at lr * ratio; biases,
    norms, W and the embedding's A at lr."""
    slow, fast = loraplus_groups(_arrays(), lr=2e-4, lr_ratio=16)
    assert fast["params"] == ["fc1.B", "tok_emb.B"] and math.isclose(fast["lr"], 3.2e-3)
    assert set(slow["params"]) == set(PEFT_NAMES) - {"fc1.B", "tok_emb.B"}


@pytest.mark.skipif(importlib.util.find_spec("peft") is None
                    or importlib.util.find_spec("torch") is None,
                    reason="peft and torch are not installed: the mirror stands in for PEFT")
def test_peft_rule_matches_peft_itself():  # pragma: no cover - runs where peft is installed
    """Where peft is installed: its optimizer's groups on a LoRA MLP hold as many arrays, at the
    same rates, as ours on the same MLP."""
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.optimizers import create_loraplus_optimizer

    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    model = get_peft_model(net, LoraConfig(r=2, target_modules=["0", "2"], bias="all"))
    opt = create_loraplus_optimizer(model, torch.optim.AdamW, lr=1e-3, loraplus_lr_ratio=16)
    theirs = [(len(g["params"]), g["lr"]) for g in opt.param_groups if g["params"]]
    ours = LoRAMLP(MLPConfig(4, 5, 3, bias=True), LoRAConfig(r=2), trainable="all")
    keys = [*ours.adapter_keys(), "fc1.b", "fc2.b"]
    groups = loraplus_groups({k: ours.params[k] for k in keys}, 1e-3, 16, rule="peft")
    assert [(len(g["params"]), g["lr"]) for g in groups] == theirs


def _run(rule, ratio, wd, groups: bool, steps=20):
    """Train a LoRA MLP (A, B trainable, every B non-zero after step 1) for `steps` AdamW
    steps, with LoRA+ groups or one plain group. -> the final trainable arrays."""
    m = LoRAMLP(MLPConfig(4, 6, 3), LoRAConfig(r=2), seed=1)
    x, y = np.random.default_rng(0).standard_normal((8, 4)), np.ones((8, 3))
    params = m.trainable_params()
    if groups:
        opt = AdamW(params, weight_decay=wd,
                    groups=loraplus_groups(params, 1e-2, ratio, rule=rule))
    else:
        opt = AdamW(params, lr=1e-2, weight_decay=wd)
    for _ in range(steps):
        opt.step(loss_and_grads(m, x, y)[1])
    return {k: v.copy() for k, v in params.items()}


@pytest.mark.parametrize("rule", ["tinylora", "peft"])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_ratio_one_is_plain_lora_bit_for_bit(rule, wd):
    """LoRA+ with lr_ratio 1 is plain LoRA exactly: 20 AdamW steps, with and without weight
    decay, under both rules, give the same bits as one group at lr (axolotl #2065's question)."""
    plus, plain = _run(rule, 1.0, wd, groups=True), _run(rule, 1.0, wd, groups=False)
    assert all(np.array_equal(plus[k], plain[k]) for k in plain)
    assert not np.array_equal(_run(rule, 2.0, wd, groups=True)["fc1.B"], plain["fc1.B"])


def test_peft_rule_sends_biases_to_B_rate_without_decay():
    """Under "peft" a trainable bias runs at lr * ratio and never decays: with weight decay,
    ratio 1 is then not a plain optimizer over the same arrays (the bias does not decay)."""
    params = {"fc1.A": np.ones((2, 2)), "fc1.B": np.ones((2, 2)), "fc1.b": np.ones(2)}
    groups = loraplus_groups(params, 1e-2, 1.0, rule="peft")
    opt = AdamW(params, weight_decay=0.5, groups=groups)
    opt.step({k: np.zeros_like(v) for k, v in params.items()})  # zero gradients: decay alone
    assert np.all(params["fc1.b"] == 1.0) and np.all(params["fc1.A"] == 1.0 - 1e-2 * 0.5)


def test_adamw_decay_is_lambda_times_faster_on_B():
    """AdamW's decoupled decay p -= lr * wd * p uses each group's lr, so under LoRA+ B shrinks
    lr_ratio times faster than A (zero gradients isolate the decay)."""
    params = {"fc1.A": np.ones((3, 2)), "fc1.B": np.ones((2, 3))}
    opt = AdamW(params, weight_decay=0.1, groups=loraplus_groups(params, 1e-3, 16.0))
    opt.step({k: np.zeros_like(v) for k, v in params.items()})
    shrink_a, shrink_b = 1.0 - params["fc1.A"], 1.0 - params["fc1.B"]
    np.testing.assert_allclose(shrink_b[0, 0], 16.0 * shrink_a[0, 0], rtol=1e-12)
    np.testing.assert_allclose(shrink_a, 1e-3 * 0.1, rtol=1e-12)


@pytest.mark.parametrize("rule", ["tinylora", "peft"])
def test_plain_weight_decay_reaches_every_group(rule):
    """The optimizer's own weight_decay= reaches every LoRA+ group that decays (the trap of
    PEFT #1915, axolotl #4010, where the groups' explicit 0 overrode it); a number given to
    loraplus_groups overrides it."""
    params = _arrays()
    opt = AdamW(params, weight_decay=0.3, groups=loraplus_groups(params, 1e-3, 4.0, rule=rule))
    decays = {g["name"]: g["weight_decay"] for g in opt.groups}
    assert decays == {name: 0.0 if name == "B (no decay)" else 0.3 for name in decays}
    opt = Adam(params, weight_decay=0.3, groups=loraplus_groups(params, 1e-3, 4.0, weight_decay=0.0,
                                                                 rule=rule))
    assert all(g["weight_decay"] == 0.0 for g in opt.groups)


def test_the_peft_mirror_shows_the_trap_it_had():
    """PEFT writes loraplus_weight_decay (default 0) into every group: a weight_decay given to
    the optimizer alone reaches none of them (what the test above pins we do not do)."""
    assert all(wd == 0.0 for _, _, wd in peft_mirror(list(PEFT_NAMES.values()), 1e-3, 16))


@pytest.mark.parametrize("kwargs, message", [
    ({"rule": "axolotl"}, r"rule: expected one of \['tinylora', 'peft'\], got 'axolotl'"),
    ({"rule": "peft", "lr_embedding": float("nan")},
     "lr_embedding: expected a finite learning rate >= 0"),
    ({"rule": "peft", "lr_embedding": -1e-6},
     "lr_embedding: expected a finite learning rate >= 0"),
    ({"weight_decay": -0.1}, "weight_decay: expected a finite number >= 0"),
])
def test_bad_grouping_arguments_are_clear_errors(kwargs, message):
    """An unknown rule, a non-finite or negative embedding rate, a negative decay: each an
    error naming the argument, the expected and the received value."""
    with pytest.raises(ValueError, match=message):
        loraplus_groups(_arrays(), 1e-3, 4.0, **kwargs)


def test_peft_rule_needs_arrays_not_keys():
    """PEFT's rule reads each array's ndim: a bare list of keys is refused, clearly."""
    with pytest.raises(ValueError, match="params: expected a dict of arrays"):
        loraplus_groups(["fc1.A", "fc1.B"], 1e-3, 4.0, rule="peft")


def test_a_stack_gets_one_A_rate_and_one_B_rate_per_model():
    """For S stacked models the rates are (S, 1, 1) arrays: B's is lr * lr_ratio per model, with
    the ratio a number or an array of one per model (`tinylora.lab.grid`'s stacks)."""
    lr = np.array([1e-3, 2e-3, 4e-3]).reshape(3, 1, 1)
    slow, fast = loraplus_groups(["fc2.A", "fc2.B"], lr=lr, lr_ratio=16)
    assert slow["lr"] is lr and np.array_equal(fast["lr"], lr * 16.0)
    ratios = np.array([1.0, 4.0, 16.0]).reshape(3, 1, 1)
    _, fast = loraplus_groups(["fc2.A", "fc2.B"], lr=lr, lr_ratio=ratios)
    assert fast["lr"].shape == (3, 1, 1) and np.array_equal(fast["lr"], lr * ratios)


def test_lr_B_gives_B_its_rate_exactly():
    """``lr_B=`` (a grid's eta_B, independent of eta_A) is B's rate itself, bit for bit: never
    lr * (lr_B / lr), which rounds. A number stays a Python float."""
    eta_a, eta_b = np.array([0.1, 0.3]).reshape(2, 1, 1), np.array([0.7, 1e-3]).reshape(2, 1, 1)
    slow, fast = loraplus_groups({"fc2.A": None, "fc2.B": None}, lr=eta_a, lr_B=eta_b)
    assert (slow["params"], fast["params"]) == (["fc2.A"], ["fc2.B"])
    assert slow["lr"] is eta_a and fast["lr"] is eta_b
    assert 0.3 * (0.7 / 0.3) != 0.7  # why the sibling exists: the ratio route rounds
    _, fast = loraplus_groups(["fc2.A", "fc2.B"], lr=0.1, lr_B=0.7)
    assert type(fast["lr"]) is float and fast["lr"] == 0.7


@pytest.mark.parametrize("kwargs, message", [
    ({"lr_ratio": 16.0, "lr_B": 1e-2}, "lr_ratio: expected None when lr_B is given"),
    ({"lr_B": -1.0}, "lr_B: expected a finite learning rate >= 0"),
    ({"lr_ratio": np.array([[[2.0]], [[0.0]]])}, r"lr_ratio: expected a finite number > 0"),
    ({"lr_ratio": np.array([[[2.0]], [[np.nan]]])}, r"lr_ratio: expected a finite number > 0"),
])
def test_bad_rates_of_B_are_clear_errors(kwargs, message):
    """B's rate said twice (lr_ratio and lr_B), a negative lr_B, an array of ratios with a 0 or
    a NaN: each an error naming the argument."""
    with pytest.raises(ValueError, match=message):
        loraplus_groups(["fc2.A", "fc2.B"], 1e-3, **kwargs)


@pytest.mark.parametrize("rule", ["tinylora", "peft"])
def test_the_ratio_is_required_and_the_error_points_to_the_guidance(rule):
    """No default lr_ratio (as PEFT's ``loraplus_lr_ratio`` is required): leaving it out is an
    error naming lr_ratio, saying why (the best ratio depends on the init and the width) and
    where the guidance is; ``lr_B=`` (a grid's independent rates) needs no ratio."""
    with pytest.raises(ValueError) as err:
        loraplus_groups(_arrays(), 1e-3, rule=rule)
    text = str(err.value)
    assert text.startswith("lr_ratio: expected a number > 0, or lr_B= (no default")
    assert "depends on the init and the width" in text and "docs/peft.md" in text
    assert text.endswith("got None (NoneType)")
    assert loraplus_groups(["fc2.A", "fc2.B"], 1e-3, lr_B=2e-3)[1]["lr"] == 2e-3


def test_the_docstring_gives_the_guidance_by_init_with_the_recorded_numbers():
    """loraplus_groups' docstring quotes the recorded fine-tuning study (tuned ratios per init,
    ratio 16 slower than plain LoRA with Init[1] at d_model 64 and 128) and the paper's values;
    the numbers are read from docs/results/finetune/summary.json, so the text cannot drift."""
    import json
    from pathlib import Path

    s = json.loads((Path(__file__).resolve().parents[1] / "docs/results/finetune/summary.json")
                   .read_text())
    rows = list(zip(s["init"], s["widths"], s["tuned_lr_ratio"], s["speedup_interval"]))
    init1 = [r for r in rows if r[0] == "zero_B"]
    init2 = [r for r in rows if r[0] == "zero_A"]
    slower = [w for _, w, _, (_, high) in init1 if high < 1]  # its 95 % interval below 1
    doc = " ".join(loraplus_groups.__doc__.split())
    assert len(slower) == 2
    assert f"slower than plain LoRA at d_model {slower[0]} and {slower[1]}" in doc
    assert (f"tuned ratio was {min(r[2] for r in init1):g} to {max(r[2] for r in init1):g}"
            in doc)
    assert f"it was {min(r[2] for r in init2):g} to {max(r[2] for r in init2):g}" in doc
    assert "2^4 with Init[2] (RoBERTa), 2^2..2^3 with Init[1], 2^1..2^2 for Llama" in doc
