"""The LoRA MLP: the invariants that make LoRA what it is, and its gradients."""

import numpy as np
import pytest

from tinylora import BlockConfig, LMConfig, LoRAConfig, TinyLM, TransformerBlock
from tinylora.gradcheck import catalogue, randomize_lora
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import Adam
from tinylora.train import loss_and_grads, train

ONE_HIDDEN, TWO_HIDDEN = MLPConfig(6, 8, 3), MLPConfig(6, [8, 8], 3)  # 6 -> 8 (-> 8) -> 3
R2, FROZEN = LoRAConfig(r=2), LoRAConfig(targets=())  # LoRA (rank 2) on every layer; none


def _data(seed=0, n=16, d_in=6, d_out=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))


def test_mlp_backward_matches_finite_differences_in_every_configuration():
    """Both inits, both activations, bias on/off, rsLoRA on/off, and trainable='all': every
    tensor's gradient agrees with finite differences at a random non-zero B."""
    results = catalogue.case_mlp(np)
    assert len(results) > 50
    for r in results:
        assert r.ok, r.line()


@pytest.mark.parametrize("init", ["zero_B", "zero_A"])
def test_lora_starts_exactly_at_the_frozen_model(init):
    """Both inits make B A = 0, so before training the output is the frozen MLP's."""
    x, _ = _data()
    lora = LoRAMLP(TWO_HIDDEN, LoRAConfig(r=2, init=init), seed=3)
    frozen = LoRAMLP(TWO_HIDDEN, FROZEN, seed=3)
    assert np.array_equal(lora.params["fc1.W"], frozen.params["fc1.W"])
    np.testing.assert_allclose(lora.forward(x)[0], frozen.forward(x)[0], rtol=0, atol=1e-14)


def test_merged_weights_reproduce_the_lora_output():
    """W + scale * A @ B in a plain MLP gives the LoRA MLP's output: LoRA is a weight change."""
    x, _ = _data()
    lora = LoRAMLP(ONE_HIDDEN, LoRAConfig(r=2, alpha=5.0), seed=1)
    randomize_lora(lora, seed=2)
    merged = lora.merged_weights()
    plain = LoRAMLP(ONE_HIDDEN, FROZEN, weights=[merged["fc1"], merged["fc2"]])
    np.testing.assert_allclose(plain.forward(x)[0], lora.forward(x)[0], rtol=1e-12, atol=1e-12)


def test_frozen_weights_are_bit_identical_after_training():
    """Training moves A and B only: every frozen array is exactly as it was."""
    x, y = _data()
    model = LoRAMLP(MLPConfig(6, 8, 3, bias=True), R2, seed=1)
    frozen = {k: v.copy() for k, v in model.params.items() if k not in model.trainable}
    before = {k: model.params[k].copy() for k in model.trainable}
    train(model, Adam(model.trainable_params(), lr=1e-2), x, y, steps=5)
    assert all(np.array_equal(model.params[k], v) for k, v in frozen.items())
    assert any(not np.array_equal(model.params[k], v) for k, v in before.items())


def test_gradient_keys_equal_the_trainable_keys():
    """backward returns exactly one gradient per trainable array, nothing for frozen ones."""
    x, y = _data()
    for trainable in ("lora", "all", ["fc2.W", "fc1.A"]):
        model = LoRAMLP(MLPConfig(6, 8, 3, bias=True), R2, trainable=trainable, seed=1)
        _, grads = loss_and_grads(model, x, y)
        assert list(grads) == list(model.trainable)
        assert all(grads[k].shape == model.params[k].shape for k in grads)


def test_duplicating_the_batch_leaves_loss_and_gradients_unchanged():
    """The loss is a mean over the batch: two copies of the data are the same data."""
    x, y = _data()
    model = LoRAMLP(ONE_HIDDEN, R2, seed=1)
    randomize_lora(model, seed=5)
    loss1, g1 = loss_and_grads(model, x, y)
    loss2, g2 = loss_and_grads(model, np.concatenate([x, x]), np.concatenate([y, y]))
    assert np.isclose(loss1, loss2, rtol=1e-13)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-12, atol=1e-15)


def test_under_init1_dA_is_exactly_zero_at_the_first_step():
    """With B = 0, dA = x^T (dy B^T) scale = 0: only B moves at step 1. This is why the
    asymmetric init matters (and why a gradient check at init would miss any bug in dA)."""
    x, y = _data()
    model = LoRAMLP(TWO_HIDDEN, LoRAConfig(r=2, init="zero_B"), seed=1)
    _, grads = loss_and_grads(model, x, y)
    for t in model.targets:
        assert np.all(grads[f"{t}.A"] == 0.0)
    assert np.any(grads["fc3.B"] != 0.0)


def test_stacked_models_train_like_separate_models():
    """stack=(S,) trains S independent LoRA copies at once; each matches its solo twin."""
    x, y = _data()
    stacked = LoRAMLP(ONE_HIDDEN, R2, stack=(3,), seed=1)
    lrs = np.array([1e-3, 1e-2, 3e-2]).reshape(3, 1, 1)
    start = {k: v.copy() for k, v in stacked.trainable_params().items()}
    train(stacked, Adam(stacked.trainable_params(), lr=lrs), x, y, steps=4)
    for s in range(3):
        solo = LoRAMLP(ONE_HIDDEN, R2, seed=1)
        for k in start:
            solo.params[k][...] = start[k][s]
        train(solo, Adam(solo.trainable_params(), lr=float(lrs[s, 0, 0])), x, y, steps=4)
        for k in start:
            np.testing.assert_allclose(stacked.params[k][s], solo.params[k], rtol=1e-12, atol=1e-15)


