"""GPT-2-format weights into `TinyLM`: a Hugging Face GPT-2 checkpoint, mapped key by key.

TinyLM's layout is GPT-2's (pre-LN blocks, tanh GELU, biases, learned positions, layer norm
eps 1e-5, a head tied to the token table), so reading GPT-2 is renaming plus one split:

    GPT-2 key (``GPT2LMHeadModel``)       shape         TinyLM key
    wte.weight                            (V, d)        tok_emb, and head.W = wte.T (tied)
    wpe.weight                            (n_ctx, d)    pos_emb
    h.{i}.ln_1.weight, .bias              (d,)          blocks.{i}.ln1.g, .b
    h.{i}.attn.c_attn.weight              (d, 3d)       attn.q.W | attn.k.W | attn.v.W
    h.{i}.attn.c_attn.bias                (3d,)         attn.q.b | attn.k.b | attn.v.b
    h.{i}.attn.c_proj.weight, .bias       (d, d)        attn.o.W, .b
    h.{i}.ln_2.weight, .bias              (d,)          blocks.{i}.ln2.g, .b
    h.{i}.mlp.c_fc.weight, .bias          (d, d_ff)     mlp.fc1.W, .b
    h.{i}.mlp.c_proj.weight, .bias        (d_ff, d)     mlp.fc2.W, .b
    ln_f.weight, .bias                    (d,)          ln_f.g, .b
    lm_head.weight (when saved)           (V, d)        head.W = lm_head.T

GPT-2's linear layers are ``Conv1D``: the weight is stored (in, out) and the layer computes
x W + b, TinyLM's own layout, so no weight is transposed; c_attn's 3d output columns are q, k and
v side by side and are cut in three. Keys may carry the ``transformer.`` prefix (what
``save_pretrained`` writes) or not (the original OpenAI files); the causal-mask buffers
``h.{i}.attn.bias`` and ``h.{i}.attn.masked_bias`` of older files are not weights and are
skipped. Any other key, a missing key or a wrong shape is refused, naming the key and shape.

The arrays give every size but n_head: it comes from ``config.json`` beside the weights (a
``save_pretrained`` folder, whose settings are checked: tanh GELU, eps 1e-5, scaled attention),
or from the argument ``n_head``.

Files: ``model.safetensors`` (needs the ``safetensors`` package: ``pip install 'tinylora[port]'``)
or a NumPy archive of the same keys, which needs nothing more (``.npz``; made once with
``np.savez("model.npz", **safetensors.numpy.load_file("model.safetensors"))``).

Tokens. TinyLM reads token ids; the vocabulary is the tokenizer's business. The ids must come
from GPT-2's byte-level BPE, the tokenizer the checkpoint was trained with, e.g.
``transformers.GPT2TokenizerFast.from_pretrained("gpt2")(text)["input_ids"]`` (or
``tiktoken.get_encoding("gpt2").encode(text)``): 50257 ids, ``<|endoftext|>`` = 50256. Ids of
another tokenizer run without complaint and mean nothing to the model.

    lm = load_gpt2("gpt2-folder", LoRAConfig(r=8, targets=("q", "v")))   # a TinyLM
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tinylora import backend, validate
from tinylora.lora import LoRAConfig
from tinylora.norms import EPS
from tinylora.transformer import LMConfig, TinyLM

FILES = ("model.safetensors", "model.npz")  # the weights a save_pretrained folder may hold
MASKS = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")  # causal-mask buffers, not weights
# GPT-2's block keys that only change their names (c_attn is split by `to_tinylm`)
RENAMED = {"ln_1.weight": "ln1.g", "ln_1.bias": "ln1.b", "attn.c_proj.weight": "attn.o.W",
           "attn.c_proj.bias": "attn.o.b", "ln_2.weight": "ln2.g", "ln_2.bias": "ln2.b",
           "mlp.c_fc.weight": "mlp.fc1.W", "mlp.c_fc.bias": "mlp.fc1.b",
           "mlp.c_proj.weight": "mlp.fc2.W", "mlp.c_proj.bias": "mlp.fc2.b"}
# what config.json must say for TinyLM to compute what GPT-2 computes (absent: GPT-2's default)
SUPPORTED = {"activation_function": ("gelu_new", "gelu_pytorch_tanh"),  # the tanh GELU
             "layer_norm_epsilon": (EPS,), "scale_attn_weights": (True,),
             "scale_attn_by_inverse_layer_idx": (False,), "add_cross_attention": (False,)}


def gpt2_shapes(config: LMConfig) -> dict:
    """{GPT-2 key: shape} of every weight of a GPT-2 with `config`'s sizes (no prefix)."""
    d, f = config.d_model, config.d_ff
    shapes = {"wte.weight": (config.vocab_size, d), "wpe.weight": (config.context, d),
              "ln_f.weight": (d,), "ln_f.bias": (d,)}
    for i in range(config.n_layer):
        shapes.update({f"h.{i}.{k}": s for k, s in {
            "ln_1.weight": (d,), "ln_1.bias": (d,), "attn.c_attn.weight": (d, 3 * d),
            "attn.c_attn.bias": (3 * d,), "attn.c_proj.weight": (d, d), "attn.c_proj.bias": (d,),
            "ln_2.weight": (d,), "ln_2.bias": (d,), "mlp.c_fc.weight": (d, f),
            "mlp.c_fc.bias": (f,), "mlp.c_proj.weight": (f, d), "mlp.c_proj.bias": (d,)}.items()})
    return shapes


