"""TinyLM (tinylora.transformer): gradients, causality, the LoRA invariants, training,
generation, keys and saving, dtypes and backends, bad input. The block alone: test_block.py."""

import json
import math

import numpy as np
import pytest

from tinylora import backend
from tinylora.block import BlockConfig, TransformerBlock
from tinylora.gradcheck import randomize_lora
from tinylora.gradcheck.catalogue import case_tinylm
from tinylora.lora import LoRAConfig
from tinylora.optim import Adam
from tinylora.run import cli
from tinylora.train import loss_and_grads
from tinylora.transformer import LMConfig, TinyLM

SMALL = LMConfig(11, d_model=8, n_head=2, n_layer=2, context=8, d_ff=16)
R2, FROZEN = LoRAConfig(r=2), LoRAConfig(targets=())  # LoRA (rank 2) on q, k, v, o, fc1, fc2; none


def _tokens(seed, shape, vocab):
    return backend.host_rng(seed).integers(0, vocab, size=shape)


def _assert_all_ok(results):
    bad = [r.line() for r in results if not r.ok]
    assert not bad, bad


# --------------------------------------------------------------------------------------------
# Gradients


def test_tinylm_gradients_match_finite_differences():
    """TinyLM with every array trainable (embeddings, blocks, final norm, head) and with LoRA
    only: all within 1e-6 of float64 finite differences."""
    results = case_tinylm(np)
    names = {r.name for r in results}
    assert {"tinylm[zero_B,trainable=all]/tok_emb", "tinylm[zero_B,trainable=all]/head.W",
            "tinylm[zero_A,trainable=lora]/blocks.1.mlp.fc2.B"} <= names
    _assert_all_ok(results)


