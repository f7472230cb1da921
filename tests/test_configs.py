"""The settings dataclasses: LoRAConfig, MLPConfig, BlockConfig, LMConfig, and the models built
from them (``Model(config, lora, *, keywords)``): each refuses a bad value naming it, the old
keyword-list call is a clear error, and a seed gives exactly the arrays it gave before."""

import copy
import hashlib
import json
from dataclasses import asdict

import numpy as np
import pytest

from tinylora import block
from tinylora.block import BLOCK_TARGETS, BlockConfig, TransformerBlock
from tinylora.gradcheck import catalogue
from tinylora.lora import LoRAConfig, LoRAModel
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import Adam
from tinylora.train import loss_and_grads, train
from tinylora.transformer import LMConfig, TinyLM

# --------------------------------------------------------------------------------------------
# Each config refuses a bad value, naming the argument


@pytest.mark.parametrize("make, message", [
    (lambda: LoRAConfig(r=0), r"r: expected a positive integer rank, got 0 \(int\)"),
    (lambda: LoRAConfig(alpha=-1.0), r"alpha: expected a finite number > 0, got -1.0"),
    (lambda: LoRAConfig(rslora=1), r"rslora: expected True or False, got 1 \(int\)"),
    (lambda: LoRAConfig(init="kaiming"), r"init: expected one of \['zero_B', 'zero_A'\]"),
    (lambda: LoRAConfig(dropout=1.0), r"dropout: expected a finite number in \[0, 1\), got 1.0"),
    (lambda: LoRAConfig(targets=3), r"targets: expected None \(every linear layer\), a layer "
                                    r"name or a list of them, got 3 \(int\)"),
    (lambda: LoRAConfig(targets=["q", None]), r"targets: expected None .*, got \['q', None\]"),
])
def test_lora_config_refuses_bad_values_naming_the_argument(make, message):
    """Every field of LoRAConfig is checked in __post_init__; the error names the field."""
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: MLPConfig(0, 8, 3), r"d_in: expected a positive integer, got 0 \(int\)"),
    (lambda: MLPConfig(6, "8", 3), r"d_hidden: expected a positive integer or a list of them "
                                   r"\(\[\] for one layer\), got '8' \(str\)"),
    (lambda: MLPConfig(6, [8, 0], 3), r"d_hidden: expected a positive integer, got 0"),
    (lambda: MLPConfig(6, 8, 2.5), r"d_out: expected a positive integer, got 2.5 \(float\)"),
    (lambda: MLPConfig(6, 8, 3, activation="tanh"),
     r"activation: expected one of \['gelu', 'relu'\], got 'tanh' \(str\)"),
    (lambda: MLPConfig(6, 8, 3, bias="yes"), r"bias: expected True or False, got 'yes'"),
    (lambda: BlockConfig(0, 2), r"d_model: expected a positive integer, got 0"),
    (lambda: BlockConfig(8, True), r"n_head: expected a positive integer, got True"),
    (lambda: BlockConfig(8, 2, d_ff=-4), r"d_ff: expected a positive integer, got -4"),
    (lambda: LMConfig(0), r"vocab_size: expected a positive integer, got 0"),
    (lambda: LMConfig(11, n_layer=0), r"n_layer: expected a positive integer, got 0"),
    (lambda: LMConfig(11, context=2.0), r"context: expected a positive integer, got 2.0"),
    (lambda: LMConfig(11, d_ff=0), r"d_ff: expected a positive integer, got 0"),
])
def test_model_configs_refuse_bad_values_naming_the_argument(make, message):
    """MLPConfig, BlockConfig and LMConfig check every field in __post_init__, by its name."""
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make", [lambda: BlockConfig(10, 3), lambda: LMConfig(11, 10, 3)])
def test_n_head_must_divide_d_model_in_both_configs(make):
    """BlockConfig and LMConfig refuse n_head = 3 for d_model = 10 with the same message."""
    with pytest.raises(ValueError, match=r"^n_head: expected a divisor of d_model=10, got 3$"):
        make()


def test_the_head_check_is_written_once_for_both_configs(monkeypatch):
    """LMConfig checks its block's sizes through BlockConfig: one `check_heads` serves both."""
    seen = []
    monkeypatch.setattr(block, "check_heads", lambda d_model, n_head: seen.append((d_model,
                                                                                   n_head)))
    BlockConfig(10, 3)
    LMConfig(11, d_model=12, n_head=5)
    assert seen == [(10, 3), (12, 5)]


