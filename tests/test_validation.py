"""Every bad input is a clear error: it names the argument, what was expected and what came.

Nothing is accepted silently (no broadcasting, no complex numbers, no truncated floats), nothing
fails deep inside NumPy, and the legitimate inputs that look unusual (NumPy scalars where Python
numbers go) are accepted. The checks live in one place per kind of input (`tinylora.validate`).
"""

import numpy as np
import pytest

from tinylora import LoRAMLP, MLPConfig, validate
from tinylora.block import BlockConfig, TransformerBlock
from tinylora.groups import loraplus_groups
from tinylora.layers import cross_entropy_forward, mse_forward
from tinylora.lora import LoRAConfig
from tinylora.optim import SGD, Adam, AdamW
from tinylora.train import train
from tinylora.transformer import LMConfig, TinyLM
from tinylora.validate import all_finite

SMALL_LM = LMConfig(11, d_model=8, n_head=2, n_layer=1, context=8)


def mlp(config=None, lora=None, **kwargs):
    """LoRAMLP 6 -> 8 -> 3 with LoRA of rank 2 unless told otherwise; `kwargs` go to it."""
    return LoRAMLP(config or MLPConfig(6, 8, 3), lora or LoRAConfig(r=2), **kwargs)


def params():
    return {"a": np.ones((4, 2)), "b": np.ones(3)}


# --------------------------------------------------------------------------------------------
# The messages: argument, expected, received


@pytest.mark.parametrize("call, message", [
    (lambda: validate.positive("1e-3", "lr"),
     r"lr: expected a finite number > 0, got '1e-3' \(str\)"),
    (lambda: validate.positive_int(2.5, "steps"),
     r"steps: expected a positive integer, got 2.5 \(float\)"),
    (lambda: validate.positive_int(True, "steps"), r"steps: expected a positive integer, got True"),
    (lambda: validate.number(1.0, "momentum", low=0, low_ok=True, high=1),
     r"momentum: expected a finite number in \[0, 1\), got 1.0 \(float\)"),
    (lambda: validate.names(["q", 3], "targets", ("q", "k")),
     r"targets: \[3\] are not valid names"),
])
def test_validate_messages_name_the_argument_the_expected_and_the_received(call, message):
    """Each helper's error reads '<argument>: expected <what>, got <value> (<type>)'."""
    with pytest.raises(ValueError, match=message):
        call()


def test_integer_inputs_and_targets_are_accepted():
    """Integer x and y are real numbers: the MLP and the MSE take them as they took them before."""
    out, _ = mlp().forward(np.ones((2, 6), dtype=int))
    assert out.shape == (2, 3) and float(mse_forward(out, np.zeros((2, 3), dtype=int))[0]) >= 0


def test_an_optimizer_refuses_parameters_it_cannot_update_in_place():
    """A list is not an array: refused when the optimizer is built, not at its first step."""
    with pytest.raises(ValueError, match=r"params\['a'\]: expected a float array"):
        Adam({"a": [1.0, 2.0]})


def test_numpy_scalars_are_accepted_where_python_numbers_are():
    """np.int64 ranks, widths and token counts and np.float32 weight decays are legitimate."""
    model = LoRAMLP(MLPConfig(np.int64(8), np.int64(16), np.int64(4)), LoRAConfig(r=np.int64(2)))
    assert model.lora.r == 2 and type(model.lora.r) is int and model.widths == (8, 16, 4)
    assert all(type(n) is int for n in model.widths)
    opt = AdamW(model.trainable_params(), weight_decay=np.float32(0.01), lr=np.float64(1e-3))
    assert opt.groups[0]["weight_decay"] == pytest.approx(0.01)
    assert isinstance(opt.groups[0]["lr"], float)  # no float32 run promoted by a NumPy scalar
    lm = TinyLM(SMALL_LM, LoRAConfig(r=2))
    assert len(lm.generate(np.array([1, 2]), n_new=np.int64(2))) == 4


# --------------------------------------------------------------------------------------------
# Models


