"""The catalogue that `tinylora gradcheck` runs: every backward in the library, in float64,
at random points with a random, non-zero B (never the degenerate init point). The method, finite
differences against the hand-derived backward, is the reference's `tinylora.gradcheck`; this is
the command's list of cases, run once with the reference and once with the fast twins.

Each case is a function ``case(xp) -> list[Result]``; `run_all` runs them all. Sizes are tiny on
purpose: finite differences cost two forwards per entry. The layers and the MLP are held to
1e-7; the Transformer's chains are longer and are reported at 1e-6 (every tensor still lands
near 1e-9). The attention's key bias ``attn.k.b`` has an exactly-zero gradient (it adds
q_t . b_k to every score of row t, and softmax ignores a shift of a row): it is checked as "both
gradients vanish" (`gradcheck.check`'s `zero`).
"""

from __future__ import annotations

import itertools

from tinylora import attention, backend, layers
from tinylora.block import BLOCK_TARGETS, BlockConfig, TransformerBlock
from tinylora.embedding import (
    embedding_backward,
    embedding_forward,
    lora_embedding_backward,
    lora_embedding_forward,
)
from tinylora.gradcheck import check_layer, check_model, randomize_lora
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.norms import layernorm_backward, layernorm_forward
from tinylora.transformer import LMConfig, TinyLM

F64 = "float64"
TF_TOL = 1e-6  # the Transformer's cases
ZERO = ("attn.k.b",)  # gradients that vanish identically


def _randn(rng, shape, xp, std=1.0):
    return backend.normal(rng, shape, std, xp, F64)


def _off_kink(rng, shape, xp):
    """Random inputs at least 0.1 away from 0, so relu's kink is never inside x +- h."""
    z = backend.host_rng(rng).standard_normal(shape)
    return xp.asarray((0.1 + abs(z)) * ((z > 0) * 2.0 - 1.0))


def case_linear(xp):
    rng = backend.host_rng(1)
    a = {"x": _randn(rng, (2, 3, 4), xp), "W": _randn(rng, (4, 5), xp), "b": _randn(rng, 5, xp)}
    return check_layer("linear", lambda a: layers.linear_forward(a["x"], a["W"], a["b"]),
                       lambda g, c: dict(zip(("x", "W", "b"), layers.linear_backward(
                           g, c, need_dW=True, need_db=True))), a)


def case_lora_linear(xp, stacked: bool = False):
    """y = x W + b + scale (x A) B with B random (non-zero); stacked: A, B carry a stack axis
    of 2 models while x is shared, so dx sums both models' contributions."""
    rng = backend.host_rng(2)
    stack = (2,) if stacked else ()
    a = {"x": _randn(rng, (2, 3, 5), xp), "W": _randn(rng, (5, 4), xp), "b": _randn(rng, 4, xp),
         "A": _randn(rng, (*stack, 5, 2), xp), "B": _randn(rng, (*stack, 2, 4), xp)}
    return check_layer("lora_linear_stacked" if stacked else "lora_linear",
                       lambda a: layers.lora_linear_forward(a["x"], a["W"], a["b"], a["A"],
                                                            a["B"], 1.5),
                       lambda g, c: dict(zip(("x", "W", "b", "A", "B"), layers.lora_linear_backward(
                           g, c, need_dW=True, need_db=True))), a)


def case_lora_dropout(xp):
    """LoRA dropout with a fixed mask (p = 0.5, every entry kept or dropped): A reads x * mask,
    the frozen path x; dx gathers both, the LoRA path's through the mask."""
    rng = backend.host_rng(40)
    mask = xp.asarray((rng.random((2, 3, 5)) >= 0.5) * 2.0)  # keep / (1 - p)
    a = {"x": _randn(rng, (2, 3, 5), xp), "W": _randn(rng, (5, 4), xp), "b": _randn(rng, 4, xp),
         "A": _randn(rng, (5, 2), xp), "B": _randn(rng, (2, 4), xp)}
    return check_layer("lora_linear[dropout]",
                       lambda a: layers.lora_linear_forward(a["x"], a["W"], a["b"], a["A"],
                                                            a["B"], 1.5, mask=mask),
                       lambda g, c: dict(zip(("x", "W", "b", "A", "B"), layers.lora_linear_backward(
                           g, c, need_dW=True, need_db=True))), a)