def to_tinylm(arrays: dict, n_layer: int) -> dict:
    """GPT-2's arrays (checked, no prefix) -> TinyLM's base arrays, by the module's table."""
    wte = arrays["wte.weight"]
    p = {"tok_emb": wte, "pos_emb": arrays["wpe.weight"], "ln_f.g": arrays["ln_f.weight"],
         "ln_f.b": arrays["ln_f.bias"], "head.W": arrays.get("lm_head.weight", wte).T}  # tied
    for i in range(n_layer):
        h, b = f"h.{i}.", f"blocks.{i}."
        p.update({b + new: arrays[h + old] for old, new in RENAMED.items()})
        W, bias = arrays[h + "attn.c_attn.weight"], arrays[h + "attn.c_attn.bias"]
        d = W.shape[0]
        for j, name in enumerate("qkv"):  # c_attn's columns: [q | k | v], d each
            cols = slice(j * d, (j + 1) * d)
            p[f"{b}attn.{name}.W"], p[f"{b}attn.{name}.b"] = W[:, cols], bias[cols]
    return p


def read_arrays(path) -> dict:
    """The named arrays of a .safetensors or .npz file (host NumPy arrays)."""
    path = Path(path)
    if path.suffix == ".npz":
        return backend.load_npz(path)
    if path.suffix != ".safetensors":
        validate.fail("path", "a .safetensors or .npz file of GPT-2 weights, or a folder "
                      f"holding {' or '.join(FILES)}", str(path))
    if not path.is_file():
        raise FileNotFoundError(f"path: expected a .safetensors file, got {str(path)!r}: "
                                "no such file")
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ImportError(f"path: reading {path.name} needs the safetensors package (pip "
                          "install 'tinylora[port]'); or convert it once to .npz") from None
    return load_file(str(path))


def find_weights(path) -> tuple:
    """-> (the weights file, the settings of config.json beside it or None). A folder gives
    model.safetensors (when safetensors is installed) or model.npz, and its config.json."""
    path = Path(path)
    if not path.is_dir():
        return path, None
    found = [path / f for f in FILES if (path / f).is_file()]
    if len(found) == 2 and not has_safetensors():
        found = found[1:]  # the .npz, which needs no extra package
    if not found:
        validate.fail("path", f"a folder holding {' or '.join(FILES)}", str(path))
    config = path / "config.json"
    return found[0], json.loads(config.read_text()) if config.is_file() else None


def has_safetensors() -> bool:
    """Whether the optional ``safetensors`` package is installed (``tinylora[port]``)."""
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError:
        return False
    return True


def _sizes(arrays: dict, n_head: int, where: str) -> LMConfig:
    """TinyLM's sizes read off the arrays' shapes (n_head given)."""
    for key, what in (("wte.weight", "(vocab_size, d_model)"), ("wpe.weight", "(context, d_model)"),
                      ("h.0.mlp.c_fc.weight", "(d_model, d_ff)")):
        if key not in arrays or arrays[key].ndim != 2:
            shape = tuple(arrays[key].shape) if key in arrays else None
            raise ValueError(f"{where}: missing key {key!r} of shape {what}"
                             + ("" if shape is None else f" (it has shape {shape})"))
    (V, d), n_ctx = arrays["wte.weight"].shape, arrays["wpe.weight"].shape[0]
    n_layer = 1 + max(int(m.group(1)) for k in arrays if (m := re.match(r"h\.(\d+)\.", k)))
    return LMConfig(V, d, n_head, n_layer, n_ctx, arrays["h.0.mlp.c_fc.weight"].shape[1])