@pytest.mark.parametrize("make, message", [
    (lambda: LoRAConfig(alpha="abc"), r"alpha: expected a finite number > 0, got 'abc' \(str\)"),
    (lambda: mlp(lora=LoRAConfig(targets=[])), None),
    (lambda: mlp(stack=3),
     r"stack: expected a tuple of positive integers such as \(3,\), got 3 \(int\)"),
    (lambda: mlp(stack=(0,)), r"stack: expected a positive integer, got 0"),
    (lambda: mlp(seed=-1), r"seed: expected an integer >= 0 \(or a numpy Generator\), got -1"),
    (lambda: mlp(MLPConfig(6, 8, 3, bias=True), biases=[np.zeros(8)]),
     r"biases: expected a list of 2 arrays"),
    (lambda: mlp(weights=[np.zeros((6, 8))]),
     r"weights: expected a list of 2 arrays, one per layer, got a list of 1 array$"),
    (lambda: mlp(biases=[np.zeros(8), np.zeros(3)]), r"biases: expected None when bias=False"),
    (lambda: mlp(weights=[np.zeros((6, 8)) + 1j, np.zeros((8, 3))]),
     r"weights\[0\]: expected a real array of shape \(6, 8\), got .*complex128"),
    (lambda: MLPConfig(6, {8}, 3), r"d_hidden: expected a positive integer or a list of them"),
    (lambda: LoRAConfig(rslora="yes"), r"rslora: expected True or False, got 'yes'"),
])
def test_bad_lora_mlp_arguments_are_clear_errors(make, message):
    """alpha='abc', stack=3, seed=-1, biases ignored by bias=False, weights/biases of the wrong
    length or complex: each names itself (targets=[] builds a model with nothing to train)."""
    if message is None:
        model = make()
        out, cache = model.forward(np.ones((2, 6)))
        assert model.trainable == () and model.backward(np.ones_like(out), cache) == {}
        return
    with pytest.raises(ValueError, match=message):
        make()


def test_a_single_target_name_is_one_layer_in_every_model():
    """targets='fc1' (LoRAMLP) and targets='q' (block, TinyLM) mean that layer, not its letters."""
    assert mlp(lora=LoRAConfig(r=2, targets="fc1")).targets == ("fc1",)
    assert TransformerBlock(BlockConfig(8, 2), LoRAConfig(r=2, targets="q")).targets == ("attn.q",)
    assert TinyLM(SMALL_LM, LoRAConfig(r=2, targets="fc1")).targets == ("blocks.0.mlp.fc1",)


@pytest.mark.parametrize("x, message", [
    ([[1.0] * 6], r"x: expected a real array of shape \(\.\.\., d_in=6\), got \[\[1\.0"),
    (np.zeros((0, 6)), r"x: expected .* with no axis of length 0, got numpy array of shape \(0,"),
    (np.zeros((2, 6)) + 1j, r"x: expected a real array .* dtype complex128"),
    (np.full((2, 6), np.nan), r"x: expected finite values, got 12 NaN or inf of 12"),
])
def test_bad_inputs_to_the_mlp_are_clear_errors(x, message):
    """A nested list, an empty batch, complex or NaN inputs: refused before any arithmetic."""
    with pytest.raises(ValueError, match=message):
        mlp().forward(x)


@pytest.mark.parametrize("x, message", [
    ([[[0.0] * 8]], r"x: expected a real array of shape \(N, T, d_model=8\), got \[\[\["),
    (np.zeros((2, 0, 8)), r"with no axis of length 0, got numpy array of shape \(2, 0, 8\)"),
])
def test_bad_inputs_to_the_block_are_clear_errors(x, message):
    """A nested list or an empty sequence (T = 0) for TransformerBlock.forward names x."""
    with pytest.raises(ValueError, match=message):
        TransformerBlock(BlockConfig(8, 2)).forward(x)


@pytest.mark.parametrize("call, message", [
    (lambda lm: lm.generate([0.5, 1.9], n_new=1), r"prompt: expected a non-empty 1-D array of "
                                                  r"integer token ids, got \[0\.5, 1\.9\]"),
    (lambda lm: lm.forward(np.zeros((0, 3), dtype=int)), r"tokens: expected a non-empty batch"),
    (lambda lm: lm.generate([1], n_new=-1), r"n_new: expected an integer >= 0, got -1"),
])
def test_bad_inputs_to_the_language_model_are_clear_errors(call, message):
    """Float prompt ids are refused (never truncated), as forward refuses them; so is N = 0."""
    with pytest.raises(ValueError, match=message):
        call(TinyLM(SMALL_LM, LoRAConfig(r=2)))


# --------------------------------------------------------------------------------------------
# Losses


@pytest.mark.parametrize("y, message", [
    (np.zeros(4), r"mse: target y: expected shape \(5, 4\) \(the prediction's, never broadcast\)"),
    (np.zeros((1, 4)), r"mse: target y: expected shape \(5, 4\)"),
    (np.full((5, 4), np.nan), r"mse: target y: expected finite values"),
    (np.zeros((5, 4), dtype=complex), r"mse: target y: expected a real array"),
])
def test_regression_targets_are_never_broadcast(y, message):
    """A target (4,) or (1, 4) for a prediction (5, 4) is refused, not broadcast into a loss."""
    with pytest.raises(ValueError, match=message):
        mse_forward(np.zeros((5, 4)), y)


