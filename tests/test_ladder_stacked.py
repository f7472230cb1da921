"""Many fine-tunes in one pass: the stacked TinyLM and `tinylora.text.stacked`, checked against
the same runs made one by one (bit for bit on NumPy float64) and against finite differences."""

import math

import numpy as np
import pytest

import tinylora.fast
import tinylora.text.finetune as ft
from tinylora.gradcheck import catalogue, randomize_lora
from tinylora.lora import LoRAConfig
from tinylora.text.ladder_bases import LadderBaseConfig, head_scale, ladder_base_config
from tinylora.text.pretrain import ensure_base, pretrain_config
from tinylora.text.stacked import Job, OutOfTime, seed_factors, train_stack
from tinylora.train import loss_and_grads
from tinylora.transformer import LMConfig, TinyLM

CONFIG = LMConfig(11, d_model=16, n_head=2, n_layer=2, context=8)


def _stack_and_copies(S=3, init="zero_B"):
    """A stacked TinyLM at a random non-zero point and S unstacked models holding its copies."""
    lora = LoRAConfig(r=2, init=init)
    stacked = TinyLM(CONFIG, lora, stack=(S,), dtype="float64", seed=0)
    randomize_lora(stacked, seed=5)
    copies = []
    for i in range(S):
        one = TinyLM(CONFIG, lora, dtype="float64", seed=0)
        for k in one.params:  # the base (randomized biases and gains too) and copy i's factors
            one.params[k][...] = stacked.params[k][i, 0] if k in one.adapter_keys() \
                else stacked.params[k]
        copies.append(one)
    return stacked, copies


@pytest.mark.parametrize("fast", [False, True], ids=["reference", "fast"])
@pytest.mark.parametrize("own_batches", [False, True], ids=["one batch", "own batches"])
def test_each_copy_of_a_stacked_tinylm_is_that_model_alone(fast, own_batches):
    """Loss and every gradient of copy i of a stack equal those of the unstacked model with
    copy i's factors, bit for bit in float64 (the reference and the fast twins), whether the
    copies share one batch or each reads its own."""
    stacked, copies = _stack_and_copies()
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 11, (3, 4, 9) if own_batches else (4, 9))
    with tinylora.fast.enabled(fast):
        loss, grads = loss_and_grads(stacked, tokens[..., :-1], tokens[..., 1:],
                                     loss="cross_entropy")
        assert loss.shape == (3,)
        for i, one in enumerate(copies):
            t = tokens[i] if own_batches else tokens
            l1, g1 = loss_and_grads(one, t[:, :-1], t[:, 1:], loss="cross_entropy")
            assert l1 == loss[i]
            for k in g1:
                assert grads[k].shape == (3, 1, *g1[k].shape)
                np.testing.assert_array_equal(grads[k][i, 0], g1[k], err_msg=k)


def test_the_stacked_tinylm_passes_the_gradient_check_at_a_random_point():
    """The catalogue's stacked case (random non-zero B, float64, centred differences): every
    factor (both copies) within the catalogue's tolerance, with one shared batch and with a
    batch per copy."""
    results = catalogue.case_tinylm_stacked(np)
    assert len(results) == 2 * 2 * 6 * 2  # 2 batch kinds x 2 layers x 6 targets x (A, B)
    assert all(r.ok for r in results), [r.line() for r in results if not r.ok]


def test_a_stack_refuses_what_has_no_stacked_meaning():
    """LoRA on the token table and generation take one model; tokens of another stack's
    shape are refused, naming the shapes that work."""
    with pytest.raises(ValueError, match=r"stack: expected \(\) \(LoRA on the token table"):
        TinyLM(CONFIG, LoRAConfig(r=2, targets=("tok_emb", "q")), stack=(2,))
    lm = TinyLM(CONFIG, LoRAConfig(r=2), stack=(2,))
    with pytest.raises(ValueError, match=r"stack: expected \(\) \(generate takes one model"):
        lm.generate(np.array([1, 2]), 3)
    with pytest.raises(ValueError, match=r"shape \(N, T\) or \(2, N, T\), got shape \(3, 4, 5\)"):
        lm.forward(np.zeros((3, 4, 5), dtype=int))


def test_seed_factors_are_the_factors_tinylm_draws_for_that_seed():
    """`seed_factors` draws exactly the factors of ``TinyLM(config, lora, seed=s)`` (both
    inits), without drawing a base."""
    for init in ("zero_B", "zero_A"):
        lora = LoRAConfig(r=2, init=init)
        lm = TinyLM(CONFIG, lora, seed=7, dtype="float32")
        drawn = seed_factors(CONFIG, lora, 7, "float32")
        assert set(drawn) == set(lm.adapter_keys())
        for k, v in drawn.items():
            np.testing.assert_array_equal(v, lm.params[k])