def test_configs_store_what_they_resolve():
    """d_hidden becomes a tuple (an int, a list, [] alike), d_ff None becomes 4 d_model, NumPy
    ints become ints, a list of targets a tuple: the frozen dataclasses are hashable."""
    assert MLPConfig(6, 8, 3).d_hidden == (8,)
    assert MLPConfig(np.int64(6), [8, np.int64(4)], 3).widths == (6, 8, 4, 3)
    assert MLPConfig(6, [], 3).layer_names == ("fc1",)
    assert BlockConfig(8, 2).d_ff == 32 and LMConfig(11, d_model=8, n_head=2).d_ff == 32
    assert LMConfig(11, d_model=8, n_head=2, d_ff=12).block == BlockConfig(8, 2, 12)
    assert LoRAConfig(targets=["q", "v"]).targets == ("q", "v")
    assert LoRAConfig(targets="q").targets == ("q",) and LoRAConfig().targets is None
    configs = [LoRAConfig(targets=["q"]), MLPConfig(6, [8, 8], 3), BlockConfig(8, 2), LMConfig(5)]
    assert len({*configs, *configs}) == len(configs)  # hashable, equal by value


def test_a_model_keeps_its_two_configs():
    """model.config is the model's settings and model.lora its LoRAConfig (None: LoRAConfig())."""
    config, lora = MLPConfig(6, 8, 3), LoRAConfig(r=2)
    model = LoRAMLP(config, lora)
    assert model.config is config and model.lora is lora
    assert TransformerBlock(BlockConfig(8, 2)).lora == LoRAConfig()


# --------------------------------------------------------------------------------------------
# Targets: None is every linear layer, () none, "tok_emb" only when named


def test_default_targets_are_every_linear_layer_and_never_the_token_table():
    """LoRAConfig(targets=None): fc1..fcK, the block's six projections in every block, no tok_emb;
    targets=() gives a model with nothing to train."""
    assert LoRAMLP(MLPConfig(6, [8, 8], 3), LoRAConfig(r=2)).targets == ("fc1", "fc2", "fc3")
    blk = TransformerBlock(BlockConfig(8, 2), LoRAConfig(r=2))
    assert blk.targets == tuple(block.TARGET_PATHS[t] for t in BLOCK_TARGETS)
    lm = TinyLM(LMConfig(11, d_model=8, n_head=2, n_layer=2, context=4), LoRAConfig(r=2))
    assert len(lm.targets) == 12 and "tok_emb" not in lm.targets
    for model in (LoRAMLP(MLPConfig(6, 8, 3), LoRAConfig(targets=())),
                  TransformerBlock(BlockConfig(8, 2), LoRAConfig(targets=()))):
        assert model.targets == () and model.trainable == ()


# --------------------------------------------------------------------------------------------
# The old style, sizes and LoRA settings in one keyword list, is a clear error


@pytest.mark.parametrize("call, message", [
    (lambda: LoRAMLP(16, [64, 64]),
     "config: expected an MLPConfig (LoRAMLP(MLPConfig(d_in, d_hidden, d_out), "
     "LoRAConfig(r=...))), got 16 (int)"),
    (lambda: TransformerBlock(8),
     "config: expected a BlockConfig (TransformerBlock(BlockConfig(d_model, n_head), "
     "LoRAConfig(r=...))), got 8 (int)"),
    (lambda: TinyLM(65),
     "config: expected an LMConfig (TinyLM(LMConfig(vocab_size, d_model=...), "
     "LoRAConfig(r=...))), got 65 (int)"),
    (lambda: LoRAMLP(MLPConfig(16, 64, 1), {"r": 4}),
     "lora: expected a LoRAConfig or None (LoRAMLP(MLPConfig(d_in, d_hidden, d_out), "
     "LoRAConfig(r=...))), got {'r': 4} (dict)"),
])
def test_a_model_refuses_what_is_not_its_config(call, message):
    """A model's first argument must be its config class and its second a LoRAConfig (or None):
    anything else is refused naming the argument, the way a call reads, and what came."""
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


@pytest.mark.parametrize("call, word", [
    (lambda: LoRAMLP(16, [64, 64], 1), "positional"),
    (lambda: LoRAMLP(MLPConfig(16, 64, 1), r=4), "'r'"),
    (lambda: TinyLM(LMConfig(11), d_model=8), "'d_model'"),
    (lambda: TransformerBlock(BlockConfig(8, 2), None, "all"), "positional"),
])
def test_the_old_keyword_list_is_no_silent_alias(call, word):
    """The old style (sizes and LoRA settings as keywords of the model) is refused by Python
    itself, naming the keyword or the extra positional argument: no keyword is an alias."""
    with pytest.raises(TypeError, match=word):
        call()


def test_the_old_adapter_aliases_are_gone_and_models_still_copy():
    """save/load are the only names (no save_adapters/load_adapters); a copy of a model (which
    builds it without arguments) is not mistaken for an old-style call."""
    assert not hasattr(LoRAModel, "save_adapters") and not hasattr(LoRAModel, "load_adapters")
    model = TinyLM(LMConfig(5, d_model=4, n_head=2, n_layer=1, context=3), LoRAConfig(r=2))
    twin = copy.deepcopy(model)
    assert twin.config == model.config and twin.params.keys() == model.params.keys()


# --------------------------------------------------------------------------------------------
# One layer: d_hidden = []