class _FixedMasks:
    """A model whose dropout draws the same masks at every forward (its stream rewound): the
    finite differences then differentiate one fixed function."""

    def __init__(self, model):
        self.model, self.params, self.trainable = model, model.params, model.trainable

    def forward(self, x):
        self.model.lora_dropout().rewind()
        return self.model.forward(x)

    def backward(self, dout, cache):
        return self.model.backward(dout, cache)


def case_dropout_models(xp):
    """The MLP and TinyLM training with LoRA dropout on (p = 0.3; masks held fixed)."""
    m = LoRAMLP(MLPConfig(4, 5, 3, activation="gelu", bias=True),
                LoRAConfig(r=2, alpha=3.0, dropout=0.3), seed=41, backend=xp.__name__, dtype=F64)
    randomize_lora(m, seed=42)
    lm = TinyLM(LMConfig(7, d_model=6, n_head=2, n_layer=1, context=6, d_ff=8),
                LoRAConfig(r=2, alpha=3.0, dropout=0.3), seed=43, dtype=F64, backend=xp.__name__)
    randomize_lora(lm, seed=44)
    tokens = xp.asarray([[1, 4, 1, 6, 0], [2, 2, 5, 1, 3]])
    return (check_model("mlp[dropout]", _FixedMasks(m), _randn(45, (3, 4), xp))
            + check_model("tinylm[dropout]", _FixedMasks(lm), tokens, tol=TF_TOL, zero=ZERO))


def _case_elementwise(name, fwd, bwd, x):
    return check_layer(name, lambda a: fwd(a["x"]), lambda g, c: {"x": bwd(g, c)}, {"x": x})


def case_relu(xp):
    return _case_elementwise("relu", layers.relu_forward, layers.relu_backward,
                             _off_kink(3, (3, 4), xp))


def case_gelu(xp):
    return _case_elementwise("gelu", layers.gelu_forward, layers.gelu_backward,
                             _randn(4, (3, 4), xp, std=2.0))


def case_mse(xp):
    rng = backend.host_rng(5)
    y = _randn(rng, (4, 3), xp)
    return _case_elementwise("mse", lambda p: layers.mse_forward(p, y), layers.mse_backward,
                             _randn(rng, (4, 3), xp))


def case_cross_entropy(xp):
    rng = backend.host_rng(6)
    targets = xp.asarray(rng.integers(0, 5, size=(2, 3)))
    return _case_elementwise("cross_entropy", lambda z: layers.cross_entropy_forward(z, targets),
                             layers.cross_entropy_backward, _randn(rng, (2, 3, 5), xp, std=2.0))


def case_mlp(xp):
    """The LoRA MLP in every combination: both inits, both activations, bias on/off, rsLoRA
    on/off; then every array trainable (the frozen weights' dW derived and checked too); then
    one layer alone (d_hidden = [], fc1: d_in -> d_out), with its frozen W and bias trainable."""
    results = []
    x = _randn(7, (3, 4), xp)
    for init, act, bias, rs in itertools.product(("zero_B", "zero_A"), ("relu", "gelu"),
                                                 (False, True), (False, True)):
        m = LoRAMLP(MLPConfig(4, [5, 6], 3, activation=act, bias=bias),
                    LoRAConfig(r=2, alpha=3.0, rslora=rs, init=init), seed=8,
                    backend=xp.__name__, dtype=F64)
        randomize_lora(m, seed=9)
        tag = f"mlp[{init},{act},{'bias' if bias else 'nobias'},{'rslora' if rs else 'lora'}]"
        results += check_model(tag, m, x)
    m = LoRAMLP(MLPConfig(4, 5, 3, activation="gelu", bias=True),
                LoRAConfig(r=2, targets=["fc2"]), trainable="all", seed=10,
                backend=xp.__name__, dtype=F64)
    randomize_lora(m, seed=11)
    results += check_model("mlp[trainable=all]", m, x)
    m = LoRAMLP(MLPConfig(4, [], 3, bias=True), LoRAConfig(r=2, alpha=3.0), trainable="all",
                seed=12, backend=xp.__name__, dtype=F64)
    randomize_lora(m, seed=13)
    results += check_model("mlp[one_layer]", m, x)
    return results


