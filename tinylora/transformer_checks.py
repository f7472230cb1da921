"""The Transformer's share of the `tinylora gradcheck` catalogue (`tinylora.checks` runs these).

Every new layer (layer norm, embeddings, the attention heads, the attention layer), the block
(LoRA on each target alone, both inits; every array trainable; the input's gradient) and TinyLM,
in float64 at a random point: random non-zero B (`checks.randomize_lora`), random biases, layer
norm gains away from 1. Reported at 1e-6: the chains are longer than the MLP's, yet every tensor
still lands near 1e-9.
"""

from __future__ import annotations

import itertools

from tinylora import attention, backend
from tinylora.block import BLOCK_TARGETS, TransformerBlock
from tinylora.embedding import embedding_backward, embedding_forward
from tinylora.gradcheck import Result, check, check_model, numerical_grad
from tinylora.norms import layernorm_backward, layernorm_forward
from tinylora.transformer import TinyLM

F64 = "float64"
TOL = 1e-6


def _randn(rng, shape, xp, std=1.0):
    return backend.normal(rng, shape, std, xp, F64)


def randomize_lora(model, seed):
    """`tinylora.checks.randomize_lora`, imported late (tinylora.checks imports this module)."""
    from tinylora.checks import randomize_lora as randomize

    randomize(model, seed=seed)


def _randomize_norms(model, seed):
    """Layer-norm gains away from 1 (randomize_lora already moved every bias)."""
    rng = backend.host_rng(seed)
    for k, p in model.params.items():
        if k.endswith(".g"):
            p[...] = 1.0 + backend.normal(rng, tuple(p.shape), 0.3, model.xp, p.dtype)


def _check_tf(name, forward, backward, arrays, keys=None, seed=0, tol=TOL):
    """check(), except for the key bias ``attn.k.b``: its gradient is exactly zero (it adds
    q_t . b_k to every score of row t, and softmax ignores a shift of a row), so a relative error
    would compare two round-off noises. For it, both gradients must vanish: the largest absolute
    entry of either is the reported error."""
    keys = list(arrays) if keys is None else list(keys)
    zero = [k for k in keys if k.endswith("attn.k.b")]
    results = check(name, forward, backward, arrays, [k for k in keys if k not in zero], seed,
                    tol)
    if zero:
        out = forward()
        g = backend.normal(seed, tuple(out.shape), 1.0, backend.xp_of(out), F64)  # as check()
        analytic = backward(g)
        loss = lambda: float((forward() * g).sum())  # noqa: E731
        for k in zero:
            n = backend.to_numpy(numerical_grad(loss, arrays[k]))
            err = max(float(abs(backend.to_numpy(analytic[k])).max()), float(abs(n).max()))
            results.append(Result(f"{name}/{k} (exactly 0)", err, tol))
    return results


def _check_arrays(name, fwd, bwd, a, tol=TOL):
    """Check a layer function: fwd(a) -> (out, cache); bwd(g, cache) -> {key: grad}."""
    cache = {}

    def forward():
        out, cache["c"] = fwd(a)
        return out

    def backward(g):
        forward()
        return bwd(g, cache["c"])

    return _check_tf(name, forward, backward, a, tol=tol)


def case_layernorm(xp):
    rng = backend.host_rng(20)
    a = {"x": _randn(rng, (2, 3, 5), xp, std=2.0), "g": 1.0 + _randn(rng, 5, xp, 0.3),
         "b": _randn(rng, 5, xp)}
    return _check_arrays(
        "layernorm", lambda a: layernorm_forward(a["x"], a["g"], a["b"]),
        lambda g, c: dict(zip("xgb", layernorm_backward(g, c, need_dg=True, need_db=True))), a)


