"""PEFT adapters out and back in (`tinylora.port.peft`), without PyTorch: PEFT's key names and
layouts, q, k, v fused into c_attn exactly, the round trip bit for bit, the file formats, and
the adapters it refuses. (`tests/test_port_transformers.py` checks the same files against PEFT.)"""

import json
import math

import numpy as np
import pytest

from tinylora import LMConfig, LoRAConfig, LoRAMLP, MLPConfig, TinyLM, TransformerBlock
from tinylora.block import BlockConfig
from tinylora.gradcheck import randomize_lora
from tinylora.port import export_peft, import_peft, load_peft
from tinylora.port import peft as port
from tinylora.port.peft_layout import fuse, split

CONFIG = LMConfig(vocab_size=17, d_model=8, n_head=2, n_layer=2, context=6)
FORMATS = ["npz", pytest.param("safetensors", marks=pytest.mark.skipif(
    not port.has_safetensors(), reason="safetensors is optional (pip install 'tinylora[port]')"))]


def trained(lora, config=CONFIG, seed=0):
    lm = TinyLM(config, lora, seed=seed)
    randomize_lora(lm, seed=3)
    return lm


def adapter_arrays(folder):
    """The weights file of an export, whichever format, as {key: array}."""
    if (folder / "adapter_model.npz").exists():
        with np.load(folder / "adapter_model.npz") as f:
            return {k: f[k] for k in f.files if k != "__meta__"}
    from safetensors.numpy import load_file
    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lora", [
    LoRAConfig(r=2),
    LoRAConfig(r=2, alpha=3.0, rslora=True, targets=("tok_emb", "q", "v", "fc2")),
    LoRAConfig(r=1, alpha=0.1, init="zero_A", dropout=0.2, targets=("k",)),
    LoRAConfig(r=3, targets=("v", "o", "fc1")),
], ids=["all", "qv-emb-fc2-rslora", "k-only", "v-o-fc1"])
def test_export_then_import_gives_every_factor_and_the_config_back_bit_for_bit(tmp_path, fmt,
                                                                               lora):
    """import_peft(export_peft(lm)) returns lm's LoRAConfig (init, dropout, targets as given)
    and every factor bit for bit, for any subset of q, k, v, with and without rsLoRA and the
    token table, in both file formats; load_peft puts them into a fresh model."""
    lm = trained(lora)
    folder = export_peft(lm, tmp_path / "adapter", format=fmt)
    got_lora, arrays = import_peft(folder)
    assert got_lora == lora
    assert sorted(arrays) == sorted(lm.adapter_keys())
    assert all(np.array_equal(arrays[k], lm.params[k]) for k in arrays)
    fresh = TinyLM(CONFIG, lora, seed=9)
    load_peft(fresh, folder)
    assert all(np.array_equal(fresh.params[k], lm.params[k]) for k in lm.adapter_keys())


def test_an_mlp_adapter_round_trips_under_its_own_layer_names(tmp_path):
    """A LoRAMLP exports fc1 .. fcK as they are (nn.Linear: fan_in_fan_out false) and comes back
    bit for bit."""
    mlp = LoRAMLP(MLPConfig(6, [8, 8], 3), LoRAConfig(r=2, targets=["fc1", "fc3"]))
    randomize_lora(mlp, seed=1)
    folder = export_peft(mlp, tmp_path / "adapter", format="npz")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["target_modules"] == ["fc1", "fc3"] and config["fan_in_fan_out"] is False
    assert sorted(adapter_arrays(folder)) == [f"base_model.model.fc{i}.lora_{f}.weight"
                                              for i in (1, 3) for f in "AB"]
    lora, arrays = import_peft(folder)
    assert lora == mlp.lora and all(np.array_equal(arrays[k], mlp.params[k]) for k in arrays)