def test_a_one_layer_mlp_trains_and_passes_its_gradient_check():
    """MLPConfig(d_in, [], d_out) is one LoRA layer fc1: x W + scale (x A) B, no activation;
    it learns (the loss falls) and its gradients match finite differences."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 6)), rng.standard_normal((32, 3))
    model = LoRAMLP(MLPConfig(6, [], 3), LoRAConfig(r=2, alpha=3.0), seed=1)
    assert model.layer_names == model.targets == ("fc1",)
    A, B = (rng.standard_normal(model.params[k].shape) for k in ("fc1.A", "fc1.B"))
    model.params["fc1.A"][...], model.params["fc1.B"][...] = A, B
    out, _ = model.forward(x)
    np.testing.assert_allclose(out, x @ model.params["fc1.W"] + 1.5 * (x @ A) @ B, rtol=1e-12)
    first, _ = loss_and_grads(model, x, y)
    losses = train(model, Adam(model.trainable_params(), lr=1e-2), x, y, steps=30)
    assert losses[-1] < 0.9 * float(first)
    rows = [r for r in catalogue.case_mlp(np) if r.name.startswith("mlp[one_layer]")]
    assert {r.name.split("/")[1] for r in rows} == {"fc1.W", "fc1.b", "fc1.A", "fc1.B"}
    assert all(r.ok for r in rows), [r.line() for r in rows]


# --------------------------------------------------------------------------------------------
# The same seed gives the same arrays as the keyword-list constructors gave


def _digest(model) -> str:
    """sha256 of every array's bytes in key order (the first 16 hex digits)."""
    h = hashlib.sha256()
    for k in sorted(model.params):
        h.update(k.encode())
        h.update(np.ascontiguousarray(model.params[k]).tobytes())
    return h.hexdigest()[:16]


PINNED = [  # (model, digest and a few values computed with the old constructors, commit 43c59b1)
    (lambda: LoRAMLP(MLPConfig(6, [8, 8], 3), LoRAConfig(r=2), seed=3),  # (6, [8, 8], 3, r=2)
     "69a8bc5fd7ad0544", {"fc1.W": (0, 0, 0.8332017422805102),
                          "fc3.A": (1, 1, 0.30294538509631797)}),
    (lambda: LoRAMLP(MLPConfig(6, 8, 3, activation="gelu", bias=True),
                     LoRAConfig(r=2, init="zero_A", targets=["fc2"]), stack=(2,), seed=4),
     "e7aefaffadf4f871", {}),
    (lambda: LoRAMLP(MLPConfig(6, 8, 3), LoRAConfig(r=2), seed=5, dtype="float32"),
     "98392fe849c80b77", {}),
    (lambda: TransformerBlock(BlockConfig(8, 2), LoRAConfig(r=2), seed=5),  # targets: all six
     "fcd99322e4928aba", {"attn.q.W": (0, 0, -0.28352557442165277),
                          "mlp.fc2.A": (3, 1, 0.02648647150431912)}),
    (lambda: TransformerBlock(BlockConfig(8, 2, d_ff=12),
                              LoRAConfig(r=2, init="zero_A", targets=("q", "fc2")), seed=6),
     "994355e742f8c9f3", {}),
    (lambda: TinyLM(LMConfig(11, d_model=8, n_head=2, n_layer=2, context=6),
                    LoRAConfig(r=2, init="zero_A", targets=("tok_emb", "q", "fc2")), seed=7),
     "8bb57c60724c4b35", {"tok_emb": (2, 3, -1.289537739784976),
                          "tok_emb.B": (1, 5, -0.9428705739387003),
                          "blocks.1.mlp.fc2.B": (0, 2, -0.6906598582610433),
                          "head.W": (7, 10, 0.026226629398920263)}),
    (lambda: TinyLM(LMConfig(11, d_model=8, n_head=2, n_layer=1, context=4), seed=8),
     "ff153d8d5949b647", {}),  # every default: r = 8, the six block targets
]


@pytest.mark.parametrize("make, digest, values", PINNED)
def test_the_same_seed_gives_the_same_arrays_as_before(make, digest, values):
    """Frozen arrays from host_rng(seed) in the old order, LoRA factors from their old stream:
    every array bit-identical to what the keyword-list constructors built."""
    model = make()
    for key, (i, j, value) in values.items():
        assert float(model.params[key][i, j]) == value, key
    assert _digest(model) == digest


def test_configs_survive_json_and_rebuild_the_same_model():
    """asdict(lm.config) and asdict(lm.lora) go through JSON (targets as a list) and rebuild a
    model with bit-identical arrays."""
    lm = TinyLM(LMConfig(11, d_model=8, n_head=2, n_layer=2, context=8, d_ff=16),
                LoRAConfig(r=2, alpha=3.0, targets=("tok_emb", "v")), trainable="all", seed=21)
    saved = json.loads(json.dumps({"model": asdict(lm.config), "lora": asdict(lm.lora)}))
    again = TinyLM(LMConfig(**saved["model"]), LoRAConfig(**saved["lora"]), trainable="all",
                   seed=21)
    assert again.config == lm.config and again.lora == lm.lora and again.trainable == lm.trainable
    for k, v in lm.params.items():
        np.testing.assert_array_equal(again.params[k], v)
