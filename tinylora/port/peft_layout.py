"""tinylora's LoRA factors in PEFT's names and layouts, and back: the arrays of a PEFT adapter.

PEFT keys every factor by its module's path, under ``base_model.model.``:

    base_model.model.<module>.lora_A.weight   (r, d_in)    = A^T
    base_model.model.<module>.lora_B.weight   (d_out, r)   = B^T

PyTorch stores a linear layer's weight (out, in); tinylora stores (in, out). So PEFT's
``lora_A.weight`` is A^T and ``lora_B.weight`` is B^T, for GPT-2's ``Conv1D`` layers
(``fan_in_fan_out=True``) as for ``nn.Linear``: fan_in_fan_out concerns the base weight only.

Module names. `TinyLM` exports in GPT-2's names (the model `tinylora.port.gpt2` loads), a
`LoRAMLP` as its layers are called (``nn.Linear`` layers fc1 .. fcK):

    TinyLM target            GPT-2 module                      target_modules
    blocks.{i}.attn.q, k, v  transformer.h.{i}.attn.c_attn     "c_attn" (fused: below)
    blocks.{i}.attn.o        transformer.h.{i}.attn.c_proj     "attn.c_proj"
    blocks.{i}.mlp.fc1       transformer.h.{i}.mlp.c_fc        "c_fc"
    blocks.{i}.mlp.fc2       transformer.h.{i}.mlp.c_proj      "mlp.c_proj"
    tok_emb                  transformer.wte                   "wte": lora_embedding_A (r, V)
                                                               = A^T, lora_embedding_B (d, r) = B^T
PEFT matches a target_modules entry against the end of a module's path, so "attn.c_proj" and
"mlp.c_proj" tell GPT-2's two c_proj layers apart.

q, k, v on the fused c_attn. GPT-2 computes q, k and v in one product, x [Wq | Wk | Wv] (d, 3d),
and PEFT puts one LoRA on it. Separate LoRAs of rank r on m of q, k, v are exactly one LoRA of
rank m r on c_attn: the A's side by side, the B's block diagonal. With all three:

    A_c = [A_q | A_k | A_v]                    (d, 3r)    PEFT's lora_A.weight = A_c^T (3r, d)
    B_c = [[B_q, 0, 0], [0, B_k, 0], [0, 0, B_v]]   (3r, 3d)    lora_B.weight = B_c^T (3d, 3r)
    x A_c B_c = [x A_q B_q | x A_k B_k | x A_v B_v]

A layer that is not a target has no block of A_c, and its d output columns of B_c are zero:
targets q and v give A_c = [A_q | A_v] (d, 2r), B_c = [[B_q, 0, 0], [0, 0, B_v]] (2r, 3d). The
scale must stay tinylora's: c_attn's rank is m r, so its alpha is m alpha (alpha / r =
m alpha / (m r)), or sqrt(m) alpha under rsLoRA (alpha / sqrt(r) = sqrt(m) alpha / sqrt(m r)).
`peft_config` writes these in PEFT's ``rank_pattern`` and ``alpha_pattern`` for "c_attn"; every
other module keeps r and ``lora_alpha``. Reading back cuts the blocks out again, bit for bit, and
refuses a c_attn whose off-diagonal blocks are not zero (one trained fused, in PEFT: it is not
separate LoRAs on q, k, v). An adapter made by PEFT itself (no tinylora record) with c_attn at
rank r is read as q, k and v sharing one A (copied three times): the same function.
"""

from __future__ import annotations

import math
import re

import numpy as np

from tinylora import backend, validate
from tinylora.block import BLOCK_TARGETS, TARGET_PATHS
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP
from tinylora.transformer import TinyLM

