"""Token and position embeddings (tinylora.embedding): lookup forward, scatter-add backward."""

import numpy as np
import pytest

from tinylora import backend
from tinylora.embedding import check_tokens, embedding_backward, embedding_forward
from tinylora.gradcheck.catalogue import case_embedding


def test_embedding_gradients_match_finite_differences():
    """dtok_emb (repeated tokens) and dpos_emb (context > T) agree with finite differences."""
    results = case_embedding(np)
    assert len(results) == 2
    bad = [r.line() for r in results if not r.ok]
    assert not bad, bad


def test_repeated_tokens_add_their_gradients():
    """A token used k times gets the sum of its k rows of dx: a lookup's backward is a
    scatter-add, and `dtok[tokens] = dx` (plain assignment) would keep only one of them."""
    tok_emb, pos_emb = backend.normal(0, (4, 3), 1.0, np), backend.normal(1, (5, 3), 1.0, np)
    tokens = np.array([[2, 2, 1], [2, 0, 0]])
    _, cache = embedding_forward(tokens, tok_emb, pos_emb)
    dx = backend.normal(2, (2, 3, 3), 1.0, np)
    dtok, dpos = embedding_backward(dx, cache)
    np.testing.assert_allclose(dtok[2], dx[0, 0] + dx[0, 1] + dx[1, 0])
    np.testing.assert_allclose(dtok[3], 0.0)  # never used
    np.testing.assert_allclose(dpos[:3], dx.sum(axis=0))
    np.testing.assert_allclose(dpos[3:], 0.0)  # positions beyond T


def test_frozen_tables_get_no_gradient_buffer():
    """need_dtok / need_dpos False: nothing is allocated, None comes back."""
    tokens = np.array([[0, 1]])
    x, cache = embedding_forward(tokens, np.ones((2, 3)), np.ones((4, 3)))
    assert embedding_backward(x, cache, need_dtok=False, need_dpos=False) == (None, None)


@pytest.mark.parametrize("tokens, message", [
    (np.array([[0, 5]]), r"tokens: token ids must lie in \[0, 5\)"),
    (np.array([[-1, 0]]), r"tokens: token ids must lie in \[0, 5\)"),
    (np.zeros((1, 7), dtype=int), r"T=7 must be between 1 and the model's context 6"),
    (np.zeros((1, 3)), r"expected integer token ids, got dtype float64"),
    (np.zeros(3, dtype=int), r"expected an integer array of shape \(N, T\), got shape \(3,\)"),
])
def test_bad_tokens_are_clear_errors(tokens, message):
    """Out-of-range ids, a sequence longer than the context, floats, a 1-D array: ValueError."""
    with pytest.raises(ValueError, match=message):
        check_tokens(tokens, vocab_size=5, context=6)
