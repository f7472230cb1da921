"""The pre-LN Transformer block (tinylora.block): every gradient against finite differences and,
where PyTorch is installed, the forward and every gradient against torch autograd."""

import numpy as np
import pytest

from tinylora import backend
from tinylora.block import BLOCK_TARGETS, BlockConfig, TransformerBlock
from tinylora.gradcheck import randomize_lora
from tinylora.gradcheck.catalogue import case_block
from tinylora.lora import LoRAConfig


def _assert_all_ok(results):
    bad = [r.line() for r in results if not r.ok]
    assert not bad, bad


def test_block_gradients_match_finite_differences():
    """The block: LoRA on each of q, k, v, o, fc1, fc2 alone at both inits, then every array
    trainable and the input's gradient: all within 1e-6 of float64 finite differences."""
    results = case_block(np)
    names = {r.name for r in results}
    paths = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc1", "mlp.fc2")
    for t, path in zip(BLOCK_TARGETS, paths, strict=True):
        for init in ("zero_B", "zero_A"):
            assert {f"block[{t},{init}]/{path}.A", f"block[{t},{init}]/{path}.B"} <= names
    assert "block[trainable=all]/mlp.fc1.W" in names and "block[input]/x" in names
    _assert_all_ok(results)


def test_backward_returns_exactly_the_trainable_keys():
    """trainable='lora' gives the factors only; an explicit list gives just those keys; the
    frozen arrays get no gradient."""
    x = backend.normal(0, (2, 4, 8), 1.0, np)
    for trainable, want in (("lora", ("attn.v.A", "attn.v.B", "mlp.fc2.A", "mlp.fc2.B")),
                            (["ln2.g", "attn.q.W"], ("ln2.g", "attn.q.W")), ("all", None)):
        blk = TransformerBlock(BlockConfig(8, 2), LoRAConfig(r=2, targets=("v", "fc2")),
                               trainable=trainable, seed=1)
        out, cache = blk.forward(x)
        grads = blk.backward(np.ones_like(out), cache)
        assert list(grads) == list(blk.trainable)
        assert set(grads) == set(want or blk.params)


# --------------------------------------------------------------------------------------------
# PyTorch (optional): the same block in autograd


def _torch_block(torch, x, P, n_head, scale, targets):
    """The block written with PyTorch ops on the same arrays (weights stored (d_in, d_out))."""
    F = torch.nn.functional
    d = x.shape[-1]

    def lin(h, name):
        y = h @ P[f"{name}.W"] + P[f"{name}.b"]
        if name in targets:
            y = y + scale * ((h @ P[f"{name}.A"]) @ P[f"{name}.B"])
        return y

    def heads(t):
        N, T, _ = t.shape
        return t.view(N, T, n_head, d // n_head).transpose(1, 2)

    h = F.layer_norm(x, (d,), P["ln1.g"], P["ln1.b"], eps=1e-5)
    q, k, v = (heads(lin(h, f"attn.{n}")) for n in "qkv")
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale 1/sqrt(d_head)
    x1 = x + lin(y.transpose(1, 2).reshape(x.shape), "attn.o")
    h2 = F.layer_norm(x1, (d,), P["ln2.g"], P["ln2.b"], eps=1e-5)
    return x1 + lin(F.gelu(lin(h2, "mlp.fc1"), approximate="tanh"), "mlp.fc2")


def test_block_matches_pytorch_autograd():
    """Where PyTorch is installed: the block's output, every parameter gradient and the input
    gradient agree with torch autograd on the same float64 weights (LoRA on every target)."""
    torch = pytest.importorskip("torch", reason="PyTorch is optional; this comparison needs it")
    blk = TransformerBlock(BlockConfig(8, 2, d_ff=12), LoRAConfig(r=2, alpha=3.0),
                           trainable="all", seed=24)
    randomize_lora(blk, seed=25)
    x = backend.normal(26, (2, 5, 8), 1.0, np)
    g = backend.normal(27, (2, 5, 8), 1.0, np)
    out, cache = blk.forward(x)
    dx, grads = blk.backward_with_input(g, cache)

    P = {k: torch.tensor(v, requires_grad=True) for k, v in blk.params.items()}
    xt = torch.tensor(x, requires_grad=True)
    out_t = _torch_block(torch, xt, P, 2, blk.scale, set(blk.targets))
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert set(grads) == set(P)
    for k, p in P.items():
        np.testing.assert_allclose(grads[k], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
