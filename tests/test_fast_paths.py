"""Every fast twin (`tinylora.fast`) computes what its reference (`tinylora/`) computes.

Each case runs a reference and its twin on the same fresh inputs, at the shapes the commands use
(the benchmark's MLP and block steps, the lab's stacked grids, a TinyLM fine-tuning batch) and at
small odd ones, and compares every output: forward, cache-fed backward, in-place updates, errors.
The speed of the twins is the benchmark's business (`tinylora bench`), never a test's.
"""

import math
import types
import warnings

import numpy as np
import pytest

import tinylora
import tinylora.fast
from tinylora import attention, layers, norms, optim, twins, validate
from tinylora.fast import attention as fast_attention
from tinylora.fast import blocking
from tinylora.fast import optim as fast_optim
from tinylora.fast import validate as fast_validate


def _rng(seed):
    return np.random.default_rng(seed)


def _randn(rng, shape, dtype, std=1.0):
    return (rng.standard_normal(shape) * std).astype(dtype)


# --------------------------------------------------------------------------------------------
# The cases: case(pick, setting, dtype) -> a list of outputs; pick(f) is f's reference or twin


def case_linear(pick, setting, dtype):
    """(x shape, d_out): the MLP's hidden layer, the block's fc1, a width-1 readout."""
    x_shape, d_out = setting
    rng = _rng(1)
    x, W = _randn(rng, x_shape, dtype), _randn(rng, (x_shape[-1], d_out), dtype, 0.1)
    b, dy = _randn(rng, d_out, dtype), _randn(rng, (*x_shape[:-1], d_out), dtype)
    y, cache = pick(layers.linear_forward)(x, W, b)
    return [y, *pick(layers.linear_backward)(dy, cache, need_dW=True, need_db=True)]


def case_lora_linear(pick, setting, dtype):
    """(x shape, d_out, r, stack, dropout): the MLP at batch 1024, the block's fc1, a rank-1
    LoRA, the lab's grid (a stack of 16 models sharing x), LoRA dropout."""
    x_shape, d_out, r, stack, dropout = setting
    rng = _rng(2)
    d_in = x_shape[-1]
    x, W = _randn(rng, x_shape, dtype), _randn(rng, (d_in, d_out), dtype, d_in**-0.5)
    b = _randn(rng, d_out, dtype)
    A, B = _randn(rng, (*stack, d_in, r), dtype, 0.3), _randn(rng, (*stack, r, d_out), dtype)
    mask = (rng.random(x_shape) > 0.3).astype(dtype) / 0.7 if dropout else None
    dy = _randn(rng, (*stack, *x_shape[:-1], d_out), dtype)
    y, cache = pick(layers.lora_linear_forward)(x, W, b, A, B, 0.5, mask=mask)
    frozen_grads = not stack  # a stack of models shares (and never trains) W and b
    return [y, *pick(layers.lora_linear_backward)(dy, cache, need_dW=frozen_grads,
                                                  need_db=frozen_grads)]


def case_gelu(pick, shape, dtype):
    rng = _rng(3)
    x, dy = _randn(rng, shape, dtype, 3.0), _randn(rng, shape, dtype)
    y, cache = pick(layers.gelu_forward)(x)
    return [y, pick(layers.gelu_backward)(dy, cache)]


def case_mse(pick, setting, dtype):
    """(pred shape, stack_ndim): one model's readout, the grid's stack of 16."""
    shape, stack_ndim = setting
    rng = _rng(4)
    pred, y = _randn(rng, shape, dtype), _randn(rng, shape[stack_ndim:], dtype)
    loss, cache = pick(layers.mse_forward)(pred, y, stack_ndim)
    return [np.asarray(loss), layers.mse_backward(np.ones_like(loss) if stack_ndim else 1.0,
                                                  cache)]


def case_layernorm(pick, shape, dtype):
    rng = _rng(5)
    x = _randn(rng, shape, dtype, 2.0) + 1
    g, b, dy = _randn(rng, shape[-1], dtype), _randn(rng, shape[-1], dtype), \
        _randn(rng, shape, dtype)
    y, cache = pick(norms.layernorm_forward)(x, g, b)
    return [y, *pick(norms.layernorm_backward)(dy, cache, need_dg=True, need_db=True)]


