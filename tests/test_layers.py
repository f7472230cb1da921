"""The layers' backward passes are the derivatives of their forwards (finite differences),
and the LoRA path is computed the cheap way."""

import math

import numpy as np
import pytest

from tinylora import layers
from tinylora.gradcheck import TOLERANCE, catalogue


@pytest.mark.parametrize("case", [catalogue.case_linear, catalogue.case_lora_linear,
                                  catalogue.case_relu, catalogue.case_gelu, catalogue.case_mse,
                                  catalogue.case_cross_entropy],
                         ids=lambda c: c.__name__.removeprefix("case_"))
def test_layer_backward_matches_finite_differences(case):
    """Every gradient of every layer agrees with centred differences in float64 (<= 1e-7)."""
    for r in case(np):
        assert r.max_rel_error <= TOLERANCE, r.line()


def test_stacked_lora_linear_backward_matches_finite_differences():
    """With a stack of models sharing one input, dA and dB are per model and dx sums them."""
    for r in catalogue.case_lora_linear(np, stacked=True):
        assert r.ok, r.line()


class _Spy(np.ndarray):
    """An ndarray that records the shapes of every matmul it takes part in."""

    log: list = []

    def __matmul__(self, other):
        _Spy.log.append((self.shape, np.shape(other)))
        return np.asarray(self) @ np.asarray(other)

    def __rmatmul__(self, other):
        _Spy.log.append((np.shape(other), self.shape))
        return np.asarray(other) @ np.asarray(self)


def test_lora_linear_never_forms_the_dense_update():
    """Forward and backward never compute A @ B (d_in x d_out): only products through rank r."""
    rng = np.random.default_rng(0)
    d_in, r, d_out = 6, 2, 5
    A = rng.standard_normal((d_in, r)).view(_Spy)
    B = rng.standard_normal((r, d_out)).view(_Spy)
    x, W = rng.standard_normal((4, d_in)), rng.standard_normal((d_in, d_out))
    _Spy.log = []
    y, cache = layers.lora_linear_forward(x, W, None, A, B, 2.0)
    layers.lora_linear_backward(np.ones_like(np.asarray(y)), cache)
    assert _Spy.log, "the spy saw no product at all"
    assert ((d_in, r), (r, d_out)) not in _Spy.log


def test_lora_linear_frozen_weight_gets_no_gradient_unless_asked():
    """A frozen W gets None, not a zero array: no gradient is computed and no buffer allocated."""
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    A, B = rng.standard_normal((4, 2)), rng.standard_normal((2, 5))
    y, cache = layers.lora_linear_forward(x, W, None, A, B, 1.0)
    dx, dW, db, dA, dB = layers.lora_linear_backward(np.ones_like(y), cache)
    assert dW is None and db is None
    assert dA.shape == A.shape and dB.shape == B.shape and dx.shape == x.shape


def test_wrong_input_width_names_the_layer():
    """A forward input of the wrong trailing size says which layer, what it expected, what came."""
    expected = r"fc2: expected input with trailing size 4.*got shape \(3, 7\)"
    with pytest.raises(ValueError, match=expected):
        layers.linear_forward(np.ones((3, 7)), np.ones((4, 2)), name="fc2")


def test_unknown_activation_lists_the_valid_ones():
    """Only relu and gelu exist; a typo lists them."""
    expected = r"activation: expected one of \['gelu', 'relu'\], got 'tanh'"
    with pytest.raises(ValueError, match=expected):
        layers.activation("tanh")


def test_softmax_rows_are_probabilities_even_for_huge_logits():
    """The max-shift keeps softmax finite for logits of size 1000 (a naive exp overflows)."""
    p = layers.softmax(np.array([[1000.0, 0.0, -1000.0], [3.0, 3.0, 3.0]]))
    assert np.all(p >= 0) and np.allclose(p.sum(-1), 1.0)
    assert np.isclose(p[1, 0], 1 / 3)


def test_cross_entropy_of_uniform_logits_is_log_vocab():
    """With all logits equal every class has probability 1/V, so the loss is log V."""
    loss, _ = layers.cross_entropy_forward(np.zeros((2, 3, 7)), np.array([[0, 1, 2], [3, 4, 6]]))
    assert np.isclose(loss, np.log(7))


def test_cross_entropy_rejects_targets_out_of_range():
    """A target id >= V is a clear error, not an index error deep inside."""
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 4\)"):
        layers.cross_entropy_forward(np.zeros((2, 4)), np.array([1, 4]))


def test_gelu_backward_fast_path_equals_its_equation():
    """The in-place gelu gradient is the docstring's expression, to round-off (float64)."""
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((4, 7)) * 3, rng.standard_normal((4, 7))
    _, (x_c, t) = layers.gelu_forward(x)
    c, k = math.sqrt(2 / math.pi), 0.044715
    expected = dy * ((1 + t) / 2 + x / 2 * (1 - t**2) * c * (1 + 3 * k * x**2))
    np.testing.assert_allclose(layers.gelu_backward(dy, (x_c, t)), expected, rtol=1e-13,
                               atol=1e-15)