def case_layernorm(xp):
    rng = backend.host_rng(20)
    a = {"x": _randn(rng, (2, 3, 5), xp, std=2.0), "g": 1.0 + _randn(rng, 5, xp, 0.3),
         "b": _randn(rng, 5, xp)}
    return check_layer(
        "layernorm", lambda a: layernorm_forward(a["x"], a["g"], a["b"]),
        lambda g, c: dict(zip("xgb", layernorm_backward(g, c, need_dg=True, need_db=True))), a,
        tol=TF_TOL)


def case_embedding(xp):
    """Repeated tokens (their rows add up) and context > T (unused positions get 0)."""
    rng = backend.host_rng(21)
    tokens = xp.asarray([[1, 3, 1, 0], [3, 3, 2, 1]])
    a = {"tok_emb": _randn(rng, (5, 3), xp), "pos_emb": _randn(rng, (6, 3), xp)}
    return check_layer(
        "embedding", lambda a: embedding_forward(tokens, a["tok_emb"], a["pos_emb"]),
        lambda g, c: dict(zip(("tok_emb", "pos_emb"), embedding_backward(g, c))), a, tol=TF_TOL)


def case_lora_embedding(xp):
    """LoRA on the token table, scale A[tokens] B, at a random non-zero A and B (at its init
    A = 0 and dB would vanish); repeated tokens scatter-add their rows of dA."""
    rng = backend.host_rng(46)
    tokens = xp.asarray([[1, 3, 1, 0], [3, 3, 2, 1]])
    a = {"A": _randn(rng, (5, 2), xp), "B": _randn(rng, (2, 3), xp)}
    return check_layer(
        "lora_embedding", lambda a: lora_embedding_forward(tokens, a["A"], a["B"], 1.5),
        lambda g, c: dict(zip("AB", lora_embedding_backward(g, c))), a, tol=TF_TOL)


def case_attention(xp):
    """The heads alone (q, k, v -> y: scores, causal mask, softmax, weighted sum), then the
    whole layer with LoRA on q, k, v, o and every array trainable, its input x included."""
    rng = backend.host_rng(22)
    a = {n: _randn(rng, (2, 4, 6), xp) for n in "qkv"}
    results = check_layer(
        "attention_heads", lambda a: attention.attend_forward(a["q"], a["k"], a["v"], 2),
        lambda g, c: dict(zip("qkv", attention.attend_backward(g, c))), a, tol=TF_TOL)
    blk = TransformerBlock(BlockConfig(6, 2), LoRAConfig(r=2, alpha=3.0, targets=("q", "k", "v",
                           "o")), seed=23, dtype=F64, backend=xp.__name__)
    randomize_lora(blk, seed=24)
    p = {k: v for k, v in blk.params.items() if k.startswith("attn.")}
    p["x"] = _randn(rng, (2, 4, 6), xp)

    def bwd(g, c):
        grads = {}
        grads["x"] = attention.attention_backward(g, c, set(p), grads)
        return grads

    return results + check_layer(
        "attention", lambda a: attention.attention_forward(a["x"], a, "attn", 2, blk.scale), bwd, p,
        tol=TF_TOL, zero=ZERO)