def case_attend(pick, setting, dtype):
    """((N, T, d), H): the block benchmark's batch, a small odd one."""
    (N, T, d), H = setting
    rng = _rng(6)
    q, k, v, dy = (_randn(rng, (N, T, d), dtype) for _ in range(4))
    y, cache = pick(attention.attend_forward)(q, k, v, H)
    return [y, cache.p, *pick(attention.attend_backward)(dy, cache)]


def case_adam(pick, setting, dtype):
    """(p shape, lr shape or None for a float): three steps, the moments updated in place."""
    shape, lr_shape = setting
    rng = _rng(7)
    p, m, v = _randn(rng, shape, dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)
    lr = 1e-2 if lr_shape is None else rng.uniform(1e-3, 1e-1, lr_shape).astype(dtype)
    for t in (1, 2, 3):
        pick(optim.adam_update)(p, _randn(rng, shape, dtype), m, v, lr, 0.9, 0.999, 1e-8, t)
    return [p, m, v]


def _outcome(f, *args):
    """What f returns, or the message of the ValueError it raises."""
    try:
        return f(*args)
    except ValueError as err:
        return f"ValueError: {err}"


def case_check_gradients(pick, bad, dtype):
    """Accepted gradients, and each kind of refusal with the same message."""
    params = {"fc1.A": np.zeros((4, 2), dtype), "fc1.B": np.zeros((2, 3), dtype)}
    grads = {k: np.ones_like(p) for k, p in params.items()}
    if bad == "nan":
        grads["fc1.B"][1, 1] = np.nan
    elif bad == "shape":
        grads["fc1.A"] = np.ones((2, 4), dtype)
    elif bad == "dtype":
        grads["fc1.A"] = np.ones((4, 2), int)
    elif bad == "keys":
        grads = {"fc1.A": grads["fc1.A"]}
    elif bad == "list":
        grads["fc1.B"] = [[1.0] * 3] * 2
    return [_outcome(pick(optim.check_gradients), grads, params)]


def _finite_cases():
    """Arrays with and without NaN/inf, of float32/float64/float16 and integers, contiguous or
    not, and finite ones whose squares (float32: above 1.8e19) or whose sum overflow."""
    base = _rng(20).standard_normal((6, 5))
    cases = []
    for dtype in (np.float64, np.float32, np.float16):
        for bad in (None, np.nan, np.inf, -np.inf):
            a = base.astype(dtype)
            if bad is not None:
                a[2, 3] = bad
            cases += [a, a.T, a[:, ::2]]
    return cases + [np.full((4, 4), 1e20, np.float32), np.full((4, 4), 3e38, np.float32),
                    np.full(3, 1e200), np.arange(6).reshape(2, 3)]


