"""A run that goes wrong is said to have gone wrong: one divergence rule (`tinylora.diverge`)
for `train`, the lab's grids and the fine-tuning, reported with the step."""

import importlib
import math
import warnings

import numpy as np
import pytest

from tinylora import LoRAConfig, LoRAMLP, MLPConfig, diverge
from tinylora.lab import grid
from tinylora.optim import SGD, Adam
from tinylora.text import finetune, pretrain
from tinylora.train import loss_and_grads, retire, train, train_step


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((16, 8)), rng.standard_normal((16, 4))


def run(make_opt, steps=20, stack=()):
    """Train a small MLP; -> (history, every warning raised on the way)."""
    model = LoRAMLP(MLPConfig(8, 32, 4), LoRAConfig(r=2), seed=1, stack=stack)
    x, y = data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = train(model, make_opt(model.trainable_params()), x, y, steps)
    return history, caught


def test_the_rule_is_not_finite_or_above_a_multiple_of_the_start():
    """inf and NaN diverge; so does a loss above DIVERGED times the start, and nothing below."""
    start = 2.0
    assert diverge.diverged(math.inf, start) and diverge.diverged(math.nan, start)
    assert diverge.diverged(diverge.DIVERGED * start * 1.001, start)
    assert not diverge.diverged(diverge.DIVERGED * start, start)
    assert diverge.diverged(1.0, math.nan)  # a run that starts non-finite has diverged at once


@pytest.mark.parametrize("make_opt", [lambda p: SGD(p, lr=1e3), lambda p: Adam(p, lr=1e3)],
                         ids=["sgd", "adam"])
def test_a_diverging_train_is_reported_with_its_step(make_opt):
    """SGD and Adam at lr 1e3: `diverged_at` names the step, one `Diverged` warning says it (no
    NumPy overflow warnings), and every loss from that step on is inf, never a huge number."""
    history, caught = run(make_opt)
    t = history.diverged_at
    assert isinstance(t, int) and 0 < t < len(history) == 20
    assert [type(w.message) for w in caught] == [diverge.Diverged]
    assert f"diverged at step {t}" in str(caught[0].message)
    assert all(math.isinf(v) for v in history[t:])
    assert max(history[:t]) <= diverge.DIVERGED * history[0]  # what is kept as data is data


def test_a_converging_train_is_not_flagged():
    """Adam at lr 1e-2 trains all its steps, with diverged_at None and no warning."""
    history, caught = run(lambda p: Adam(p, lr=1e-2))
    assert history.diverged_at is None and caught == [] and history[-1] < history[0]


def test_in_a_stack_only_the_model_that_diverged_stops():
    """Two models at lr 1e-2 and 1e3 trained as one stack: the second is reported diverged and
    recorded inf; the first trains on exactly as it does beside a model that does not diverge."""
    history, caught = run(lambda p: Adam(p, lr=np.array([1e-2, 1e3]).reshape(2, 1, 1)),
                          stack=(2,))
    calm, _ = run(lambda p: Adam(p, lr=np.array([1e-2, 1e-2]).reshape(2, 1, 1)), stack=(2,))
    assert history.diverged_at[0] is None and isinstance(history.diverged_at[1], int)
    assert [type(w.message) for w in caught] == [diverge.Diverged]
    assert "model 1 of the stack" in str(caught[0].message)
    assert [h[0] for h in history] == [h[0] for h in calm]  # bit for bit
    assert all(math.isinf(h[1]) for h in history[history.diverged_at[1]:])


def test_the_grid_and_the_text_runs_use_the_same_rule():
    """The lab's grid and the fine-tuning's evaluations import the rule from tinylora.diverge,
    and the fine-tuning and pretraining loops step with `train_step` (one definition, so that a
    cell and a run diverge under the same condition)."""
    training = importlib.import_module("tinylora.train")  # the module, not the function `train`

    assert grid.diverged is finetune.diverged is training.diverged is diverge.diverged
    assert finetune.train_step is pretrain.train_step is training.train_step


def small_mlp(stack=()):
    """The MLP of `run`, for the tests that step it by hand."""
    return LoRAMLP(MLPConfig(8, 32, 4), LoRAConfig(r=2), seed=1, stack=stack)


def test_train_step_leaves_a_diverged_run_as_it_was():
    """`train_step` measured against a start the loss is over DIVERGED times: it reports
    diverged and updates nothing (parameters bit-identical, the optimizer's step count 0)."""
    model = small_mlp()
    x, y = data()
    opt = Adam(model.trainable_params(), lr=1e-2)
    before = {k: v.copy() for k, v in model.params.items()}
    loss, gone = train_step(model, opt, x, y, start=1e-12)
    assert gone and loss > diverge.DIVERGED * 1e-12 and opt.t == 0
    assert all(np.array_equal(model.params[k], before[k]) for k in before)
    loss, gone = train_step(model, opt, x, y)  # start None: its own loss, so no divergence
    assert not gone and opt.t == 1


def test_retire_zeroes_only_the_retired_models_of_a_stack():
    """`retire` sets a retired model's factors, gradients, Adam moments and per-model rate to 0
    and touches no number of the others; through later `train_step`s it stays exactly 0."""
    model = small_mlp(stack=(3,))
    x, y = data()
    opt = Adam(model.trainable_params(), lr=np.array([1e-2, 2e-2, 3e-2]).reshape(3, 1, 1))
    retired = np.zeros(3, dtype=bool)
    for _ in range(2):
        train_step(model, opt, x, y, retired=retired)
    _, grads = loss_and_grads(model, x, y)
    keep = {k: model.params[k][[0, 2]].copy() for k in model.trainable}
    retire(opt, grads, [False, True, False])
    for k in model.trainable:
        arrays = [model.params[k], grads[k], *opt.state[k].values()]
        assert all(not a[1].any() for a in arrays)
        assert np.array_equal(model.params[k][[0, 2]], keep[k])
    assert [float(v) for v in opt.groups[0]["lr"].ravel()] == [1e-2, 0.0, 3e-2]
    retired[1] = True
    for _ in range(3):
        train_step(model, opt, x, y, retired=retired)
    assert all(not model.params[k][1].any() for k in model.trainable)


def test_a_stack_refuses_a_global_clip():
    """Clipping by the global norm would mix the stack's models: `train_step` refuses it."""
    model = small_mlp(stack=(2,))
    x, y = data()
    with pytest.raises(ValueError, match="clip: expected None for a stack"):
        train_step(model, Adam(model.trainable_params()), x, y, clip=1.0,
                   retired=np.zeros(2, dtype=bool))


def test_retire_with_a_bare_true_zeroes_an_unstacked_model_and_its_rates():
    """An unstacked model (the grid's one-by-one reference) is retired whole: factors,
    gradients, moments and its float rates to 0; ``False`` changes nothing."""
    model = small_mlp()
    x, y = data()
    opt = Adam(model.trainable_params(), lr=1e-2)
    train_step(model, opt, x, y)
    _, grads = loss_and_grads(model, x, y)
    before = {k: model.params[k].copy() for k in model.trainable}
    retire(opt, grads, False)
    assert all(np.array_equal(model.params[k], before[k]) for k in before)
    retire(opt, grads, True)
    for k in model.trainable:
        assert not any(a.any() for a in [model.params[k], grads[k], *opt.state[k].values()])
    assert [g["lr"] for g in opt.groups] == [0.0]