ROOT = "base_model.model."  # PEFT's prefix of every key
QKV = ("q", "k", "v")  # c_attn's three column blocks, in order
MODULES = {"attn.o": "attn.c_proj", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
NAMES = {"q": "c_attn", "k": "c_attn", "v": "c_attn", "o": "attn.c_proj", "fc1": "c_fc",
         "fc2": "mlp.c_proj", "tok_emb": "wte"}  # target_modules, by TinyLM's short names
EMBEDDING = "transformer.wte"
REFUSED = {"use_dora": False, "bias": "none", "modules_to_save": None,
           "layers_to_transform": None}  # PEFT options tinylora's LoRA does not have


# --------------------------------------------------------------------------------------------
# q, k, v <-> c_attn


def fuse(As: list, Bs: list, slots: list) -> tuple:
    """LoRAs (A_j (d, r), B_j (r, d)) on the column blocks `slots` (0 q, 1 k, 2 v) of c_attn
    -> one LoRA on c_attn: A_c (d, m r) side by side, B_c (m r, 3d) block diagonal."""
    r, d = Bs[0].shape
    A_c = np.concatenate(As, axis=1)  # [d, m r]
    B_c = np.zeros((len(Bs) * r, 3 * d), dtype=A_c.dtype)  # [m r, 3d]
    for j, (B, s) in enumerate(zip(Bs, slots)):
        B_c[j * r:(j + 1) * r, s * d:(s + 1) * d] = B  # A_c's block j writes column block s
    return A_c, B_c


def split(A_c, B_c, slots: list, r: int, where: str) -> list:
    """The inverse of `fuse` -> [(A_j, B_j)]; the rest of B_c must be zero. A c_attn of rank r
    with three slots is one A shared by q, k, v: [(A_c, B_c's column block s)]."""
    d = B_c.shape[1] // 3
    if A_c.shape[1] == r and len(slots) == 3:  # PEFT's own: one A, three column blocks of B
        return [(A_c, B_c[:, s * d:(s + 1) * d]) for s in slots]
    if A_c.shape[1] != len(slots) * r:
        raise ValueError(f"{where}: c_attn has rank {A_c.shape[1]}, expected {len(slots)} x "
                         f"r = {len(slots) * r} (r for each of {[QKV[s] for s in slots]})")
    out, rest = [], B_c.copy()
    for j, s in enumerate(slots):
        rows, cols = slice(j * r, (j + 1) * r), slice(s * d, (s + 1) * d)
        out.append((A_c[:, rows], B_c[rows, cols]))
        rest[rows, cols] = 0
    if rest.any():
        raise ValueError(f"{where}: c_attn's lora_B is not block diagonal: it is one LoRA on the "
                         "fused q, k, v (trained in PEFT?), not separate LoRAs on q, k and v")
    return out


# --------------------------------------------------------------------------------------------
# tinylora's arrays <-> PEFT's


def check_model(model) -> str:
    """-> "gpt2" for a TinyLM, "mlp" for an unstacked LoRAMLP: the models with a PEFT layout."""
    if isinstance(model, TinyLM):
        return "gpt2"
    if isinstance(model, LoRAMLP) and not model.stack:
        return "mlp"
    validate.fail("model", "a TinyLM (exported in GPT-2's names) or an unstacked LoRAMLP", model)


def to_peft(model) -> dict:
    """`model`'s LoRA factors in PEFT's keys and layouts (NumPy, contiguous)."""
    p = {k: backend.to_numpy(model.params[k]) for k in model.adapter_keys()}
    out = {}

    def put(module, A, B, a="lora_A.weight", b="lora_B.weight"):
        out[f"{ROOT}{module}.{a}"] = np.ascontiguousarray(A.T)  # [r, d_in]
        out[f"{ROOT}{module}.{b}"] = np.ascontiguousarray(B.T)  # [d_out, r]

    if check_model(model) == "mlp":
        for t in model.targets:
            put(t, p[f"{t}.A"], p[f"{t}.B"])
        return out
    if "tok_emb" in model.targets:
        put(EMBEDDING, p["tok_emb.A"], p["tok_emb.B"], "lora_embedding_A", "lora_embedding_B")
    for i in range(model.n_layer):
        b, h = f"blocks.{i}.", f"transformer.h.{i}."
        qkv = [n for n in QKV if f"{b}attn.{n}" in model.targets]
        if qkv:
            put(h + "attn.c_attn", *fuse([p[f"{b}attn.{n}.A"] for n in qkv],
                                         [p[f"{b}attn.{n}.B"] for n in qkv],
                                         [QKV.index(n) for n in qkv]))
        for path, module in MODULES.items():
            if b + path in model.targets:
                put(h + module, p[f"{b}{path}.A"], p[f"{b}{path}.B"])
    return out


def peft_config(model, base_model_name_or_path=None) -> dict:
    """`model`'s adapter_config.json (PEFT's ``LoraConfig``), as a dict."""
    lora, gpt2 = model.lora, check_model(model) == "gpt2"
    short = _short_targets(model) if gpt2 else list(model.targets)
    m = sum(n in short for n in QKV)  # how many of q, k, v share c_attn
    fused = gpt2 and m > 1
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM" if gpt2 else None,
            "base_model_name_or_path": base_model_name_or_path, "r": lora.r,
            "lora_alpha": lora.alpha, "use_rslora": lora.rslora, "lora_dropout": lora.dropout,
            "target_modules": sorted({NAMES[n] for n in short}) if gpt2 else short,
            "rank_pattern": {"c_attn": m * lora.r} if fused else {},
            "alpha_pattern": {"c_attn": lora.alpha * (math.sqrt(m) if lora.rslora else m)}
            if fused else {},
            "fan_in_fan_out": gpt2, "init_lora_weights": True, "inference_mode": True, **REFUSED}


def _short_targets(model) -> list:
    """TinyLM's targets by their short names, in the model's order ("tok_emb", "q", ...)."""
    return [t for t in ("tok_emb", *BLOCK_TARGETS)
            if t in model.targets or f"blocks.0.{TARGET_PATHS.get(t)}" in model.targets]


