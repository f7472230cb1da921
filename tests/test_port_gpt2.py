"""GPT-2-format weights into TinyLM (`tinylora.port.gpt2`), on small GPT-2 files this test writes
itself (no download). The reference for what GPT-2 computes is a forward pass written here from
GPT-2's own keys, picoGPT-style, sharing no code with the loader."""

import json

import numpy as np
import pytest

from tinylora import LoRAConfig, TinyLM
from tinylora.port import gpt2
from tinylora.port.gpt2 import load_gpt2, read_gpt2

V, N_CTX, D, L, D_FF, H = 23, 8, 12, 2, 20, 3
TOKENS = np.random.default_rng(7).integers(0, V, size=(2, N_CTX))


def gpt2_arrays(prefix="transformer.", seed=0) -> dict:
    """The weights of a small random GPT-2, in Hugging Face's keys (Conv1D weights (in, out))."""
    rng = np.random.default_rng(seed)
    shapes = {"wte.weight": (V, D), "wpe.weight": (N_CTX, D), "ln_f.weight": (D,),
              "ln_f.bias": (D,)}
    for i in range(L):
        shapes.update({f"h.{i}.ln_1.weight": (D,), f"h.{i}.ln_1.bias": (D,),
                       f"h.{i}.attn.c_attn.weight": (D, 3 * D), f"h.{i}.attn.c_attn.bias": (3 * D,),
                       f"h.{i}.attn.c_proj.weight": (D, D), f"h.{i}.attn.c_proj.bias": (D,),
                       f"h.{i}.ln_2.weight": (D,), f"h.{i}.ln_2.bias": (D,),
                       f"h.{i}.mlp.c_fc.weight": (D, D_FF), f"h.{i}.mlp.c_fc.bias": (D_FF,),
                       f"h.{i}.mlp.c_proj.weight": (D_FF, D), f"h.{i}.mlp.c_proj.bias": (D,)})
    arrays = {k: (0.3 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
    for k in arrays:
        if k.endswith("ln_1.weight") or k.endswith("ln_2.weight") or k == "ln_f.weight":
            arrays[k] += 1.0  # layer-norm gains around 1
    return {prefix + k: a for k, a in arrays.items()}


def gpt2_config(**changes) -> dict:
    """config.json as `GPT2Config.save_pretrained` writes it (the fields the loader reads)."""
    return {"model_type": "gpt2", "vocab_size": V, "n_positions": N_CTX, "n_embd": D,
            "n_layer": L, "n_head": H, "n_inner": D_FF, "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False, "add_cross_attention": False, **changes}


def write_folder(path, arrays=None, config=None):
    """A save_pretrained-like folder: model.npz (the .npz form of model.safetensors) and
    config.json."""
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "model.npz", **(gpt2_arrays() if arrays is None else arrays))
    (path / "config.json").write_text(json.dumps(gpt2_config() if config is None else config))
    return path


def gpt2_logits(w: dict, tokens, n_head=H):
    """GPT-2's forward from its own keys (no prefix), in float64: picoGPT's equations."""
    w = {k.removeprefix("transformer."): a.astype(np.float64) for k, a in w.items()}

    def ln(x, g, b):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-5) * g + b

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

    T = tokens.shape[1]
    x = w["wte.weight"][tokens] + w["wpe.weight"][:T]  # [N, T, d]
    mask = np.triu(np.full((T, T), -1e10), k=1)
    for i in range(L):
        h = ln(x, w[f"h.{i}.ln_1.weight"], w[f"h.{i}.ln_1.bias"])
        qkv = h @ w[f"h.{i}.attn.c_attn.weight"] + w[f"h.{i}.attn.c_attn.bias"]  # [N, T, 3d]
        q, k, v = (a.reshape(*a.shape[:2], n_head, -1).transpose(0, 2, 1, 3)
                   for a in np.split(qkv, 3, axis=-1))  # [N, H, T, dh] each
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + mask
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        a = (p @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = x + a @ w[f"h.{i}.attn.c_proj.weight"] + w[f"h.{i}.attn.c_proj.bias"]
        h = ln(x, w[f"h.{i}.ln_2.weight"], w[f"h.{i}.ln_2.bias"])
        m = gelu(h @ w[f"h.{i}.mlp.c_fc.weight"] + w[f"h.{i}.mlp.c_fc.bias"])
        x = x + m @ w[f"h.{i}.mlp.c_proj.weight"] + w[f"h.{i}.mlp.c_proj.bias"]
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["wte.weight"]  # tied
    return ln(x, w["ln_f.weight"], w["ln_f.bias"]) @ head.T


def test_a_gpt2_folder_loads_into_a_tinylm_that_computes_gpt2(tmp_path):
    """A save_pretrained-style folder (config.json + the weights) gives a TinyLM of GPT-2's sizes
    whose logits are GPT-2's (float64, to 1e-12), LoRA included: at Init[1] B = 0."""
    w = gpt2_arrays()
    lm = load_gpt2(write_folder(tmp_path / "gpt2", w), LoRAConfig(r=2))
    assert isinstance(lm, TinyLM)
    assert (lm.vocab_size, lm.context, lm.d_model, lm.n_layer, lm.d_ff, lm.n_head) == (
        V, N_CTX, D, L, D_FF, H)
    logits, _ = lm.forward(TOKENS)
    assert np.abs(logits - gpt2_logits(w, TOKENS)).max() < 1e-12


def test_the_keys_are_renamed_and_c_attn_is_cut_into_q_k_v(tmp_path):
    """c_attn's columns [q | k | v] become attn.q/k/v (weights and biases), Conv1D's (in, out)
    layout is kept (no transpose), and the head is the token table transposed (tied)."""
    w = gpt2_arrays(prefix="")
    config, p = read_gpt2(write_folder(tmp_path / "gpt2", w))
    W, b = w["h.1.attn.c_attn.weight"], w["h.1.attn.c_attn.bias"]
    for j, name in enumerate("qkv"):
        assert np.array_equal(p[f"blocks.1.attn.{name}.W"], W[:, j * D:(j + 1) * D])
        assert np.array_equal(p[f"blocks.1.attn.{name}.b"], b[j * D:(j + 1) * D])
    assert np.array_equal(p["blocks.0.mlp.fc2.W"], w["h.0.mlp.c_proj.weight"])  # (d_ff, d)
    assert np.array_equal(p["blocks.0.attn.o.W"], w["h.0.attn.c_proj.weight"])
    assert np.array_equal(p["head.W"], w["wte.weight"].T)
    assert np.array_equal(p["ln_f.g"], w["ln_f.weight"])
    assert sorted(p) == sorted(TinyLM(config, LoRAConfig(targets=())).base_keys())


def test_the_original_layout_without_prefix_and_with_mask_buffers_loads(tmp_path):
    """The OpenAI files on the Hub: keys without 'transformer.', and each block's causal-mask
    buffers attn.bias and attn.masked_bias, which are skipped."""
    w = gpt2_arrays(prefix="")
    buffers = {f"h.{i}.attn.{b}": np.ones((1, 1, N_CTX, N_CTX), np.float32)
               for i in range(L) for b in ("bias", "masked_bias")}
    lm = load_gpt2(write_folder(tmp_path / "gpt2", {**w, **buffers}))
    assert np.abs(lm.forward(TOKENS)[0] - gpt2_logits(w, TOKENS)).max() < 1e-12


def test_a_saved_head_of_its_own_is_used(tmp_path):
    """A checkpoint that saves lm_head.weight (untied) gets head.W = lm_head.weight^T."""
    w = {**gpt2_arrays(), "lm_head.weight": gpt2_arrays(seed=1)["transformer.wte.weight"]}
    lm = load_gpt2(write_folder(tmp_path / "gpt2", w))
    assert np.array_equal(lm.params["head.W"], w["lm_head.weight"].T)
    assert np.abs(lm.forward(TOKENS)[0] - gpt2_logits(w, TOKENS)).max() < 1e-12


def test_a_bare_weights_file_needs_n_head(tmp_path):
    """The arrays do not say n_head: a lone .npz file without config.json asks for it by name,
    and loads with it."""
    np.savez(tmp_path / "gpt2.npz", **gpt2_arrays())
    with pytest.raises(ValueError, match=r"n_head: expected the number of attention heads"):
        read_gpt2(tmp_path / "gpt2.npz")
    lm = load_gpt2(tmp_path / "gpt2.npz", n_head=H, dtype="float32")
    assert lm.n_head == H and lm.params["tok_emb"].dtype == np.float32


def drop(key):
    return lambda w, c: ({k: a for k, a in w.items() if k != key}, c)


@pytest.mark.parametrize("change, message", [
    (drop("transformer.h.1.mlp.c_proj.bias"),
     r"missing key 'h.1.mlp.c_proj.bias' of shape \(12,\)"),
    (drop("transformer.wte.weight"), r"missing key 'wte.weight' of shape \(vocab_size, d_model\)"),
    (lambda w, c: ({**w, "transformer.h.0.attn.c_attn.lora": np.zeros((4, 36), np.float32)}, c),
     r"unexpected key 'h.0.attn.c_attn.lora' of shape \(4, 36\): not a GPT-2 weight"),
    (lambda w, c: ({**w, "transformer.h.1.attn.c_proj.weight": np.zeros((12, 13), np.float32)},
                   c), r"key 'h.1.attn.c_proj.weight' expected shape \(12, 12\), got \(12, 13\)"),
    (lambda w, c: ({**w, "transformer.ln_f.bias": np.full(12, np.nan, np.float32)}, c),
     r"key 'ln_f.bias': expected finite real numbers"),
    (lambda w, c: (w, {**c, "activation_function": "relu"}),
     r"activation_function: expected one of \['gelu_new', 'gelu_pytorch_tanh'\] \(what TinyLM "
     r"computes\), got 'relu'"),
    (lambda w, c: (w, {**c, "layer_norm_epsilon": 1e-6}), r"layer_norm_epsilon: expected one of"),
    (lambda w, c: (w, {**c, "scale_attn_by_inverse_layer_idx": True}),
     r"scale_attn_by_inverse_layer_idx: expected one of \[False\]"),
    (lambda w, c: (w, {**c, "model_type": "llama"}), r"model_type: expected 'gpt2', got 'llama'"),
    (lambda w, c: (w, {**c, "n_embd": 16}), r"n_embd is 16, the weights say 12"),
    (lambda w, c: (w, {**c, "n_head": 5}), r"n_head: expected a divisor of d_model=12, got 5"),
])
def test_a_checkpoint_the_loader_does_not_understand_is_refused_by_name(tmp_path, change,
                                                                        message):
    """A missing key, an extra key, a wrong shape, a NaN, or a config.json describing another
    computation (ReLU, another eps, per-layer attention scaling, another model, other sizes, a
    head count that does not divide d_model): each refused, naming the key, shape or setting."""
    w, c = change(gpt2_arrays(), gpt2_config())
    with pytest.raises(ValueError, match=message):
        load_gpt2(write_folder(tmp_path / "gpt2", w, c))


def test_n_head_given_against_config_json_is_refused(tmp_path):
    """An n_head argument that contradicts config.json names both."""
    with pytest.raises(ValueError, match=r"n_head: expected None or 3 \(config.json's\), got 4"):
        read_gpt2(write_folder(tmp_path / "gpt2"), n_head=4)


def test_files_it_cannot_read_are_refused_by_name(tmp_path):
    """A PyTorch .bin, or a folder without model.safetensors or model.npz: refused, saying what
    is read."""
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"path: expected a .safetensors or .npz file"):
        read_gpt2(tmp_path / "pytorch_model.bin", n_head=H)
    with pytest.raises(ValueError, match=r"path: expected a folder holding model.safetensors or "
                                         r"model.npz"):
        read_gpt2(tmp_path)


def test_a_safetensors_checkpoint_loads_as_its_npz_twin(tmp_path):
    """model.safetensors (read with the optional safetensors package) gives the same model as
    the same keys in model.npz."""
    numpy_io = pytest.importorskip("safetensors.numpy", reason="safetensors is optional "
                                   "(pip install 'tinylora[port]')")
    w = gpt2_arrays()
    folder = tmp_path / "st"
    folder.mkdir()
    numpy_io.save_file(w, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(gpt2_config()))
    ours = load_gpt2(folder)
    twin = load_gpt2(write_folder(tmp_path / "npz", w))
    assert all(np.array_equal(ours.params[k], twin.params[k]) for k in ours.params)


def test_without_safetensors_a_safetensors_file_says_what_to_install(tmp_path, monkeypatch):
    """Where the safetensors package is missing, a .safetensors file is refused with the extra
    to install (and the .npz alternative)."""
    import builtins

    real_import = builtins.__import__

    def no_safetensors(name, *args, **kwargs):
        if name.startswith("safetensors"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ImportError, match=r"needs the safetensors package \(pip install "
                                          r"'tinylora\[port\]'\); or convert it once to .npz"):
        read_gpt2(tmp_path / "model.safetensors", n_head=H)


def test_the_loader_says_which_tokenizer_the_ids_come_from():
    """TinyLM reads token ids; the module says they must be GPT-2's BPE ids and how to get them."""
    assert "GPT2TokenizerFast" in gpt2.__doc__ and "50257" in gpt2.__doc__
