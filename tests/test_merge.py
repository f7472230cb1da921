"""merge() / unmerge() in place (loralib's merge, PEFT's merge_and_unload): same outputs, the
frozen weights restored bit for bit, training refused while merged."""

import numpy as np
import pytest

from tinylora import (
    BlockConfig,
    LMConfig,
    LoRAConfig,
    LoRAMLP,
    MLPConfig,
    TinyLM,
    TransformerBlock,
    loss_and_grads,
)
from tinylora.gradcheck import randomize_lora

TOKENS = np.array([[1, 4, 1, 6, 0], [2, 2, 5, 1, 3]])


def _models():
    """(model, input) for each model kind, at a random point (B != 0: merging changes W)."""
    made = [(LoRAMLP(MLPConfig(4, [6, 5], 3, bias=True), LoRAConfig(r=2, alpha=3.0), seed=1),
             np.random.default_rng(0).standard_normal((5, 4))),
            (TransformerBlock(BlockConfig(8, 2), LoRAConfig(r=2, targets=("q", "v", "fc2")),
                              seed=2),
             np.random.default_rng(1).standard_normal((2, 3, 8))),
            (TinyLM(LMConfig(7, d_model=8, n_head=2, n_layer=2, context=6),
                    LoRAConfig(r=2, targets=("tok_emb", "q", "o", "fc1")), seed=3),
             TOKENS)]
    for i, (m, _) in enumerate(made):
        randomize_lora(m, seed=10 + i)
    return made


@pytest.mark.parametrize("i", range(3))
def test_merge_keeps_the_outputs_and_unmerge_restores_the_weights_bit_for_bit(i):
    """Merged, the output matches the LoRA model's to 1e-12 (float64) with W = W + scale A B;
    unmerged, every frozen weight is bit for bit what it was, and so is the output."""
    model, x = _models()[i]
    before = {k: v.copy() for k, v in model.params.items()}
    out, _ = model.forward(x)
    expected = model.merged_weights()
    model.merge()
    assert model.merged
    merged_out, cache = model.forward(x)
    np.testing.assert_allclose(merged_out, out, rtol=0, atol=1e-12)
    for t, W in expected.items():
        key = model.weight_key(t)
        assert np.array_equal(model.params[key], W) and not np.array_equal(W, before[key])
    model.unmerge()
    assert not model.merged
    assert all(np.array_equal(model.params[k], before[k]) for k in before)
    assert np.array_equal(model.forward(x)[0], out)


def test_merged_forward_skips_the_lora_path():
    """Merged, each layer is one product (its cache says no LoRA): inference at W's cost."""
    model, x = _models()[0]
    model.merge()
    _, caches = model.forward(x)
    assert [c[1] for c in caches if isinstance(c, tuple)] == [False, False, False]


def test_training_and_loading_are_refused_while_merged(tmp_path):
    """backward (so loss_and_grads) and load raise a clear error while merged; merging twice or
    unmerging an unmerged model is refused too; after unmerge training works again."""
    model, x = _models()[0]
    path = model.save(tmp_path / "adapters")
    model.merge()
    with pytest.raises(ValueError, match="backward: the model is merged .* call unmerge()"):
        loss_and_grads(model, x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="load: the model is merged"):
        model.load(path)
    with pytest.raises(ValueError, match="merge: the model is already merged"):
        model.merge()
    model.unmerge()
    with pytest.raises(ValueError, match="unmerge: the model is not merged"):
        model.unmerge()
    loss, grads = loss_and_grads(model, x, np.zeros((5, 3)))
    assert set(grads) == set(model.trainable)


def test_a_stack_of_models_is_not_merged():
    """S stacked models share one W: merging one into it is refused, and nothing is written."""
    m = LoRAMLP(MLPConfig(4, 5, 3), LoRAConfig(r=2), stack=(3,))
    W = m.params["fc1.W"].copy()
    with pytest.raises(ValueError, match="merge: expected an unstacked model"):
        m.merge()
    assert not m.merged and np.array_equal(m.params["fc1.W"], W)