def case_finiteness(pick, _, dtype):
    """all_finite and finite_values on every array of `_finite_cases` (overflows included)."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checks warn of no overflow of their own
        for x in _finite_cases():
            out.append(pick(validate.all_finite)([np.zeros(3), x, np.ones((2, 2))]))
            for check in (validate.finite_values, validate.input_values):
                got = _outcome(pick(check), x, "x")
                out.append(got if isinstance(got, str) else got is x)
    return out


OPTIMIZER_CASES = {"adam": lambda p: optim.Adam(p, lr=0.1, weight_decay=0.01),
                   "adamw": lambda p: optim.AdamW(p, lr=0.1),
                   "sgd_momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                   "sgd": lambda p: optim.SGD(p, lr=0.1)}


def case_optimizer_step(pick, name, dtype):
    """Five steps of optimizer `name`, the third with a NaN in its last gradient, each followed
    by `settle` (where the twin reports): the same error, t, parameters and moments either way."""
    rng = _rng(9)
    params = {"fc1.A": _randn(rng, (6, 2), dtype), "fc1.B": _randn(rng, (2, 3), dtype)}
    opt = OPTIMIZER_CASES[name](params)
    out = []
    for t in range(5):
        grads = {k: _randn(rng, p.shape, dtype) for k, p in params.items()}
        if t == 2:
            grads["fc1.B"][1, 1] = np.nan
        said = _outcome(pick(optim.Optimizer.step), opt, grads)
        said = said or _outcome(pick(optim.Optimizer.settle), opt)
        out += [said, opt.t, *(a.copy() for a in params.values()),
                *(a.copy() for s in opt.state.values() for a in s.values())]
    return out


F64, F32 = np.float64, np.float32
CASES = {  # reference -> (case, settings); every twin is listed (a test checks it)
    "linear": (case_linear, [((1024, 128), 128), ((8, 128, 128), 512), ((256, 64), 1),
                             ((3, 5, 7), 4)]),
    "lora_linear": (case_lora_linear, [((1024, 128), 128, 8, (), False),
                                       ((8, 128, 128), 512, 8, (), False),
                                       ((64, 32), 32, 1, (), False),
                                       ((128, 64), 64, 4, (16,), False),
                                       ((2, 9, 5), 7, 3, (), True)]),
    "gelu": (case_gelu, [(8, 128, 512), (3, 5, 11)]),
    "mse": (case_mse, [((1024, 1), 0), ((16, 128, 1), 1), ((3, 4, 5), 0)]),
    "layernorm": (case_layernorm, [(8, 128, 128), (3, 200, 256), (2, 3, 5)]),
    "attend": (case_attend, [((8, 128, 128), 4), ((2, 5, 12), 3), ((16, 64, 64), 4)]),
    "adam_update": (case_adam, [((128, 8), None), ((16, 64, 4), (16, 1, 1))]),
    "check_gradients": (case_check_gradients, [None, "nan", "shape", "dtype", "keys", "list"]),
    "optimizer_step": (case_optimizer_step, list(OPTIMIZER_CASES)),
    "finiteness": (case_finiteness, [None]),
}
TOL = {F64: {"rtol": 1e-10, "atol": 1e-12}, F32: {"rtol": 2e-4, "atol": 2e-5}}


def _run(case, setting, dtype, fast: bool, seen=None):
    def pick(dispatch):
        if seen is not None:
            seen.add(dispatch)
        return dispatch.twin if fast else dispatch.reference
    return case(pick, setting, dtype)


def _compare(got, expected, dtype):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        if e is None or isinstance(e, (str, bool)):
            assert g == e
        else:
            scale = float(np.abs(np.asarray(e, dtype=float)).max()) or 1.0
            np.testing.assert_allclose(np.asarray(g, float), np.asarray(e, float),
                                       rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale)


PARAMS = [pytest.param(name, s, id=f"{name}-{i}") for name, (_, settings) in CASES.items()
          for i, s in enumerate(settings)]


@pytest.mark.parametrize("name, setting", PARAMS)
@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
def test_fast_twin_computes_what_its_reference_computes(name, setting, dtype):
    """On the same fresh inputs, the twin's every output (forward, backward from its own cache,
    in-place updates, the error it raises) equals the reference's, to float64's or float32's
    rounding."""
    case = CASES[name][0]
    _compare(_run(case, setting, dtype, fast=True), _run(case, setting, dtype, fast=False), dtype)


def test_every_twin_is_tested_and_names_its_reference():
    """Each reference marked @has_fast_twin has its twin installed by `tinylora.fast`, is
    exercised by a case above, and the twin's docstring opens by naming it."""
    seen = set()
    for case, settings in CASES.values():
        _run(case, settings[0], F64, fast=False, seen=seen)
    for d in twins.dispatchers():
        assert d.twin is not None, f"{d.__qualname__}: no twin installed"
        assert d in seen, f"{d.__module__}.{d.__qualname__}: no case in tests/test_fast_paths.py"
        ref = f"`{d.__module__}.{d.__qualname__}`"
        assert f"The reference is {ref}" in " ".join(d.twin.__doc__.split()), d.twin


def test_fast_mode_is_off_after_import_and_the_switch_restores_it():
    """`import tinylora` (and `import tinylora.fast`) leave the reference running; `enabled()`
    switches the twins on inside its block only, `enable`/`disable` until switched back."""
    assert not tinylora.fast.is_enabled()
    assert layers.gelu_forward.slot[0] is layers.gelu_forward.reference
    with tinylora.fast.enabled():
        assert tinylora.fast.is_enabled()
        assert layers.gelu_forward.slot[0] is layers.gelu_forward.twin
        with tinylora.fast.enabled(False):
            assert layers.gelu_forward.slot[0] is layers.gelu_forward.reference
        assert tinylora.fast.is_enabled()
    assert not tinylora.fast.is_enabled()
    tinylora.fast.enable()
    try:
        assert optim.adam_update.slot[0] is optim.adam_update.twin
    finally:
        tinylora.fast.disable()
    assert optim.adam_update.slot[0] is optim.adam_update.reference
    with pytest.raises(ValueError, match="fast: expected True or False, got 1"):
        twins.use(1)