def test_gradcheck_command_lists_every_transformer_tensor_ok(capsys):
    """`tinylora gradcheck --json` includes the Transformer's tensors, each one ok."""
    assert cli.main(["gradcheck", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    tf = [r for r in rows if r["name"].split("[")[0].split("/")[0] in
          ("layernorm", "embedding", "attention_heads", "attention", "block", "tinylm")]
    assert len(tf) > 100 and all(r["ok"] for r in tf)


def test_skipping_untrained_work_never_changes_a_gradient():
    """The backward skips what no trainable array needs (block 0's input gradient, a frozen
    branch); each gradient must equal the one computed with every array trainable."""
    lm_all = TinyLM(SMALL, R2, trainable="all", seed=1)
    randomize_lora(lm_all, seed=2)
    tokens = _tokens(3, (2, 6), 11)
    _, full = loss_and_grads(lm_all, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")
    for trainable in (["head.W"], ["ln_f.g", "blocks.1.mlp.fc2.b"], ["blocks.0.attn.o.A"],
                      ["blocks.0.ln1.g"], ["pos_emb"], ["blocks.1.attn.k.W", "tok_emb"], "lora"):
        lm = TinyLM(SMALL, R2, trainable=trainable, seed=1)
        lm.params = lm_all.params
        _, grads = loss_and_grads(lm, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")
        assert list(grads) == list(lm.trainable)
        for k, g in grads.items():
            np.testing.assert_allclose(g, full[k], rtol=1e-10, atol=1e-14)


def test_loss_and_gradients_are_means_over_the_batch():
    """Duplicating the batch leaves the loss and every gradient unchanged (a mean, not a sum)."""
    lm = TinyLM(SMALL, R2, trainable="all", seed=4)
    tokens = _tokens(5, (2, 6), 11)
    loss, grads = loss_and_grads(lm, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")
    twice = np.concatenate([tokens, tokens])
    loss2, grads2 = loss_and_grads(lm, twice[:, :-1], twice[:, 1:], loss="cross_entropy")
    np.testing.assert_allclose(loss2, loss, rtol=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------------------------
# Causality


def test_changing_token_t_leaves_the_logits_before_t_unchanged():
    """A language model must not see the future: changing the token at position t changes no
    logit before t (and does change the logits at t)."""
    lm = TinyLM(SMALL, R2, seed=6)
    randomize_lora(lm, seed=7)
    tokens = _tokens(8, (2, 8), 11)
    logits, _ = lm.forward(tokens)
    for t in (0, 3, 7):
        changed = tokens.copy()
        changed[:, t] = (changed[:, t] + 1) % 11
        logits2, _ = lm.forward(changed)
        np.testing.assert_allclose(logits2[:, :t], logits[:, :t], rtol=0, atol=1e-12)
        assert np.abs(logits2[:, t] - logits[:, t]).max() > 1e-3


# --------------------------------------------------------------------------------------------
# The LoRA invariants


@pytest.mark.parametrize("init", ["zero_B", "zero_A"])
def test_lora_at_init_leaves_the_output_exactly_unchanged(init):
    """At either init one factor is 0, so the model with LoRA on every target computes exactly
    the frozen model's logits (same seed: the base never depends on the LoRA options)."""
    frozen = TinyLM(SMALL, FROZEN, seed=9)
    lora = TinyLM(SMALL, LoRAConfig(r=2, init=init), seed=9)
    for k in frozen.params:
        np.testing.assert_array_equal(lora.params[k], frozen.params[k])
    tokens = _tokens(10, (3, 8), 11)
    np.testing.assert_array_equal(lora.forward(tokens)[0], frozen.forward(tokens)[0])
    x = backend.normal(11, (2, 5, 8), 1.0, np)
    blk0 = TransformerBlock(BlockConfig(8, 2), FROZEN, seed=12)
    blk = TransformerBlock(BlockConfig(8, 2), LoRAConfig(init=init), seed=12)
    np.testing.assert_array_equal(blk.forward(x)[0], blk0.forward(x)[0])


def test_merged_weights_reproduce_the_output():
    """Replacing every target's W by W + scale A B (and dropping A, B) gives the same logits."""
    lm = TinyLM(SMALL, LoRAConfig(r=2, alpha=3.0), seed=13)
    randomize_lora(lm, seed=14)
    merged = TinyLM(SMALL, FROZEN, seed=13)
    for k in merged.params:
        merged.params[k][...] = lm.params[k]
    for target, W in lm.merged_weights().items():
        merged.params[f"{target}.W"][...] = W
    tokens = _tokens(15, (2, 8), 11)
    np.testing.assert_allclose(merged.forward(tokens)[0], lm.forward(tokens)[0], atol=1e-10)


def test_training_lora_leaves_every_frozen_array_bit_identical():
    """Five Adam steps with trainable='lora': every base array is bit-identical afterwards, and
    every LoRA factor moved (with zero_B both A and B move once B is non-zero)."""
    lm = TinyLM(SMALL, R2, seed=16)
    before = {k: v.copy() for k, v in lm.params.items()}
    opt = Adam(lm.trainable_params(), lr=1e-2)
    tokens = _tokens(17, (4, 8), 11)
    for _ in range(5):
        _, grads = loss_and_grads(lm, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")
        assert set(grads) == set(lm.adapter_keys())  # no gradient for any frozen array
        opt.step(grads)
    for k in lm.base_keys():
        np.testing.assert_array_equal(lm.params[k], before[k])
    for k in lm.adapter_keys():
        assert not np.array_equal(lm.params[k], before[k]), k


# --------------------------------------------------------------------------------------------
# Training and generation

PATTERN = [0, 1, 0, 2, 0, 3]  # after a 0 the next token depends on the token before the 0


@pytest.fixture(scope="module")
def trained():
    """A 1-layer TinyLM pretrained (every array trainable) on the repeating pattern above."""
    V, T = 4, 16
    seq = np.array(PATTERN * 10)
    tokens = np.stack([seq[o:o + T + 1] for o in range(4)])  # 4 windows, 4 offsets
    lm = TinyLM(LMConfig(V, d_model=16, n_head=2, n_layer=1, context=T), FROZEN, trainable="all",
                seed=0)
    opt = Adam(lm.trainable_params(), lr=1e-2)
    history = []
    for _ in range(80):
        loss, grads = loss_and_grads(lm, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")
        history.append(float(loss))
        opt.step(grads)
    return lm, history


def test_training_on_a_repeating_sequence_drives_the_loss_below_a_tenth_of_log_v(trained):
    """Start: about log V = 1.39 (the head starts near a uniform guess). The pattern is
    determined by the last two tokens (except the first token of a window), so the achievable
    loss is near 0, while a model that saw only the current token could not go below about
    0.55 (after a 0 it must guess among 3 tokens: (1/2) log 3). Bound: below 0.1 log V = 0.139
    after 80 Adam steps, which needs attention to the previous token."""
    _, history = trained
    V = 4
    assert history[0] > 0.7 * math.log(V)
    assert history[-1] < 0.1 * math.log(V)


def test_greedy_generation_continues_the_learned_pattern(trained):
    """Greedy decoding from a prompt continues the pattern it was trained on, and is
    deterministic; the prompt is kept and n_new tokens are added."""
    lm, _ = trained
    out = lm.generate([0, 1, 0, 2], 12)
    assert out.shape == (16,)
    assert list(out) == (PATTERN * 3)[:16]
    np.testing.assert_array_equal(lm.generate([0, 1, 0, 2], 12), out)


def test_generation_crops_to_the_context_and_sampling_is_seeded():
    """A prompt longer than the context still works (the model reads the last `context`
    tokens); temperature sampling gives ids in range and repeats itself for the same seed."""
    lm = TinyLM(SMALL, R2, seed=18)
    prompt = _tokens(19, 12, 11)  # longer than context = 8
    out = lm.generate(prompt, 10, temperature=1.0, seed=3)
    assert out.shape == (22,) and (out >= 0).all() and (out < 11).all()
    np.testing.assert_array_equal(out[:12], prompt)
    np.testing.assert_array_equal(lm.generate(prompt, 10, temperature=1.0, seed=3), out)
    assert not np.array_equal(lm.generate(prompt, 10, temperature=5.0, seed=4), out)


# --------------------------------------------------------------------------------------------
# Dtypes and backends


def test_float32_model_stays_float32():
    """A float32 TinyLM gives float32 logits, loss and gradients: nothing silently promotes to
    float64 (scales and eps are Python floats, the mask is built in the model's dtype)."""
    lm = TinyLM(SMALL, R2, trainable="all", dtype="float32")
    tokens = _tokens(28, (2, 8), 11)
    assert lm.forward(tokens)[0].dtype == np.float32
    loss, grads = loss_and_grads(lm, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")
    assert loss.dtype == np.float32
    assert {g.dtype for g in grads.values()} == {np.dtype("float32")}


def test_every_backend_gives_the_numpy_logits_and_gradients(xp_name):
    """NumPy and (where a GPU is present) CuPy start from the same host-drawn numbers, so their
    logits, loss and gradients (embeddings' scatter-add included) agree to round-off."""
    ref = TinyLM(SMALL, R2, trainable="all", seed=29, backend="numpy")
    lm = TinyLM(SMALL, R2, trainable="all", seed=29, backend=xp_name)
    tokens = _tokens(30, (2, 8), 11)
    loss_ref, grads_ref = loss_and_grads(ref, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")
    xp = lm.xp
    loss, grads = loss_and_grads(lm, xp.asarray(tokens[:, :-1]), xp.asarray(tokens[:, 1:]),
                                 loss="cross_entropy")
    np.testing.assert_allclose(backend.to_numpy(loss), loss_ref, rtol=1e-10)
    for k, g in grads_ref.items():
        np.testing.assert_allclose(backend.to_numpy(grads[k]), g, rtol=1e-8, atol=1e-12)
    out = lm.generate([1, 2, 3], 5)
    np.testing.assert_array_equal(backend.to_numpy(out), ref.generate([1, 2, 3], 5))


# --------------------------------------------------------------------------------------------
# Keys, config, saving


def test_keys_follow_the_agreed_dotted_paths():
    """Keys are dotted paths (blocks.0.attn.q.A); targets hold full layer paths."""
    lm = TinyLM(SMALL, LoRAConfig(r=2, targets=("q", "fc2")), seed=20)
    assert lm.targets == ("blocks.0.attn.q", "blocks.0.mlp.fc2", "blocks.1.attn.q",
                          "blocks.1.mlp.fc2")
    assert lm.params["tok_emb"].shape == (11, 8) and lm.params["pos_emb"].shape == (8, 8)
    assert lm.params["head.W"].shape == (8, 11)
    assert lm.params["blocks.1.attn.q.A"].shape == (8, 2)
    assert lm.params["blocks.0.mlp.fc2.B"].shape == (2, 8)
    assert lm.trainable == lm.adapter_keys()
    assert not set(lm.base_keys()) & set(lm.adapter_keys())
    assert set(lm.base_keys()) | set(lm.adapter_keys()) == set(lm.params)


def test_pretrained_base_loads_into_a_model_with_lora(tmp_path):
    """The pretrain-then-fine-tune path: save base_keys() of a model without LoRA, load them into
    one with LoRA (another seed): at zero_B init its logits equal the pretrained model's."""
    base = TinyLM(SMALL, FROZEN, trainable="all", seed=22)
    opt = Adam(base.trainable_params(), lr=1e-2)
    tokens = _tokens(23, (2, 8), 11)
    for _ in range(3):
        opt.step(loss_and_grads(base, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")[1])
    base.save(tmp_path / "base.npz", keys=base.base_keys())
    lm = TinyLM(SMALL, R2, seed=99)
    lm.load(tmp_path / "base.npz", keys=lm.base_keys())
    np.testing.assert_array_equal(lm.forward(tokens)[0], base.forward(tokens)[0])


# --------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("make, message", [
    (lambda: BlockConfig(10, 3), r"n_head: expected a divisor of d_model=10, got 3"),
    (lambda: LMConfig(11, d_model=8, n_head=3), r"n_head: expected a divisor of d_model=8, got 3"),
    (lambda: TinyLM(LMConfig(11), LoRAConfig(targets=("q", "up"))),
     r"targets: \['up'\] are not block layers"),
    (lambda: LMConfig(0), r"vocab_size: expected a positive integer, got 0"),
    (lambda: TransformerBlock(BlockConfig(8, 2), LoRAConfig(r=9, targets=("q",))),
     r"r: expected 1 <= r <= min"),
])
def test_bad_constructor_arguments_are_clear_errors(make, message):
    """n_head not dividing d_model, unknown targets, bad sizes, a rank too large: ValueError."""
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_to_forward_are_clear_errors():
    """Wrong d_model for the block; for TinyLM, ids out of range and a sequence longer than the
    context: each a ValueError saying what was expected and what came."""
    blk = TransformerBlock(BlockConfig(8, 2))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, T, d_model=8\), got \(2, 3, 6\)"):
        blk.forward(np.zeros((2, 3, 6)))
    lm = TinyLM(SMALL, R2)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 11\), got values in \[0, 11\]"):
        lm.forward(np.array([[0, 11]]))
    with pytest.raises(ValueError, match=r"T=9 must be between 1 and the model's context 8"):
        lm.forward(np.zeros((1, 9), dtype=int))
    with pytest.raises(ValueError, match=r"temperature: expected a number >= 0"):
        lm.generate([1], 3, temperature=-1.0)