def test_the_files_use_peft_s_keys_and_transposed_layouts(tmp_path):
    """Keys base_model.model.<GPT-2 module>.lora_A.weight (r, d_in) = A^T and lora_B.weight
    (d_out, r) = B^T; the token table's lora_embedding_A (r, V) = A^T, lora_embedding_B
    (d, r) = B^T; c_attn holds q, k, v at rank 3r."""
    lm = trained(LoRAConfig(r=2, targets=("tok_emb", "q", "k", "v", "o", "fc1", "fc2")))
    got = adapter_arrays(export_peft(lm, tmp_path / "adapter", format="npz"))
    root, d, f, r = "base_model.model.transformer.", 8, 32, 2
    expected = {f"{root}wte.lora_embedding_A": (r, 17), f"{root}wte.lora_embedding_B": (d, r)}
    for i in range(2):
        for module, (d_in, d_out, rank) in {"attn.c_attn": (d, 3 * d, 3 * r),
                                            "attn.c_proj": (d, d, r), "mlp.c_fc": (d, f, r),
                                            "mlp.c_proj": (f, d, r)}.items():
            expected[f"{root}h.{i}.{module}.lora_A.weight"] = (rank, d_in)
            expected[f"{root}h.{i}.{module}.lora_B.weight"] = (d_out, rank)
    assert {k: a.shape for k, a in got.items()} == expected
    p, h = lm.params, f"{root}h.1.mlp.c_fc"
    assert np.array_equal(got[f"{h}.lora_A.weight"], p["blocks.1.mlp.fc1.A"].T)
    assert np.array_equal(got[f"{h}.lora_B.weight"], p["blocks.1.mlp.fc1.B"].T)
    assert np.array_equal(got[f"{root}wte.lora_embedding_A"], p["tok_emb.A"].T)


@pytest.mark.parametrize("names", [("q", "k", "v"), ("q", "v"), ("k",)])
def test_separate_q_k_v_loras_are_one_lora_on_c_attn_computing_the_same(names):
    """fuse: A's side by side (d, m r), B's block diagonal (m r, 3d), and x A_c B_c equals
    [x A_q B_q | x A_k B_k | x A_v B_v], with zero columns for a layer that is not a target;
    split gives the factors back exactly."""
    rng = np.random.default_rng(0)
    d, r = 6, 2
    As = {n: rng.standard_normal((d, r)) for n in names}
    Bs = {n: rng.standard_normal((r, d)) for n in names}
    slots = ["qkv".index(n) for n in names]
    A_c, B_c = fuse([As[n] for n in names], [Bs[n] for n in names], slots)
    assert A_c.shape == (d, len(names) * r) and B_c.shape == (len(names) * r, 3 * d)
    x = rng.standard_normal((5, d))
    separate = np.concatenate([x @ As[n] @ Bs[n] if n in names else np.zeros((5, d))
                               for n in "qkv"], axis=1)  # [5, 3d]
    assert np.allclose(x @ A_c @ B_c, separate, rtol=0, atol=1e-12)
    back = split(A_c, B_c, slots, r, "here")
    assert all(np.array_equal(A, As[n]) and np.array_equal(B, Bs[n])
               for n, (A, B) in zip(names, back))


@pytest.mark.parametrize("lora, rank, alpha", [
    (LoRAConfig(r=2, alpha=3.0), 6, 9.0),
    (LoRAConfig(r=2, alpha=3.0, rslora=True), 6, 3.0 * math.sqrt(3)),
    (LoRAConfig(r=4, targets=("q", "v")), 8, 8.0),
    (LoRAConfig(r=4, targets=("v", "fc1")), None, None),
])
def test_c_attn_keeps_the_scale_through_rank_and_alpha_patterns(tmp_path, lora, rank, alpha):
    """With m of q, k, v, c_attn has rank m r and alpha m alpha (sqrt(m) alpha under rsLoRA) in
    rank_pattern / alpha_pattern, so PEFT's scale on it is tinylora's; with one, no pattern."""
    lm = trained(lora)
    config = json.loads((export_peft(lm, tmp_path / "a", format="npz")
                         / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["use_rslora"]) == (lora.r, lora.alpha,
                                                                         lora.rslora)
    if rank is None:
        assert config["rank_pattern"] == config["alpha_pattern"] == {}
        return
    assert config["rank_pattern"] == {"c_attn": rank}
    assert config["alpha_pattern"]["c_attn"] == pytest.approx(alpha, rel=1e-15)
    scale = alpha / (math.sqrt(rank) if lora.rslora else rank)
    assert scale == pytest.approx(lm.scale, rel=1e-15)


def test_the_config_is_peft_s_lora_config(tmp_path):
    """adapter_config.json names a LoRA of GPT-2's modules (Conv1D: fan_in_fan_out true), the
    two c_proj apart, for a causal LM, with the base model's name when given."""
    lm = trained(LoRAConfig(r=2, alpha=4.0, dropout=0.1, targets=("tok_emb", "q", "o", "fc2")))
    folder = export_peft(lm, tmp_path / "a", base_model_name_or_path="gpt2", format="npz")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert {k: config[k] for k in ("peft_type", "task_type", "base_model_name_or_path", "r",
                                   "lora_alpha", "lora_dropout", "target_modules",
                                   "fan_in_fan_out", "init_lora_weights", "bias")} == {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "gpt2",
        "r": 2, "lora_alpha": 4.0, "lora_dropout": 0.1,
        "target_modules": ["attn.c_proj", "c_attn", "mlp.c_proj", "wte"],
        "fan_in_fan_out": True, "init_lora_weights": True, "bias": "none"}


def test_without_safetensors_the_export_falls_back_to_npz(tmp_path, monkeypatch):
    """Where safetensors is missing the default format is adapter_model.npz (NumPy only) and it
    imports back; asking for safetensors there says what to install."""
    monkeypatch.setattr(port, "has_safetensors", lambda: False)
    lm = trained(LoRAConfig(r=2, targets=("q", "v")))
    folder = export_peft(lm, tmp_path / "adapter")
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json",
                                                        "adapter_model.npz"]
    assert all(np.array_equal(import_peft(folder)[1][k], lm.params[k]) for k in lm.adapter_keys())
    with pytest.raises(ImportError, match=r"format: 'safetensors' needs the safetensors package"):
        export_peft(lm, tmp_path / "other", format="safetensors")