@pytest.fixture(scope="module")
def float64_study(tmp_path_factory):
    """A tiny fine-tuning study on a float64 base (the study's own single runs use it too)."""
    cache = tmp_path_factory.mktemp("bases")
    config = ft.finetune_config(True, widths=(32,), steps=6, eval_every=3, n_eval=4,
                                decay="cosine")  # a schedule too: every copy's rates follow it
    base = pretrain_config(32, True, steps=5, dtype="float64")
    ensure_base(base, cache, show_progress=False)
    return config, base, cache, ft.Data(config)


def _alone(monkeypatch, study, job):
    config, base, cache, data = study
    monkeypatch.setattr(ft, "_base_config", lambda c, w: base)  # finetune_run on the same base
    return ft.finetune_run(config, ft.Setting(job.width, job.init, job.lr_ratio, config.r),
                           job.lr, job.seed, data, cache)


def test_stacked_runs_are_the_study_runs_made_one_by_one(monkeypatch, float64_study):
    """`train_stack` on Init[1] and Init[2] jobs with different ratios, rates and seeds gives,
    for every job, exactly the validation curve `finetune_run` records for it alone (float64)."""
    config, base, cache, data = float64_study
    for init in ("zero_B", "zero_A"):
        jobs = [Job(32, init, 1.0, 0.01, 0, 8), Job(32, init, 4.0, 0.003, 1, 8),
                Job(32, init, 16.0, 0.001, 0, 8)]
        for job, rec in zip(jobs, train_stack(config, jobs, data, base, cache)):
            one = _alone(monkeypatch, float64_study, job)
            assert rec["val_loss"] == one["val_loss"] and not rec["diverged"]
            assert rec["eval_steps"] == one["eval_steps"] == [0, 3, 6]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the single run's overflow, as it diverges
def test_a_diverging_copy_is_retired_and_leaves_the_others_untouched(monkeypatch,
                                                                     float64_study):
    """A copy at a rate that blows up is recorded as diverged, inf from that step, as the run
    alone is; the other copy of its stack still matches its own single run bit for bit."""
    config, base, cache, data = float64_study
    jobs = [Job(32, "zero_A", 1.0, 0.003, 0, 8), Job(32, "zero_A", 64.0, 1e200, 1, 8)]
    good, bad = train_stack(config, jobs, data, base, cache)
    assert good["val_loss"] == _alone(monkeypatch, float64_study, jobs[0])["val_loss"]
    alone = _alone(monkeypatch, float64_study, jobs[1])
    assert bad["diverged"] and alone["diverged"] and bad["diverged_at"] == alone["diverged_at"]
    assert bad["final_loss"] == math.inf and bad["val_loss"] == alone["val_loss"]


def test_a_pass_that_cannot_finish_by_its_deadline_stops_early(float64_study):
    """With a deadline already past, `train_stack` raises `OutOfTime` after its first steps
    instead of running on."""
    config, base, cache, data = float64_study
    with pytest.raises(OutOfTime, match="a pass of 1 runs at d_model 32"):
        train_stack(config, [Job(32, "zero_B", 1.0, 0.01, 0, 8)], data, base, cache,
                    deadline=0.0)


def test_ladder_bases_scale_the_matrix_rates_like_mup():
    """The ladder's recipe: blocks' weight matrices and the head at lr * mup_width / d_model,
    embeddings, biases and norms at lr; its own cache name; a standard head scores about 1."""
    cfg = ladder_base_config(256)
    assert isinstance(cfg, LadderBaseConfig) and cfg.stem == "tinylm-mup128-d256-L2-T64"
    lm = TinyLM(LMConfig(11, d_model=16, n_head=2), LoRAConfig(targets=()), trainable="all")
    fast = ladder_base_config(64, fast=True, lr=1e-2)  # mup_width 32
    rest, matrices = fast.groups(lm.trainable_params())
    assert rest["lr"] == 1e-2 and matrices["lr"] == 1e-2 * 32 / 64
    assert set(matrices["params"]) == {k for k in lm.params if k == "head.W"
                                       or (k.startswith("blocks.") and k.endswith(".W"))}
    assert "tok_emb" in rest["params"] and "blocks.0.ln1.g" in rest["params"]
    big = TinyLM(LMConfig(11, d_model=512, n_head=2), LoRAConfig(targets=()))
    assert abs(head_scale(big.params["head.W"]) - 1.0) < 0.02