def test_a_model_trains_to_the_same_losses_either_way():
    """Ten Adam steps of a LoRA MLP give the same losses with the reference and the twins."""
    from tinylora import Adam, LoRAMLP, train
    from tinylora.groups import loraplus_groups
    from tinylora.models import MLPConfig

    rng = _rng(8)
    x, y = rng.standard_normal((64, 6)), rng.standard_normal((64, 2))
    runs = []
    for fast in (False, True):
        model = LoRAMLP(MLPConfig(6, [16, 16], 2, activation="gelu"),
                        tinylora.LoRAConfig(r=2, init="zero_A"))
        params = model.trainable_params()
        opt = Adam(params, groups=loraplus_groups(params, lr=1e-2, lr_ratio=4.0))
        with tinylora.fast.enabled(fast):
            runs.append(train(model, opt, x, y, steps=10))
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# The pieces the twins are made of, at their edges


@pytest.mark.parametrize("block", [1, 7, 64, blocking.BLOCK])
def test_gelu_in_blocks_is_the_same_for_any_block_size(block):
    """gelu_in_blocks and gelu_grad_in_blocks give the reference's numbers whatever the block
    size (one row per block up to the whole array)."""
    rng = _rng(0)
    x, dy = rng.standard_normal((3, 5, 11)) * 3, rng.standard_normal((3, 5, 11))
    y_ref, (_, t_ref) = layers.gelu_forward.reference(x)
    y, t = blocking.gelu_in_blocks(x, block)
    np.testing.assert_allclose(t, t_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(blocking.gelu_grad_in_blocks(dy, x, t, block),
                               layers.gelu_backward.reference(dy, (x, t_ref)), rtol=1e-13,
                               atol=1e-15)


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


def test_row_dot_and_row_mean_equal_their_sums():
    """row_dot(a, b) = sum(a * b, -1) and row_mean(a) = mean(a, -1, keepdims)."""
    rng = _rng(7)
    a, b = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 3, 6))
    np.testing.assert_allclose(blocking.row_dot(a, b), (a * b).sum(-1), rtol=1e-14)
    np.testing.assert_allclose(blocking.row_mean(a), a.mean(-1, keepdims=True), rtol=1e-13,
                               atol=1e-15)


def test_row_blocks_cover_the_rows_in_order_and_are_one_block_off_the_host():
    """row_blocks tiles range(n) in order with blocks of about `block` numbers; on a GPU module
    (anything but NumPy) it is one block, so the blocked loops run the plain passes there."""
    blocks = blocking.row_blocks(10, 4, 8)
    assert [(b.start, b.stop) for b in blocks] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    gpu = types.SimpleNamespace(__name__="cupy")  # stands for the CuPy module
    assert blocking.row_blocks(10, 4, 8, gpu) == [slice(0, 10)]
    assert blocking.row_blocks(0, 4, 8, gpu) == [] and blocking.on_host(np)