def check_arrays(arrays: dict, config: LMConfig, where: str) -> None:
    """Refuse a missing key, an extra key (other than the mask buffers and a saved head) or a
    wrong shape, naming the key and the shapes; and any array that is not finite real numbers."""
    shapes = gpt2_shapes(config)
    shapes["lm_head.weight"] = (config.vocab_size, config.d_model)
    missing = [k for k in shapes if k not in arrays and k != "lm_head.weight"]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r} of shape {shapes[missing[0]]}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = [k for k in arrays if k not in shapes and not MASKS.fullmatch(k)]
    if extra:
        raise ValueError(f"{where}: unexpected key {extra[0]!r} of shape "
                         f"{tuple(arrays[extra[0]].shape)}: not a GPT-2 weight TinyLM has")
    for k, a in arrays.items():
        if k in shapes and tuple(a.shape) != shapes[k]:
            raise ValueError(f"{where}: key {k!r} expected shape {shapes[k]}, got "
                             f"{tuple(a.shape)}")
        if k in shapes and (a.dtype.kind not in "fiu" or not backend.is_finite_number(a)):
            validate.fail(f"{where}: key {k!r}", "finite real numbers", a)


def check_config(settings: dict, config: LMConfig, where: str) -> None:
    """Refuse a config.json that describes another model, or one TinyLM does not compute."""
    if settings.get("model_type", "gpt2") != "gpt2":
        validate.fail(f"{where}: model_type", "'gpt2'", settings["model_type"])
    for key, ok in SUPPORTED.items():
        if key in settings and settings[key] not in ok:
            validate.fail(f"{where}: {key}", f"one of {list(ok)} (what TinyLM computes)",
                          settings[key])
    for key, have in (("vocab_size", config.vocab_size), ("n_embd", config.d_model),
                      ("n_layer", config.n_layer), ("n_positions", config.context),
                      ("n_inner", config.d_ff)):
        if settings.get(key) is not None and settings[key] != have:
            raise ValueError(f"{where}: {key} is {settings[key]!r}, the weights say {have}")


def read_gpt2(path, n_head: int | None = None) -> tuple:
    """Read a GPT-2 checkpoint: a ``save_pretrained`` folder, or a .safetensors or .npz file
    (then `n_head` is needed). -> (its `LMConfig`, its arrays in TinyLM's keys, NumPy)."""
    file, settings = find_weights(path)
    where = str(file)
    raw = read_arrays(file)
    arrays = {k.removeprefix("transformer."): a for k, a in raw.items()}
    if len(arrays) != len(raw):
        raise ValueError(f"{where}: keys with and without the 'transformer.' prefix collide")
    heads = (settings or {}).get("n_head")
    if n_head is None and heads is None:
        validate.fail("n_head", "the number of attention heads (the weights do not say it, "
                      "and there is no config.json beside them)", n_head)
    if n_head is not None and heads is not None and n_head != heads:
        validate.fail("n_head", f"None or {heads} (config.json's)", n_head)
    config = _sizes(arrays, heads if n_head is None else n_head, where)
    check_arrays(arrays, config, where)
    if settings is not None:
        check_config(settings, config, str(Path(path) / "config.json"))
    return config, to_tinylm(arrays, config.n_layer)


def load_gpt2(path, lora: LoRAConfig | None = None, *, n_head: int | None = None,
              trainable="lora", seed=0, backend=None, dtype=None) -> TinyLM:
    """A `TinyLM` with GPT-2's weights from `path` (`read_gpt2`) and LoRA per `lora` (its
    factors drawn from `seed` as usual: B = 0 under Init[1], so it computes GPT-2 exactly).
    The arrays are converted to `dtype` (float64 by default; GPT-2's float32 converts exactly)."""
    config, arrays = read_gpt2(path, n_head)
    lm = TinyLM(config, lora, trainable=trainable, seed=seed, backend=backend, dtype=dtype)
    for k, a in arrays.items():
        lm.params[k][...] = lm.xp.asarray(a, dtype=lm.params[k].dtype)
    return lm