def test_float32_runs_stay_float32():
    """No accidental promotion: a float32 model's outputs, gradients and updated
    parameters are float32 (Python-float learning rates and scales keep it so)."""
    x, y = (a.astype(np.float32) for a in _data())
    model = LoRAMLP(MLPConfig(6, 8, 3, activation="gelu"), R2, dtype="float32", seed=1)
    out, _ = model.forward(x)
    loss, grads = loss_and_grads(model, x, y)
    Adam(model.trainable_params(), lr=1e-3).step(grads)
    assert out.dtype == np.float32 and np.asarray(loss).dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(p.dtype == np.float32 for p in model.params.values())


def test_save_and_load_adapters_round_trip(tmp_path):
    """Adapters saved to .npz load back bit-identically into a fresh model."""
    a = LoRAMLP(ONE_HIDDEN, R2, seed=1)
    randomize_lora(a, seed=3)
    a.save(tmp_path / "ad.npz")
    b = LoRAMLP(ONE_HIDDEN, R2, seed=1)
    b.load(tmp_path / "ad.npz")
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_loading_mismatched_adapters_raises_and_changes_nothing(tmp_path):
    """A file saved by another LoRA setup is refused, naming each setting that differs (r and
    alpha; the targets), and the model is left exactly as it was."""
    LoRAMLP(ONE_HIDDEN, R2, seed=1).save(tmp_path / "r2.npz")
    LoRAMLP(ONE_HIDDEN, LoRAConfig(r=3, targets=["fc1"]), seed=1).save(tmp_path / "fc1.npz")
    model = LoRAMLP(ONE_HIDDEN, LoRAConfig(r=3), seed=1)
    randomize_lora(model, seed=4)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match=r"does not fit the model: lora.r is 2 in the file, 3 in "
                                         r"the model; lora.alpha is 2.0 in the file, 3.0 in"):
        model.load(tmp_path / "r2.npz")
    with pytest.raises(ValueError, match=r"targets is \['fc1'\] in the file, \['fc1', 'fc2'\] in"):
        model.load(tmp_path / "fc1.npz")
    assert all(np.array_equal(model.params[k], v) for k, v in before.items())


@pytest.mark.parametrize("make, message", [
    (lambda: LoRAConfig(r=0), r"r: expected a positive integer rank, got 0"),
    (lambda: LoRAMLP(ONE_HIDDEN, LoRAConfig(r=4)),
     r"r: expected 1 <= r <= min\(d_in, d_out\) = 3 for layer 'fc2' \(d_in=8, d_out=3\), got 4"),
    (lambda: LoRAConfig(alpha=0.0), r"alpha: expected a finite number > 0, got 0.0"),
    (lambda: LoRAMLP(ONE_HIDDEN, LoRAConfig(targets=["fc1", "attn"])),
     r"targets: \['attn'\] are not layers; valid ones are \['fc1', 'fc2'\]"),
    (lambda: LoRAConfig(init="gaussian"),
     r"init: expected one of \['zero_B', 'zero_A'\], got 'gaussian'"),
    (lambda: MLPConfig(6, 8, 3, activation="tanh"), r"activation: expected one of"),
    (lambda: LoRAMLP(ONE_HIDDEN, R2, dtype="float16"), r"dtype: expected one of"),
    (lambda: LoRAMLP(ONE_HIDDEN, R2, trainable="some"),
     r"trainable: expected 'lora', 'all' or a list of keys"),
])
def test_bad_model_arguments_are_clear_errors(make, message):
    """Each bad setting or constructor argument names itself, what was expected and what came."""
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_input_width_names_the_first_layer():
    """Feeding (N, 5) to a model built for d_in = 6 names fc1 and both sizes."""
    with pytest.raises(ValueError, match=r"fc1: expected input with trailing size 6"):
        LoRAMLP(ONE_HIDDEN, R2).forward(np.ones((2, 5)))


def test_repr_says_what_trains():
    """The repr teaches: widths, targets, rank, scale, and how few numbers train."""
    text = repr(LoRAMLP(ONE_HIDDEN, LoRAConfig(r=2, alpha=4.0)))
    assert "6 -> 8 -> 3" in text and "r=2" in text and "scale=2" in text and "trainable=" in text


def test_lora_config_default_scale_is_every_model_default():
    """`LoRAConfig()` and every model built with its defaults have the same scale: alpha = r, 1."""
    scales = {"LoRAConfig()": LoRAConfig().scale, "LoRAConfig(r=4)": LoRAConfig(r=4).scale,
              "LoRAMLP": LoRAMLP(MLPConfig(4, 8, 4), LoRAConfig(r=4)).scale,
              "TransformerBlock": TransformerBlock(BlockConfig(8, 2)).scale,
              "TinyLM": TinyLM(LMConfig(5, d_model=8, n_head=2, n_layer=1, context=4)).scale}
    assert scales == dict.fromkeys(scales, 1.0)
    assert LoRAConfig(r=4, alpha=8).scale == 2.0  # an explicit alpha still counts