def case_block(xp):
    """The block with LoRA on each target alone, both inits; then every array trainable
    (frozen W, biases, layer norms) together with the gradient of the block's input."""
    x, results = _randn(25, (2, 4, 6), xp), []
    config, kw = BlockConfig(6, 2, d_ff=8), {"dtype": F64, "backend": xp.__name__}
    for (i, target), init in itertools.product(enumerate(BLOCK_TARGETS), ("zero_B", "zero_A")):
        lora = LoRAConfig(r=2, alpha=3.0, init=init, targets=(target,))
        blk = TransformerBlock(config, lora, seed=26, **kw)
        randomize_lora(blk, seed=100 + 2 * i + (init == "zero_A"))  # a different point each
        results += check_model(f"block[{target},{init}]", blk, x, tol=TF_TOL, zero=ZERO)
    blk = TransformerBlock(config, LoRAConfig(r=2, alpha=3.0, rslora=True), trainable="all",
                           seed=29, **kw)
    randomize_lora(blk, seed=30)
    results += check_model("block[trainable=all]", blk, x, tol=TF_TOL, zero=ZERO)
    return results + check_layer("block[input]", lambda a: blk.forward(a["x"]),
                                 lambda g, c: {"x": blk.backward_with_input(g, c)[0]}, {"x": x},
                                 tol=TF_TOL)


def case_tinylm(xp):
    """TinyLM: LoRA on every target of both blocks with every array trainable (embeddings,
    head, final norm); then LoRA only at Init[2] (the backward stops above the embeddings)."""
    tokens = xp.asarray([[1, 4, 1, 6, 0], [2, 2, 5, 1, 3]])  # repeats: tok_emb rows add up
    config = LMConfig(7, d_model=6, n_head=2, n_layer=2, context=6, d_ff=8)
    kw = {"dtype": F64, "backend": xp.__name__}
    results = []
    for i, (init, trainable) in enumerate((("zero_B", "all"), ("zero_A", "lora"))):
        lora = LoRAConfig(r=2, alpha=3.0, init=init, targets=BLOCK_TARGETS)
        lm = TinyLM(config, lora, trainable=trainable, seed=32, **kw)
        randomize_lora(lm, seed=33 + i)
        results += check_model(f"tinylm[{init},trainable={trainable}]", lm, tokens,
                               tol=TF_TOL, zero=ZERO)
    lm = TinyLM(config, LoRAConfig(r=2, alpha=3.0, targets=("tok_emb", "q")), seed=35, **kw)
    randomize_lora(lm, seed=36)  # the table's LoRA through both blocks, q's LoRA beside it
    return results + check_model("tinylm[tok_emb,q]", lm, tokens, tol=TF_TOL, zero=ZERO)


def case_tinylm_stacked(xp):
    """TinyLM with a stack of 2 factor sets (S, 1, d_in, r), LoRA on every target at a random
    non-zero B: every copy reading one batch (the frozen path shared), and each its own."""
    config = LMConfig(7, d_model=6, n_head=2, n_layer=2, context=6, d_ff=8)
    lm = TinyLM(config, LoRAConfig(r=2, alpha=3.0), stack=(2,), seed=37, dtype=F64,
                backend=xp.__name__)
    randomize_lora(lm, seed=38)
    shared = xp.asarray([[1, 4, 1, 6, 0], [2, 2, 5, 1, 3]])
    own = xp.asarray([[[1, 4, 1, 6, 0], [2, 2, 5, 1, 3]], [[0, 3, 3, 6, 2], [5, 1, 4, 4, 0]]])
    return (check_model("tinylm[stack=2,one batch]", lm, shared, tol=TF_TOL, zero=ZERO)
            + check_model("tinylm[stack=2,own batches]", lm, own, tol=TF_TOL, zero=ZERO))


CASES = [case_linear, case_lora_linear, lambda xp: case_lora_linear(xp, stacked=True),
         case_lora_dropout, case_relu, case_gelu, case_mse, case_cross_entropy, case_mlp,
         case_layernorm, case_embedding, case_lora_embedding, case_attention, case_block,
         case_tinylm, case_tinylm_stacked, case_dropout_models]


def run_all(backend_name: str | None = None):
    """Run every case on `backend_name` (numpy by default). -> list of `Result`."""
    xp = backend.get_xp(backend_name)
    return [r for case in CASES for r in case(xp)]
