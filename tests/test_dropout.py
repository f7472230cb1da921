"""LoRA dropout (tinylora.dropout): on the input of A only, seeded, off at evaluation, free at 0."""

import numpy as np
import pytest

from tinylora import LMConfig, LoRAConfig, LoRAMLP, MLPConfig, TinyLM, layers
from tinylora.gradcheck import catalogue, check_layer, randomize_lora


def _mlp(p, seed=0):
    m = LoRAMLP(MLPConfig(6, 8, 3), LoRAConfig(r=2, dropout=p), seed=seed)
    randomize_lora(m, seed=1)  # B non-zero: the LoRA path shows in the output
    return m


X = np.random.default_rng(2).standard_normal((16, 6))


def test_dropout_acts_on_the_input_of_A_only():
    """y = x W + b + scale ((x * mask) A) B: the frozen path reads x, the adapter x * mask."""
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    A, B = rng.standard_normal((5, 2)), rng.standard_normal((2, 3))
    mask = (rng.random((4, 5)) >= 0.5) * 2.0
    y, cache = layers.lora_linear_forward(x, W, b, A, B, 1.5, mask=mask)
    np.testing.assert_allclose(y, x @ W + b + 1.5 * ((x * mask) @ A) @ B, rtol=1e-13)
    assert cache[-1] is mask


def test_dropout_is_off_at_evaluation_and_seeded_in_training():
    """eval() gives exactly the output without dropout; in training the masks change the output,
    the same seed draws the same masks and another seed other ones."""
    plain = _mlp(0.0).forward(X)[0]
    assert np.array_equal(_mlp(0.5).eval().forward(X)[0], plain)
    trained = _mlp(0.5).forward(X)[0]
    assert not np.allclose(trained, plain)
    assert np.array_equal(_mlp(0.5).forward(X)[0], trained)
    assert not np.array_equal(_mlp(0.5, seed=7).forward(X)[0], trained)
    m = _mlp(0.5).eval()
    assert m.train().training and np.array_equal(m.forward(X)[0], trained)


def test_without_dropout_no_mask_is_drawn():
    """p = 0 (the default) or eval mode: no dropout object reaches the layers, so no mask is
    drawn, the generator does not move, and the LoRA path is today's (mask None in its cache)."""
    for m in (_mlp(0.0), _mlp(0.5).eval()):
        state = m._dropout.rng.bit_generator.state
        _, caches = m.forward(X)
        assert m.lora_dropout() is None and m._dropout.rng.bit_generator.state == state
        lora = [c[2] for c in caches if isinstance(c, tuple) and c[1]]  # (name, is_lora, cache)
        assert len(lora) == 2 and all(inner[-1] is None for inner in lora)


def test_masks_keep_one_minus_p_of_the_entries_scaled_by_its_inverse():
    """Kept entries are 1 / (1 - p), dropped ones 0, and about 1 - p are kept: E[mask] = 1."""
    m = _mlp(0.25)
    mask = m._dropout.mask((400, 250), np, "float64")
    assert set(np.unique(mask)) == {0.0, 1.0 / 0.75}
    assert abs((mask > 0).mean() - 0.75) < 0.01


def test_the_dropout_gradient_check_catches_a_backward_that_ignores_the_mask():
    """The catalogue's fixed-mask check is not vacuous: a backward that forgets the mask in dA
    and dx fails it, while the real one passes (`catalogue.case_lora_dropout`)."""
    assert all(r.ok for r in catalogue.case_lora_dropout(np))
    rng = np.random.default_rng(4)
    mask = (rng.random((3, 5)) >= 0.5) * 2.0
    W = rng.standard_normal((5, 4))
    a = {"x": rng.standard_normal((3, 5)), "A": rng.standard_normal((5, 2)),
         "B": rng.standard_normal((2, 4))}

    def forgetful(g, c):
        dx, _, _, dA, dB = layers.lora_linear_backward(g, (*c[:-1], None))  # the mask lost
        return {"x": dx, "A": dA, "B": dB}

    results = check_layer("forgetful", lambda a: layers.lora_linear_forward(
        a["x"], W, None, a["A"], a["B"], 1.0, mask=mask), forgetful, a)
    assert {r.name.split("/")[1] for r in results if not r.ok} == {"x", "A"}


@pytest.mark.parametrize("p", [-0.1, 1.0, float("nan"), "0.1"])
def test_bad_dropout_is_a_clear_error(p):
    """A dropout below 0, at or above 1, NaN or not a number: an error naming the dropout."""
    with pytest.raises(ValueError, match=r"^dropout: expected a finite number in \[0, 1\)"):
        LoRAConfig(dropout=p)


def test_generation_never_drops_and_keeps_the_mode():
    """generate() runs in evaluation mode (the text of a model without dropout) and leaves the
    model in the mode it was in."""
    config = LMConfig(11, d_model=8, n_head=2, n_layer=1, context=8)
    lm, plain = TinyLM(config, LoRAConfig(dropout=0.5), seed=1), TinyLM(config, seed=1)
    for m in (lm, plain):
        randomize_lora(m, seed=2)
    prompt = np.array([1, 2, 3])
    assert np.array_equal(lm.generate(prompt, 6, temperature=1.0), plain.generate(prompt, 6, 1.0))
    assert lm.training and lm.lora_dropout() is not None