def case_embedding(xp):
    """Repeated tokens (their rows add up) and context > T (unused positions get 0)."""
    rng = backend.host_rng(21)
    tokens = xp.asarray([[1, 3, 1, 0], [3, 3, 2, 1]])
    a = {"tok_emb": _randn(rng, (5, 3), xp), "pos_emb": _randn(rng, (6, 3), xp)}
    return _check_arrays(
        "embedding", lambda a: embedding_forward(tokens, a["tok_emb"], a["pos_emb"]),
        lambda g, c: dict(zip(("tok_emb", "pos_emb"), embedding_backward(g, c))), a)


def case_attention(xp):
    """The heads alone (q, k, v -> y: scores, causal mask, softmax, weighted sum), then the
    whole layer with LoRA on q, k, v, o and every array trainable, its input x included."""
    rng = backend.host_rng(22)
    a = {n: _randn(rng, (2, 4, 6), xp) for n in "qkv"}
    results = _check_arrays(
        "attention_heads", lambda a: attention.attend_forward(a["q"], a["k"], a["v"], 2),
        lambda g, c: dict(zip("qkv", attention.attend_backward(g, c))), a)
    blk = TransformerBlock(6, 2, targets=("q", "k", "v", "o"), r=2, alpha=3.0, seed=23,
                           dtype=F64, backend=xp.__name__)
    randomize_lora(blk, seed=24)
    p = {k: v for k, v in blk.params.items() if k.startswith("attn.")}
    p["x"] = _randn(rng, (2, 4, 6), xp)

    def bwd(g, c):
        grads = {}
        grads["x"] = attention.attention_backward(g, c, set(p), grads)
        return grads

    return results + _check_arrays(
        "attention", lambda a: attention.attention_forward(a["x"], a, "attn", 2, blk.scale), bwd, p)


def case_block(xp):
    """The block with LoRA on each target alone, both inits; then every array trainable
    (frozen W, biases, layer norms) together with the gradient of the block's input."""
    x, results = _randn(25, (2, 4, 6), xp), []
    kw = {"d_ff": 8, "r": 2, "alpha": 3.0, "dtype": F64, "backend": xp.__name__}
    for (i, target), init in itertools.product(enumerate(BLOCK_TARGETS), ("zero_B", "zero_A")):
        blk = TransformerBlock(6, 2, targets=(target,), init=init, seed=26, **kw)
        randomize_lora(blk, seed=100 + 2 * i + (init == "zero_A"))  # a different point each
        _randomize_norms(blk, seed=28)
        results += check_model(f"block[{target},{init}]", blk, x, checker=_check_tf)
    blk = TransformerBlock(6, 2, targets=BLOCK_TARGETS, rslora=True, trainable="all", seed=29, **kw)
    randomize_lora(blk, seed=30)
    _randomize_norms(blk, seed=31)
    results += check_model("block[trainable=all]", blk, x, checker=_check_tf)
    a, cache = {"x": x}, {}

    def forward():
        out, cache["c"] = blk.forward(a["x"])
        return out

    def backward(g):
        forward()
        return {"x": blk.backward_with_input(g, cache["c"])[0]}

    return results + check("block[input]", forward, backward, a, tol=TOL)


def case_tinylm(xp):
    """TinyLM: LoRA on every target of both blocks with every array trainable (embeddings,
    head, final norm); then LoRA only at Init[2] (the backward stops above the embeddings)."""
    tokens = xp.asarray([[1, 4, 1, 6, 0], [2, 2, 5, 1, 3]])  # repeats: tok_emb rows add up
    results = []
    for i, (init, trainable) in enumerate((("zero_B", "all"), ("zero_A", "lora"))):
        lm = TinyLM(7, d_model=6, n_head=2, n_layer=2, context=6, d_ff=8, targets=BLOCK_TARGETS,
                    r=2, alpha=3.0, init=init, trainable=trainable, seed=32, dtype=F64,
                    backend=xp.__name__)
        randomize_lora(lm, seed=33 + i)
        _randomize_norms(lm, seed=35 + i)
        results += check_model(f"tinylm[{init},trainable={trainable}]", lm, tokens,
                               checker=_check_tf)
    return results


TRANSFORMER_CASES = [case_layernorm, case_embedding, case_attention, case_block, case_tinylm]