def test_masked_softmax_in_blocks_equals_the_mask_then_softmax():
    """masked_softmax_in_blocks(s, c) is softmax(causal_mask(c s)), over several blocks of score
    matrices."""
    s = _rng(13).standard_normal((3, 4, 150, 150)) * 3  # 12 matrices of 22500 numbers: 4 blocks
    expected = attention.softmax_forward(attention.causal_mask_forward(0.3 * s))
    np.testing.assert_allclose(fast_attention.masked_softmax_in_blocks(s.copy(), 0.3), expected,
                               rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_softmax_without_the_shift_equals_the_shifted_one_and_large_scores_keep_it(scale):
    """With a bound on |c s| that exp survives, the unshifted masked softmax equals the plain
    one; scores too large for that (scale 40: |c s| up to ~1000) keep the shift, and stay exact."""
    rng = _rng(14)
    qh, kh = (rng.standard_normal((2, 3, 9, 8)) * scale for _ in range(2))
    c = 1 / math.sqrt(8)
    s = qh @ kh.swapaxes(-1, -2)
    bound = fast_attention.score_bound(qh, kh, c)
    assert bound >= np.abs(c * s).max()
    expected = attention.softmax_forward(attention.causal_mask_forward(c * s))
    got = fast_attention.masked_softmax_in_blocks(s.copy(), c, bound)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    p32 = fast_attention.masked_softmax_in_blocks(s.astype(np.float32), c, bound)
    assert np.isfinite(p32).all()  # 80 is float32's limit: no overflow, no all-zero row
    np.testing.assert_allclose(p32.sum(-1), 1.0, rtol=1e-5)
    if scale == 1.0:
        np.testing.assert_allclose(p32, expected, rtol=1e-4, atol=1e-7)


def test_total_of_is_not_finite_whenever_a_value_is_not():
    """total_of (x . x for a contiguous float32/64 NumPy array, else x.sum()) is non-finite for
    every array with a NaN or inf (the fast finiteness checks rest on this)."""
    for x in _finite_cases():
        if not np.isfinite(x).all():
            with np.errstate(over="ignore"):
                assert not np.isfinite(fast_validate.total_of(x))


def test_mse_target_checked_by_the_loss_refuses_what_the_reference_refuses():
    """The fast MSE reads y's finiteness off the loss: a NaN or inf in y is refused with the
    reference's own message, and a prediction too large for a finite loss, with a finite y,
    gives an inf loss, not an error, as the reference does."""
    rng = _rng(21)
    pred, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for bad in (np.nan, np.inf, -np.inf):
        y_bad = y.copy()
        y_bad[1, 2] = bad
        for forward in (layers.mse_forward.reference, layers.mse_forward.twin):
            with pytest.raises(ValueError, match=r"mse: target y: expected finite values, got 1"):
                forward(pred, y_bad)
            with pytest.raises(ValueError, match=r"mse: target y: expected finite values, got 1"):
                forward(np.stack([pred, pred]), y_bad, stack_ndim=1)
    with np.errstate(over="ignore"):  # finite y, squares that overflow: an inf loss
        for forward in (layers.mse_forward.reference, layers.mse_forward.twin):
            assert forward(np.full((4, 3), 1e200), y)[0] == np.inf


def test_regression_target_shortcut_accepts_exactly_what_the_full_check_accepts():
    """The fast MSE's shape check (y of pred's array type and of one of its two shapes, real,
    non-empty) lets through only targets that the reference's check, values aside, accepts."""
    pred = np.zeros((3, 4, 2))
    cases = [np.ones((4, 2)), np.ones((3, 4, 2)), np.ones((4, 2), int), np.ones((2, 4)),
             np.ones((4, 1)), np.ones((4, 2), bool), np.ones((4, 2), complex), np.ones((0, 2)),
             np.ones((4, 2)).T.T, [[1.0, 2.0]] * 4, np.float64(1.0)]
    for y in cases:
        full = _outcome(validate.regression_target, pred, y, 1, False)
        fast = _outcome(fast_validate.regression_target_shape, pred, y, 1)
        assert (full is y) == (fast is y), y


def test_same_kind_shortcut_equals_the_general_form():
    """The fast gradient check's shortcut for a gradient of its parameter's array type gives the
    answer of the full test: a real floating array of the parameter's exact shape."""
    p = np.zeros((3, 2), np.float32)

    def general(g):
        return (hasattr(g, "dtype") and hasattr(g, "shape") and g.dtype.kind == "f"
                and tuple(g.shape) == tuple(p.shape) and type(g).__module__ == "numpy")

    cases = [np.ones((3, 2)), np.ones((3, 2), np.float16), np.ones((2, 3)), np.ones((3, 2, 1)),
             np.ones((3, 2), int), np.ones((3, 2), complex), np.ones(6), [[1.0] * 2] * 3, 1.0,
             np.ones((3, 2)).T.T, np.ones((6, 2))[::2]]
    for g in cases:
        assert fast_optim._same_kind(g, p) == general(g), g