def from_peft(config: dict, arrays: dict, record, where: str) -> tuple:
    """PEFT's config and arrays (and tinylora's record, or None) -> (LoRAConfig, arrays in
    tinylora's keys and layouts). Every module must have tinylora's one rank and scale."""
    for key, value in {"peft_type": "LORA", **REFUSED}.items():
        if config.get(key) not in (value, None, []):
            validate.fail(f"{where}: {key}", repr(value), config.get(key))
    r, alpha = config.get("r", 8), config.get("lora_alpha", 8)  # PEFT's defaults when absent
    rslora = config.get("use_rslora", False)
    lora = LoRAConfig(r, alpha, rslora, dropout=config.get("lora_dropout", 0.0))
    if record:  # tinylora wrote it: its own settings, which must agree with PEFT's
        mine, lora = lora, LoRAConfig(**record["lora"])
        if (lora.r, lora.alpha, lora.rslora) != (mine.r, mine.alpha, mine.rslora):
            raise ValueError(f"{where}: adapter_config.json says r={r}, lora_alpha={alpha}, "
                             f"use_rslora={rslora}; the tinylora record r={lora.r}, "
                             f"alpha={lora.alpha:g}, rslora={lora.rslora}")
    out = {}
    for module, f in _modules(arrays, where).items():
        rank = f["A"].shape[0]
        scale = _pattern(config.get("alpha_pattern"), module, alpha) / (
            math.sqrt(rank) if rslora else rank)
        if rank != _pattern(config.get("rank_pattern"), module, r) or not math.isclose(
                scale, lora.scale, rel_tol=1e-12):
            raise ValueError(f"{where}: module {module!r} has rank {rank} and scale {scale:g}; "
                             f"tinylora's LoRA has one: r={lora.r}, scale {lora.scale:g}")
        A, B, target = f["A"].T, f["B"].T, _target(module, where)  # tinylora's layout
        if not target.endswith(".attn"):
            out[f"{target}.A"], out[f"{target}.B"] = A, B
            continue
        qkv = [n for n in QKV if f"{target}.{n}" in record["targets"]] if record else QKV
        for n, (A_n, B_n) in zip(qkv, split(A, B, [QKV.index(n) for n in qkv], lora.r,
                                            f"{where}: {module}")):
            out[f"{target}.{n}.A"], out[f"{target}.{n}.B"] = A_n, B_n
    targets = {k.rsplit(".", 1)[0] for k in out}
    short = {t.rsplit(".", 1)[-1] for t in targets}
    layers = {t.split(".")[1] for t in targets if t.startswith("blocks.")}
    if any(f"blocks.{i}.{TARGET_PATHS[n]}" not in targets for i in layers for n in short
           if n in TARGET_PATHS):
        raise ValueError(f"{where}: the LoRA layers differ from block to block; tinylora puts "
                         f"each target in every block (found {sorted(targets)})")
    if not record:
        mlp = sorted((t for t in short if re.fullmatch(r"fc\d+", t)), key=lambda t: int(t[2:]))
        order = ("tok_emb", *BLOCK_TARGETS, *mlp)
        lora = LoRAConfig(r, alpha, rslora, dropout=lora.dropout,
                          targets=tuple(t for t in dict.fromkeys(order) if t in short))
    return lora, {k: np.ascontiguousarray(a) for k, a in out.items()}


def _modules(arrays: dict, where: str) -> dict:
    """PEFT's keys -> {module path: {"A": lora_A, "B": lora_B}}; anything else is refused."""
    modules = {}
    for key, a in arrays.items():
        found = re.fullmatch(re.escape(ROOT) + r"(.+)\.lora_(?:embedding_)?([AB])(?:\.weight)?",
                             key)
        if found is None or a.ndim != 2 or a.dtype.kind not in "fiu":
            raise ValueError(f"{where}: unexpected key {key!r} of shape {tuple(a.shape)}: not "
                             "a LoRA factor")
        modules.setdefault(found.group(1), {})[found.group(2)] = a
    for module, f in modules.items():
        if len(f) != 2:
            raise ValueError(f"{where}: module {module!r} has lora_{list(f)[0]} without its pair")
    return modules


def _target(module: str, where: str) -> str:
    """PEFT's module path -> tinylora's layer ("blocks.{i}.attn" for c_attn: q, k, v)."""
    if module == EMBEDDING:
        return "tok_emb"
    if re.fullmatch(r"fc[1-9][0-9]*", module):
        return module
    found = re.fullmatch(r"transformer\.h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|"
                         r"mlp\.c_proj)", module)
    if found is None:
        raise ValueError(f"{where}: module {module!r} is neither one of GPT-2's layers TinyLM has "
                         "(c_attn, attn.c_proj, c_fc, mlp.c_proj, wte) nor an MLP's fc1 .. fcK")
    i, name = found.groups()
    return f"blocks.{i}." + {v: k for k, v in MODULES.items()}.get(name, "attn")


def _pattern(patterns, module: str, default):
    """PEFT's rank_pattern / alpha_pattern lookup: the first key that matches the end of the
    module's path (a name or a regular expression), else the default."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default
