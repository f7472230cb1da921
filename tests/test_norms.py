"""Layer norm (tinylora.norms): the forward normalises rows, the closed-form backward is exact."""

import numpy as np
import pytest

from tinylora import backend
from tinylora.gradcheck.catalogue import case_layernorm
from tinylora.norms import EPS, layernorm_backward, layernorm_forward


def test_layernorm_gradients_match_finite_differences():
    """dx, dg, db of the closed-form backward agree with float64 finite differences (<= 1e-6)."""
    results = case_layernorm(np)
    assert {r.name for r in results} == {"layernorm/x", "layernorm/g", "layernorm/b"}
    bad = [r.line() for r in results if not r.ok]
    assert not bad, bad


def test_layernorm_rows_have_mean_zero_and_unit_variance():
    """With g = 1, b = 0 every row comes out with mean 0 and variance var/(var + eps) ~ 1."""
    x = backend.normal(0, (3, 4, 16), 3.0, np) + 5.0
    y, _ = layernorm_forward(x, np.ones(16), np.zeros(16))
    var = x.var(axis=-1, keepdims=True)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1, keepdims=True), var / (var + EPS), rtol=1e-12)


def test_layernorm_ignores_a_shift_and_a_scale_of_its_input():
    """ln(a x + c) = ln(x) for a > 0 (up to eps): the reason its dx sums to zero along each row."""
    x = backend.normal(1, (2, 8), 1.0, np)
    g, b = backend.normal(2, 8, 1.0, np), backend.normal(3, 8, 1.0, np)
    y, cache = layernorm_forward(x, g, b, eps=0.0)
    y2, _ = layernorm_forward(3.0 * x + 7.0, g, b, eps=0.0)
    np.testing.assert_allclose(y2, y, atol=1e-12)
    dx, _, _ = layernorm_backward(backend.normal(4, (2, 8), 1.0, np), cache)
    np.testing.assert_allclose(dx.sum(axis=-1), 0.0, atol=1e-12)


def test_frozen_gain_and_bias_get_no_gradient():
    """need_dg / need_db False (the default): no gradient is computed, None comes back."""
    x = backend.normal(5, (2, 3, 4), 1.0, np)
    y, cache = layernorm_forward(x, np.ones(4), np.zeros(4))
    dx, dg, db = layernorm_backward(np.ones_like(y), cache)
    assert dx is not None and dg is None and db is None


def test_layernorm_wrong_width_is_a_clear_error():
    """An input whose last axis is not len(g) raises a ValueError naming the layer and shapes."""
    with pytest.raises(ValueError, match=r"ln1: expected input with trailing size 4.*\(2, 5\)"):
        layernorm_forward(np.zeros((2, 5)), np.ones(4), np.zeros(4), name="ln1")
