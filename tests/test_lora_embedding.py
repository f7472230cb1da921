"""LoRA on the token embedding (tinylora.embedding): PEFT's init, the lookup of a low-rank
update, its gradients, TinyLM's "tok_emb" target, and its LoRA+ groups under both rules."""

import numpy as np
import pytest

from tinylora import LMConfig, LoRAConfig, TinyLM, loss_and_grads
from tinylora.embedding import lora_embedding_forward
from tinylora.gradcheck import catalogue, randomize_lora
from tinylora.groups import loraplus_groups
from tinylora.optim import AdamW

TOKENS = np.array([[1, 4, 1, 6, 0], [2, 2, 5, 1, 3]])
CONFIG = LMConfig(9, d_model=8, n_head=2, n_layer=2, context=6)


def _lm(targets=("tok_emb", "q"), init="zero_B"):
    return TinyLM(CONFIG, LoRAConfig(r=2, init=init, targets=targets), seed=3)


@pytest.mark.parametrize("init", ["zero_B", "zero_A"])
def test_embedding_factors_start_at_A_zero_B_random(init):
    """Whatever the linear layers' init, the table's A = 0 and B ~ N(0, 1) (PEFT, loralib); the
    model starts exactly at the base, and the blocks' factors are those of a model without it."""
    lm, plain = _lm(init=init), _lm(targets=("q",), init=init)
    assert not lm.params["tok_emb.A"].any() and 0.5 < lm.params["tok_emb.B"].std() < 2.0
    assert np.array_equal(lm.forward(TOKENS)[0], plain.forward(TOKENS)[0])
    assert all(np.array_equal(plain.params[k], lm.params[k]) for k in plain.params)


def test_lookup_of_the_update_is_the_update_of_the_table():
    """scale A[tokens] B is the lookup in scale A B, the update merge() adds to the table."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((9, 2)), rng.standard_normal((2, 8))
    out, _ = lora_embedding_forward(TOKENS, A, B, 0.5)
    np.testing.assert_allclose(out, (0.5 * A @ B)[TOKENS], rtol=1e-13)


def test_first_gradient_moves_A_on_the_tokens_seen_only():
    """At init (A = 0) dB = 0 exactly and dA is non-zero on the rows of the tokens that occur,
    zero on the others (7 and 8 never occur): a gather's gradient is a scatter-add."""
    lm = _lm()
    _, grads = loss_and_grads(lm, TOKENS[:, :-1], TOKENS[:, 1:], loss="cross_entropy")
    assert not grads["tok_emb.B"].any()
    seen = sorted(set(TOKENS[:, :-1].ravel()))
    nonzero = [v for v in range(9) if grads["tok_emb.A"][v].any()]
    assert nonzero == seen and 7 not in nonzero


def test_gradcheck_catalogue_covers_embedding_lora_and_dropout():
    """`tinylora gradcheck` runs the table's LoRA (alone and inside TinyLM) and LoRA dropout
    (the layer with a fixed mask, the MLP and TinyLM in training), every tensor within tolerance."""
    names = [r.name for c in (catalogue.case_lora_embedding, catalogue.case_lora_dropout,
                              catalogue.case_dropout_models) for r in c(np)]
    assert {catalogue.case_lora_embedding, catalogue.case_lora_dropout,
            catalogue.case_dropout_models} <= set(catalogue.CASES)
    results = catalogue.case_tinylm(np)
    assert {"tinylm[tok_emb,q]/tok_emb.A", "tinylm[tok_emb,q]/tok_emb.B"} <= {r.name
                                                                              for r in results}
    assert all(r.ok for r in results) and {"lora_embedding/A", "lora_linear[dropout]/A",
                                           "mlp[dropout]/fc1.A"} <= set(names)


def test_embedding_factors_are_grouped_by_both_rules():
    """tinylora: the table's B with every B, its A with every A; peft: both at lr_embedding."""
    params = _lm().trainable_params()
    groups = {g["name"]: g for g in loraplus_groups(params, 1e-3, 16.0)}
    assert "tok_emb.B" in groups["B"]["params"]
    assert "tok_emb.A" in groups["A (and others)"]["params"]
    peft = {g["name"]: g for g in loraplus_groups(params, 1e-3, 16.0, rule="peft",
                                                   lr_embedding=5e-6)}
    assert peft["embedding"]["params"] == ["tok_emb.A", "tok_emb.B"]
    assert peft["embedding"]["lr"] == 5e-6


def _train(groups_of, steps=5):
    lm = _lm()
    params = lm.trainable_params()
    opt = AdamW(params, weight_decay=0.01, **groups_of(params))
    for _ in range(steps):
        opt.step(loss_and_grads(lm, TOKENS[:, :-1], TOKENS[:, 1:], loss="cross_entropy")[1])
    return params


def test_peft_ratio_one_is_plain_lora_only_when_lr_embedding_is_lr():
    """Under PEFT's rule the embedding's rate is its own (default 1e-6): ratio 1 is plain LoRA
    bit for bit only with lr_embedding = lr (axolotl #2065's "ratio 1 does not match")."""
    plain = _train(lambda p: {"lr": 1e-2})
    same = _train(lambda p: {"groups": loraplus_groups(p, 1e-2, 1.0, rule="peft",
                                                       lr_embedding=1e-2)})
    default = _train(lambda p: {"groups": loraplus_groups(p, 1e-2, 1.0, rule="peft")})
    assert all(np.array_equal(same[k], plain[k]) for k in plain)
    assert not np.array_equal(default["tok_emb.A"], plain["tok_emb.A"])


def test_embedding_adapters_save_load_and_show_in_the_repr(tmp_path):
    """The table's factors are adapters like any other: saved, loaded back bit for bit, and
    listed first among the targets."""
    lm = _lm()
    randomize_lora(lm, seed=1)
    path = lm.save(tmp_path / "adapters")
    other = _lm()
    other.load(path)
    assert np.array_equal(other.params["tok_emb.A"], lm.params["tok_emb.A"])
    assert "targets=['tok_emb', 'q']" in repr(lm) and lm.lora.targets == ("tok_emb", "q")


def test_an_unknown_target_lists_the_token_table_among_the_valid_ones():
    """targets may name "tok_emb" beside the block layers; anything else is a clear error."""
    with pytest.raises(ValueError, match=r"targets: \['pos_emb'\] are not block layers .*tok_emb"):
        _lm(targets=("pos_emb",))