def test_an_export_in_the_other_format_replaces_the_stale_weights(tmp_path):
    """Exporting into a folder that holds the other format's weights removes them, so the
    folder never holds two adapters."""
    pytest.importorskip("safetensors", reason="safetensors is optional")
    lm = trained(LoRAConfig(r=2))
    export_peft(lm, tmp_path / "a", format="safetensors")
    export_peft(lm, tmp_path / "a", format="npz")
    assert not (tmp_path / "a" / "adapter_model.safetensors").exists()
    export_peft(lm, tmp_path / "a", format="safetensors")
    assert not (tmp_path / "a" / "adapter_model.npz").exists()


def peft_folder(path, config: dict, arrays: dict):
    """An adapter folder as PEFT writes one (no tinylora record), weights as .npz."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["c_attn"],
         "fan_in_fan_out": True, **config}))
    np.savez(path / "adapter_model.npz", **arrays)
    return path


def test_peft_s_own_c_attn_of_rank_r_is_q_k_v_sharing_one_a(tmp_path):
    """An adapter trained in PEFT with one rank-r LoRA on c_attn is exactly q, k and v at rank r
    with the same A: imported so, it computes PEFT's c_attn update."""
    rng = np.random.default_rng(1)
    d, r = 8, 2
    arrays = {f"base_model.model.transformer.h.{i}.attn.c_attn.lora_{f}.weight":
              rng.standard_normal(shape) for i in range(2)
              for f, shape in (("A", (r, d)), ("B", (3 * d, r)))}
    lora, got = import_peft(peft_folder(tmp_path / "peft", {}, arrays))
    assert (lora.r, lora.alpha, lora.targets) == (2, 4.0, ("q", "k", "v"))
    A_c = arrays["base_model.model.transformer.h.1.attn.c_attn.lora_A.weight"].T
    B_c = arrays["base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"].T
    x = rng.standard_normal((3, d))
    ours = np.concatenate([x @ got[f"blocks.1.attn.{n}.A"] @ got[f"blocks.1.attn.{n}.B"]
                           for n in "qkv"], axis=1)
    assert np.allclose(ours, x @ A_c @ B_c, rtol=0, atol=1e-12)
    lm = TinyLM(CONFIG, lora)
    load_peft(lm, tmp_path / "peft")
    assert np.array_equal(lm.params["blocks.0.attn.k.A"], lm.params["blocks.0.attn.q.A"])


def _c_attn(rng, rank, d=8):
    return {f"base_model.model.transformer.h.{i}.attn.c_attn.lora_{f}.weight":
            rng.standard_normal(shape) for i in range(2)
            for f, shape in (("A", (rank, d)), ("B", (3 * d, rank)))}


