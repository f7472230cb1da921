"""Causal multi-head self-attention (tinylora.attention): each step, the heads, the layer."""

import numpy as np

from tinylora import attention, backend
from tinylora.block import BlockConfig, TransformerBlock
from tinylora.gradcheck.catalogue import case_attention
from tinylora.lora import LoRAConfig


def _qkv(seed, shape=(2, 5, 8), std=1.0):
    return [backend.normal(seed + i, shape, std, np) for i in range(3)]


def test_attention_gradients_match_finite_differences():
    """The heads (q, k, v -> y) and the whole layer with LoRA on q, k, v, o, every array and the
    input x trainable: every gradient agrees with float64 finite differences (<= 1e-6)."""
    results = case_attention(np)
    names = {r.name for r in results}
    assert {"attention_heads/q", "attention_heads/k", "attention_heads/v", "attention/x",
            "attention/attn.q.A", "attention/attn.o.B", "attention/attn.v.W"} <= names
    bad = [r.line() for r in results if not r.ok]
    assert not bad, bad


def test_probabilities_are_non_negative_rows_sum_to_one_and_the_future_gets_zero():
    """p = softmax(masked scores): p >= 0, each row sums to 1, and p[t, u] = 0 exactly for u > t."""
    q, k, v = _qkv(0)
    p = attention.attend_forward(q, k, v, n_head=2)[1].p
    T = q.shape[1]
    assert p.shape == (2, 2, T, T)
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-12)
    assert (p[..., np.triu_indices(T, k=1)[0], np.triu_indices(T, k=1)[1]] == 0).all()
    np.testing.assert_allclose(p[..., 0, 0], 1.0)  # the first position can only see itself


def test_softmax_is_stable_for_huge_scores():
    """Scores of size 1e4 would overflow exp(); subtracting each row's max keeps p finite."""
    s = backend.normal(1, (2, 4, 4), 1e4, np)
    p = attention.softmax_forward(attention.causal_mask_forward(s.copy()))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-12)


def test_changing_a_later_position_leaves_earlier_outputs_unchanged():
    """Causality: changing q, k, v at position t changes no output before t (and does change t)."""
    q, k, v = _qkv(2)
    y, _ = attention.attend_forward(q, k, v, n_head=2)
    t = 3
    q2, k2, v2 = (a.copy() for a in (q, k, v))
    for a in (q2, k2, v2):
        a[:, t] += 1.0
    y2, _ = attention.attend_forward(q2, k2, v2, n_head=2)
    np.testing.assert_allclose(y2[:, :t], y[:, :t], rtol=0, atol=1e-12)
    assert np.abs(y2[:, t] - y[:, t]).max() > 1e-3


def test_heads_are_a_view_and_merge_inverts_split():
    """split_heads copies nothing (a reshape + transpose); merge_heads(split_heads(x)) == x."""
    x = backend.normal(3, (2, 5, 8), 1.0, np)
    xh = attention.split_heads(x, 4)
    assert xh.shape == (2, 4, 5, 2) and np.shares_memory(xh, x)
    np.testing.assert_array_equal(xh[:, 1], x[:, :, 2:4])  # head 1 = features 2..3
    np.testing.assert_array_equal(attention.merge_heads(xh), x)


def test_one_head_is_plain_softmax_attention():
    """With n_head = 1 the layer's core is softmax(q k^T / sqrt(d) + mask) v, written out here."""
    q, k, v = _qkv(4, (1, 4, 6))
    y, _ = attention.attend_forward(q, k, v, n_head=1)
    s = q[0] @ k[0].T / np.sqrt(6) + np.triu(np.full((4, 4), -np.inf), 1)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y[0], p @ v[0], atol=1e-12)


def test_the_key_bias_gets_exactly_zero_gradient():
    """A key bias b adds q_t . b to every score of row t, and softmax ignores a constant added
    to a row: so d(attn.k.b) = 0 exactly, while the query bias's gradient is not zero."""
    blk = TransformerBlock(BlockConfig(8, 2), LoRAConfig(targets=()), trainable="all", seed=5)
    x = backend.normal(6, (2, 5, 8), 1.0, np)
    out, cache = blk.forward(x)
    grads = blk.backward(backend.normal(7, out.shape, 1.0, np), cache)
    assert np.abs(grads["attn.k.b"]).max() < 1e-12 * np.abs(grads["attn.q.b"]).max()
