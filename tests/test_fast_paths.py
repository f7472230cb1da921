"""Every fast path of the block step equals the plain equation in its docstring (float64).

The speed of these paths is the benchmark's business (`tinylora bench --profile`); here each one
is checked against the expression it replaces, on shapes that span several cache blocks."""

import math
import types
import warnings

import numpy as np
import pytest

from tinylora import attention, layers, norms, optim, validate
from tinylora.fast import blocking

C, K = math.sqrt(2 / math.pi), 0.044715


def _rng(seed):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("block", [1, 7, 64, blocking.BLOCK])
def test_gelu_in_blocks_equals_the_tanh_expression(block):
    """gelu_in_blocks gives x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))) and that tanh, for any
    block size (one row per block up to the whole array)."""
    x = _rng(0).standard_normal((3, 5, 11)) * 3
    t = np.tanh(C * (x + K * x**3))
    y, t_fast = blocking.gelu_in_blocks(x, block)
    np.testing.assert_allclose(t_fast, t, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(y, 0.5 * x * (1 + t), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("block", [1, 7, blocking.BLOCK])
def test_gelu_grad_in_blocks_equals_its_expression(block):
    """gelu_grad_in_blocks gives dy ((1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3K x^2))."""
    rng = _rng(1)
    x, dy = rng.standard_normal((4, 6, 9)) * 3, rng.standard_normal((4, 6, 9))
    t = np.tanh(C * (x + K * x**3))
    expected = dy * ((1 + t) / 2 + x / 2 * (1 - t**2) * C * (1 + 3 * K * x**2))
    np.testing.assert_allclose(blocking.gelu_grad_in_blocks(dy, x, t, block), expected,
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("block", [24, blocking.BLOCK])
@pytest.mark.parametrize("with_bias", [True, False])
def test_add_product_in_blocks_equals_y_plus_u_b_plus_bias(with_bias, block):
    """add_product_in_blocks(y, u, B, b) is y + u @ B + b, written into y, over many blocks or
    in one (the whole array within a block: no loop)."""
    rng = _rng(2)
    y, u = rng.standard_normal((5, 7, 12)), rng.standard_normal((5, 7, 3))
    B = rng.standard_normal((3, 12))
    b = rng.standard_normal(12) if with_bias else None
    expected = y + u @ B + (b if with_bias else 0.0)
    out = blocking.add_product_in_blocks(y, u, B, b, block=block)
    assert out is y
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-14)


def test_add_product_applies_only_to_one_model_of_rank_above_one():
    """The blocked sum is used for an unstacked B with r > 1 on contiguous rows, else not."""
    y, u = np.zeros((4, 6)), np.zeros((4, 2))
    assert blocking.can_add_product(y, u, np.zeros((2, 6)))
    assert not blocking.can_add_product(y, u[:, :1], np.zeros((1, 6)))  # rank 1: outer product
    assert not blocking.can_add_product(np.zeros((3, 4, 6)), np.zeros((3, 4, 2)),
                                        np.zeros((3, 2, 6)))  # a stack of models
    assert not blocking.can_add_product(np.zeros((6, 4)).T, u, np.zeros((2, 6)))


def test_flattened_matmul_equals_the_batched_product():
    """_mm of a contiguous (N, T, k) and a (k, m) matrix, as one (N T, k) GEMM, equals a @ b."""
    rng = _rng(3)
    a, b = rng.standard_normal((3, 5, 4)), rng.standard_normal((4, 6))
    np.testing.assert_allclose(layers._mm(a, b), a @ b, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(layers._mm(a.swapaxes(0, 1), b), a.swapaxes(0, 1) @ b,
                               rtol=1e-14, atol=1e-15)  # a view: the plain product


def test_lora_linear_fast_forward_and_backward_equal_the_plain_forms():
    """With the blocked sums, y = x W + b + s (x A) B and dx = dy W^T + s (dy B^T) A^T."""
    rng = _rng(4)
    x, W, b = rng.standard_normal((2, 9, 5)), rng.standard_normal((5, 7)), rng.standard_normal(7)
    A, B, s = rng.standard_normal((5, 3)), rng.standard_normal((3, 7)), 0.5
    dy = rng.standard_normal((2, 9, 7))
    y, cache = layers.lora_linear_forward(x, W, b, A, B, s)
    np.testing.assert_allclose(y, x @ W + b + s * (x @ A) @ B, rtol=1e-13, atol=1e-14)
    dx, *_ = layers.lora_linear_backward(dy, cache)
    np.testing.assert_allclose(dx, dy @ W.T + s * (dy @ B.T) @ A.T, rtol=1e-13, atol=1e-14)


def test_mse_as_a_dot_equals_the_mean_of_squares():
    """The one-model MSE (a dot of the flat difference) is mean((pred - y)^2)."""
    rng = _rng(5)
    pred, y = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    loss, _ = layers.mse_forward(pred, y)
    np.testing.assert_allclose(loss, ((pred - y) ** 2).mean(), rtol=1e-14)


def test_layernorm_in_blocks_equals_the_plain_lines():
    """Forward and dx of the blocked layer norm equal the module docstring's lines, on an array
    of several blocks."""
    rng = _rng(6)
    x = rng.standard_normal((3, 200, 256)) * 2 + 1  # 153600 numbers: three blocks
    g, b, dy = rng.standard_normal(256), rng.standard_normal(256), rng.standard_normal(x.shape)
    mean = x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + norms.EPS)
    xhat = (x - mean) * rstd
    y, cache = norms.layernorm_forward(x, g, b)
    np.testing.assert_allclose(y, xhat * g + b, rtol=1e-12, atol=1e-12)
    dxhat = dy * g
    expected = rstd * (dxhat - dxhat.mean(-1, keepdims=True)
                       - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    dx, _, _ = norms.layernorm_backward(dy, cache)
    np.testing.assert_allclose(dx, expected, rtol=1e-11, atol=1e-12)


def test_row_dot_and_row_mean_equal_their_sums():
    """row_dot(a, b) = sum(a * b, -1) and row_mean(a) = mean(a, -1, keepdims)."""
    rng = _rng(7)
    a, b = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 3, 6))
    np.testing.assert_allclose(blocking.row_dot(a, b), (a * b).sum(-1), rtol=1e-14)
    np.testing.assert_allclose(blocking.row_mean(a), a.mean(-1, keepdims=True), rtol=1e-13,
                               atol=1e-15)


def _heads(seed, N=2, H=3, T=5, dh=4):
    rng = _rng(seed)
    return [rng.standard_normal((N, H, T, dh)) for _ in range(3)]


def test_matmul_merged_equals_merge_heads_of_the_product():
    """matmul_merged(a, b) writes exactly merge_heads(a @ b), (N, T, H dh) rows."""
    qh, kh, _ = _heads(8)
    s = qh @ kh.swapaxes(-1, -2)
    np.testing.assert_allclose(attention.matmul_merged(s, kh), attention.merge_heads(s @ kh),
                               rtol=1e-14, atol=1e-14)


def test_softmax_in_place_equals_exp_over_sum():
    """softmax_forward (in place on s) is exp(s) / sum(exp(s)) row by row, masked entries 0."""
    qh, kh, _ = _heads(9)
    s = attention.causal_mask_forward(qh @ kh.swapaxes(-1, -2))
    expected = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    np.testing.assert_allclose(attention.softmax_forward(s.copy()), expected, rtol=1e-13)


def test_softmax_backward_from_output_equals_the_jacobian_form():
    """With dp = dyh vh^T and yh = p vh, p (dp - rowdot(dyh, yh)) is softmax_backward(dp, p)."""
    qh, kh, vh = _heads(10)
    p = attention.softmax_forward(attention.causal_mask_forward(qh @ kh.swapaxes(-1, -2)))
    dyh = _rng(11).standard_normal(vh.shape)
    dp = dyh @ vh.swapaxes(-1, -2)
    expected = attention.softmax_backward(dp, p)
    np.testing.assert_allclose(attention.softmax_backward_from_output(dp.copy(), p, dyh, p @ vh),
                               expected, rtol=1e-12, atol=1e-14)


def test_attend_backward_equals_the_plain_steps():
    """attend_backward (merged products, row sums from the output) equals the chain of
    weighted_sum_backward, softmax_backward and scores_backward, merged."""
    n_head, rng = 3, _rng(12)
    q, k, v, dy = (rng.standard_normal((2, 5, 12)) for _ in range(4))
    _, cache = attention.attend_forward(q, k, v, n_head)
    qh, kh, vh = (attention.split_heads(a, n_head) for a in (q, k, v))
    s, c_scores = attention.scores_forward(qh, kh)
    p = attention.softmax_forward(attention.causal_mask_forward(s))
    dp, dvh = attention.weighted_sum_backward(attention.split_heads(dy, n_head), (p, vh))
    dqh, dkh = attention.scores_backward(attention.softmax_backward(dp, p), c_scores)
    for fast, plain in zip(attention.attend_backward(dy, cache), (dqh, dkh, dvh)):
        np.testing.assert_allclose(fast, attention.merge_heads(plain), rtol=1e-11, atol=1e-13)


def test_masked_softmax_in_blocks_equals_the_mask_then_softmax():
    """masked_softmax_in_blocks(s, c) is softmax_forward(causal_mask_forward(c s)), over several
    blocks of score matrices."""
    rng = _rng(13)
    s = rng.standard_normal((3, 4, 150, 150)) * 3  # 12 matrices of 22500 numbers: 4 blocks
    expected = attention.softmax_forward(attention.causal_mask_forward(0.3 * s))
    np.testing.assert_allclose(attention.masked_softmax_in_blocks(s.copy(), 0.3), expected,
                               rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_softmax_without_the_shift_equals_the_shifted_one_and_large_scores_keep_it(scale):
    """With a bound on |c s| that exp survives, the unshifted masked softmax equals the plain
    one; scores too large for that (scale 40: |c s| up to ~1000) keep the shift, and stay exact."""
    qh, kh, _ = _heads(14, T=9, dh=8)
    qh, kh = qh * scale, kh * scale
    c = 1 / math.sqrt(8)
    s = qh @ kh.swapaxes(-1, -2)
    bound = attention.score_bound(qh, kh, c)
    assert bound >= np.abs(c * s).max()
    expected = attention.softmax_forward(attention.causal_mask_forward(c * s))
    got = attention.masked_softmax_in_blocks(s.copy(), c, bound)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    p32 = attention.masked_softmax_in_blocks(s.astype(np.float32), c, bound)  # 80 is float32's
    assert np.isfinite(p32).all()  # limit: no overflow and no all-zero row either way
    np.testing.assert_allclose(p32.sum(-1), 1.0, rtol=1e-5)
    if scale == 1.0:
        np.testing.assert_allclose(p32, expected, rtol=1e-4, atol=1e-7)


def test_row_blocks_cover_the_rows_in_order_and_are_one_block_off_the_host():
    """row_blocks tiles range(n) in order with blocks of about `block` numbers; on a GPU module
    (anything but NumPy) it is one block, so the blocked loops run the plain passes there."""
    blocks = blocking.row_blocks(10, 4, 8)
    assert [(b.start, b.stop) for b in blocks] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    gpu = types.SimpleNamespace(__name__="cupy")  # stands for the CuPy module
    assert blocking.row_blocks(10, 4, 8, gpu) == [slice(0, 10)]
    assert blocking.row_blocks(0, 4, 8, gpu) == [] and blocking.on_host(np)


def _finite_cases():
    """Arrays with and without NaN/inf, of float32/float64/float16 and integers, contiguous or
    not, and finite ones whose squares (float32: above 1.8e19) or whose sum overflow."""
    rng = _rng(20)
    base = rng.standard_normal((6, 5))
    cases = []
    for dtype in (np.float64, np.float32, np.float16):
        for bad in (None, np.nan, np.inf, -np.inf):
            a = base.astype(dtype)
            if bad is not None:
                a[2, 3] = bad
            cases += [a, a.T, a[:, ::2]]
    cases += [np.full((4, 4), 1e20, np.float32), np.full((4, 4), 3e38, np.float32),
              np.full(3, 1e200), np.arange(6).reshape(2, 3)]
    return cases


def test_total_of_is_finite_exactly_when_the_sum_is():
    """total_of (x . x for a contiguous float32/64 NumPy array, else x.sum()) is non-finite for
    every array with a NaN or inf; finite_values and all_finite, built on it, accept an array
    exactly when np.isfinite(x).all(), squares or sums that overflow included."""
    for x in _finite_cases():
        ok = bool(np.isfinite(x).all())
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the checks warn of no overflow of their own
            if not ok:
                with np.errstate(over="ignore"):
                    assert not np.isfinite(validate.total_of(x)) and not np.isfinite(x.sum())
            assert validate.all_finite([x]) == ok
            assert validate.all_finite([np.zeros(3), x, np.ones((2, 2))]) == ok
            if ok:
                assert validate.finite_values(x, "x") is x
            else:
                with pytest.raises(ValueError, match="x: expected finite values, got 1 NaN"):
                    validate.finite_values(x, "x")


def test_mse_target_checked_by_the_loss_equals_the_check_of_its_values():
    """A finite MSE proves its target finite (finite_by_loss); a NaN or inf in y is refused
    with the check's own message, and a prediction too large for a finite loss, with a finite
    y, gives an inf loss, not an error: the same as checking y's values first."""
    rng = _rng(21)
    pred, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for bad in (np.nan, np.inf, -np.inf):
        y_bad = y.copy()
        y_bad[1, 2] = bad
        with pytest.raises(ValueError, match=r"mse: target y: expected finite values, got 1"):
            validate.finite_values(y_bad, "mse: target y")
        with pytest.raises(ValueError, match=r"mse: target y: expected finite values, got 1"):
            layers.mse_forward(pred, y_bad)
        with pytest.raises(ValueError, match=r"mse: target y: expected finite values, got 1"):
            layers.mse_forward(np.stack([pred, pred]), y_bad, stack_ndim=1)
    with np.errstate(over="ignore"):  # finite y, squares that overflow: an inf loss
        loss, _ = layers.mse_forward(np.full((4, 3), 1e200), y)
    assert loss == np.inf
    assert validate.finite_by_loss(np.float64(np.nan), y, "y") is not None  # y itself is fine


def test_same_kind_fast_path_equals_the_general_form():
    """_same_kind's shortcut for a gradient of its parameter's array type gives the answer of
    the full test: a real floating array of the parameter's exact shape on its backend."""
    p = np.zeros((3, 2), np.float32)

    def general(g):
        return (hasattr(g, "dtype") and hasattr(g, "shape") and g.dtype.kind == "f"
                and tuple(g.shape) == tuple(p.shape) and type(g).__module__ == "numpy")

    cases = [np.ones((3, 2)), np.ones((3, 2), np.float16), np.ones((2, 3)), np.ones((3, 2, 1)),
             np.ones((3, 2), int), np.ones((3, 2), complex), np.ones(6), [[1.0] * 2] * 3, 1.0,
             np.ones((3, 2)).T.T, np.ones((6, 2))[::2]]
    for g in cases:
        assert optim._same_kind(g, p) == general(g), g



def test_regression_target_shortcut_accepts_exactly_what_the_full_check_accepts():
    """regression_target's shortcut (y of pred's array type and of one of its two shapes, real,
    non-empty) lets through only targets that the full check, values aside, accepts."""
    pred = np.zeros((3, 4, 2))
    cases = [np.ones((4, 2)), np.ones((3, 4, 2)), np.ones((4, 2), int), np.ones((2, 4)),
             np.ones((4, 1)), np.ones((4, 2), bool), np.ones((4, 2), complex), np.ones((0, 2)),
             np.ones((4, 2)).T.T, [[1.0, 2.0]] * 4, np.float64(1.0)]
    for y in cases:
        try:
            full = validate.regression_target(pred, y, 1) is y
        except ValueError:
            full = False
        try:
            fast = validate.regression_target(pred, y, 1, finite=False) is y
        except ValueError:
            fast = False
        assert fast == full, y