@pytest.mark.parametrize("config, arrays, message", [
    ({"use_dora": True}, None, r"use_dora: expected False, got True"),
    ({"bias": "all"}, None, r"bias: expected 'none', got 'all'"),
    ({"modules_to_save": ["lm_head"]}, None, r"modules_to_save: expected None"),
    ({"peft_type": "IA3"}, None, r"peft_type: expected 'LORA', got 'IA3'"),
    ({"rank_pattern": {"c_attn": 6}, "alpha_pattern": {"c_attn": 12}}, "rank 6",
     r"c_attn's lora_B is not block diagonal"),
    ({"rank_pattern": {"h.1.attn.c_attn": 4}}, "layer 1 at rank 4",
     r"module 'transformer.h.1.attn.c_attn' has rank 4 and scale 1; tinylora's LoRA has one: "
     r"r=2, scale 2"),
    ({}, "a stray key", r"unexpected key 'base_model.model.transformer.h.0.attn.c_attn.scale' of "
                        r"shape \(2, 2\): not a LoRA factor"),
    ({}, "lora_A alone", r"module 'transformer.h.0.mlp.c_fc' has lora_A without its pair"),
    ({}, "a layer TinyLM lacks", r"module 'transformer.h.0.attn.q_proj' is neither"),
    ({}, "block 1 without", r"the LoRA layers differ from block to block"),
])
def test_an_adapter_tinylora_cannot_represent_is_refused_by_name(tmp_path, config, arrays,
                                                                 message):
    """DoRA, trained biases, saved modules, another PEFT method, a fused c_attn that is not
    block diagonal, another rank in one layer, a stray key, half a pair, a module TinyLM has not,
    LoRA in some blocks only: each refused, naming the setting, key or module."""
    rng = np.random.default_rng(0)
    given = {None: _c_attn(rng, 2), "rank 6": _c_attn(rng, 6),
             "layer 1 at rank 4": {**_c_attn(rng, 2), **{
                 k: a for k, a in _c_attn(rng, 4).items() if ".h.1." in k}},
             "a stray key": {**_c_attn(rng, 2), "base_model.model.transformer.h.0.attn.c_attn"
                             ".scale": np.ones((2, 2))},
             "lora_A alone": {**_c_attn(rng, 2), "base_model.model.transformer.h.0.mlp.c_fc."
                              "lora_A.weight": np.ones((2, 8))},
             "a layer TinyLM lacks": {"base_model.model.transformer.h.0.attn.q_proj.lora_A"
                                      ".weight": np.ones((2, 8)),
                                      "base_model.model.transformer.h.0.attn.q_proj.lora_B"
                                      ".weight": np.ones((8, 2))},
             "block 1 without": {k: a for k, a in _c_attn(rng, 2).items() if ".h.0." in k} | {
                 f"base_model.model.transformer.h.1.mlp.c_fc.lora_{f}.weight": np.ones(s)
                 for f, s in (("A", (2, 8)), ("B", (32, 2)))}}[arrays]
    with pytest.raises(ValueError, match=message):
        import_peft(peft_folder(tmp_path / "peft", config, given))


def test_load_peft_refuses_an_adapter_that_does_not_fit_and_changes_nothing(tmp_path):
    """Another r, or (for an adapter tinylora wrote) another model configuration: refused,
    naming every difference, the model left as it was."""
    folder = export_peft(trained(LoRAConfig(r=2)), tmp_path / "a", format="npz")
    for model, message in [
        (trained(LoRAConfig(r=3), seed=1), r"lora.r is 2 in the file, 3 in the model"),
        (trained(LoRAConfig(r=2), LMConfig(17, 8, 4, 2, 6), seed=1),
         r"config.n_head is 2 in the file, 4 in the model"),
    ]:
        before = {k: v.copy() for k, v in model.params.items()}
        with pytest.raises(ValueError, match=r"does not fit the model: .*" + message):
            load_peft(model, folder)
        assert all(np.array_equal(model.params[k], v) for k, v in before.items())


def test_models_without_a_peft_layout_are_refused(tmp_path):
    """A lone TransformerBlock (no PEFT module names) or a stack of LoRAMLPs (S adapters at
    once) cannot be exported: refused by name, nothing written."""
    block = TransformerBlock(BlockConfig(8, 2), LoRAConfig(r=2))
    stack = LoRAMLP(MLPConfig(6, 8, 3), LoRAConfig(r=2), stack=(3,))
    for model in (block, stack):
        with pytest.raises(ValueError, match=r"model: expected a TinyLM \(exported in GPT-2's "
                                             r"names\) or an unstacked LoRAMLP"):
            export_peft(model, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_a_folder_that_is_not_an_adapter_is_refused_by_name(tmp_path):
    """No adapter_config.json, or no weights beside it: the error says what the folder lacks."""
    with pytest.raises(ValueError, match=r"path: expected a PEFT adapter folder holding "
                                         r"adapter_config.json"):
        import_peft(tmp_path)
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"holding adapter_model.safetensors or "
                                         r"adapter_model.npz"):
        import_peft(tmp_path)