@pytest.mark.parametrize("targets, message", [
    (np.array([0.0, 1.0, 2.0]), r"cross_entropy: targets: expected an integer array of shape "
                                r"\(3,\), got .*dtype float64"),
    (np.array([0, 7, -2]), r"targets must lie in \[0, 4\), got values in \[-2, 7\] "
                           r"\(outside: \[-2, 7\]\)"),
    (np.array([0, 1]), r"cross_entropy: targets: expected shape \(3,\)"),
])
def test_class_targets_show_what_is_wrong(targets, message):
    """Float or out-of-range class ids are refused, with the offending values shown."""
    with pytest.raises(ValueError, match=message):
        cross_entropy_forward(np.zeros((3, 4)), targets)


# --------------------------------------------------------------------------------------------
# Optimizers and train


@pytest.mark.parametrize("call, message", [
    (lambda: Adam(params(), lr="1e-3"),
     r"lr: expected a finite learning rate >= 0 .*, got '1e-3' \(str\)"),
    (lambda: Adam(params(), betas=(0.9,)),
     r"betas: expected two numbers \(beta1, beta2\) in \[0, 1\)"),
    (lambda: Adam(params(), betas=(0.9, 1.0)), r"betas\[1\]: expected a finite number in \[0, 1\)"),
    (lambda: Adam(params(), eps=0), r"eps: expected a finite number > 0, got 0"),
    (lambda: Adam(params(), groups=[{"lr": 1e-3}]),
     r"groups\[0\]: expected a dict with a 'params'"),
    (lambda: Adam(params(), groups=[{"params": "a"}]),
     r"groups\[0\]: expected a dict with a 'params'"),
    (lambda: SGD(params(), momentum=np.float32(1.5)),
     r"momentum: expected a finite number in \[0, 1\)"),
    (lambda: loraplus_groups(params(), lr=1e-3, lr_ratio="16"),
     r"lr_ratio: expected a finite number > 0"),
])
def test_bad_optimizer_arguments_are_clear_errors(call, message):
    """lr as a string, one beta, eps = 0 (0/0 where a gradient is exactly 0), a group without
    params: each names itself."""
    with pytest.raises(ValueError, match=message):
        call()


def test_eps_zero_would_make_the_first_init1_step_nan():
    """Why eps > 0: at Init[1] dA is exactly 0 at step 1, and 0 / (sqrt(0) + 0) is NaN."""
    g = np.zeros(3)
    with np.errstate(invalid="ignore"):
        step = g / (np.sqrt(g * g) + 0.0)
    assert np.isnan(step).all()
    p = {"A": np.ones(3)}
    Adam(p, lr=0.1).step({"A": g})
    assert np.array_equal(p["A"], np.ones(3))  # with eps > 0 a zero gradient moves nothing


@pytest.mark.parametrize("steps", [-1, 2.5, "3"])
def test_train_refuses_a_step_count_that_is_not_a_non_negative_integer(steps):
    """steps=-1 used to return [], steps=2.5 to fail in range(): both are clear errors now."""
    model = mlp()
    with pytest.raises(ValueError, match="steps: expected an integer >= 0"):
        train(model, Adam(model.trainable_params()), np.ones((4, 6)), np.ones((4, 3)), steps)


def test_train_with_zero_steps_is_an_empty_history_and_moves_nothing():
    """steps=0 is legitimate (a loop whose budget is zero): an empty History, no divergence,
    no optimizer step, the parameters untouched."""
    model = mlp()
    opt = Adam(model.trainable_params())
    before = {k: v.copy() for k, v in model.params.items()}
    history = train(model, opt, np.ones((4, 6)), np.ones((4, 3)), steps=0)
    assert history == [] and history.diverged_at is None and opt.t == 0
    assert all(np.array_equal(model.params[k], before[k]) for k in before)


def test_a_list_of_arrays_in_an_error_is_counted_not_printed():
    """An error about a list of arrays says how many were given, never their numbers."""
    with pytest.raises(ValueError) as err:
        mlp(weights=[np.ones((6, 8))])
    assert "[[" not in str(err.value) and str(err.value).endswith("got a list of 1 array")


def test_train_refuses_nan_data_instead_of_calling_it_a_divergence():
    """A NaN in x is an error naming x, never a history of inf that looks like a divergence."""
    model = mlp()
    x = np.ones((4, 6))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"x: expected finite values, got 1 NaN or inf of 24"):
        train(model, Adam(model.trainable_params()), x, np.ones((4, 3)), 3)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # the overflow is the point
def test_all_finite_sees_a_nan_and_forgives_an_overflowing_sum():
    """all_finite: False for one NaN among many arrays; True when only the sum overflows."""
    ok = [np.ones((3, 2)), np.full(4, 1e308)]  # finite, but their sum overflows to inf
    assert all_finite(ok) and all_finite([])
    assert not all_finite([np.ones(3), np.array([1.0, np.nan])])
