"""Warm-up and decay applied to every group, and global-norm clipping (tinylora.schedule)."""

import math

import numpy as np
import pytest

from tinylora.groups import loraplus_groups
from tinylora.optim import Adam
from tinylora.schedule import Schedule, clip_grad_norm, global_norm, lr_factor
from tinylora.text.pretrain import LR_FLOOR, pretrain_config


def _opt(lr_ratio=16.0):
    params = {"fc1.A": np.zeros((3, 2)), "fc1.B": np.zeros((2, 3)), "fc1.b": np.zeros(3)}
    return Adam(params, groups=loraplus_groups(params, 1e-3, lr_ratio, rule="peft"))


@pytest.mark.parametrize("decay", ["constant", "cosine", "linear"])
def test_schedule_keeps_the_loraplus_ratio_at_every_step(decay):
    """Every group is scaled by the same factor, so lr_B / lr_A = lambda at every step of a
    warmed-up, decaying run."""
    opt, total = _opt(16.0), 30
    sched = Schedule(opt, total=total, warmup=5, decay=decay)
    for t in range(total):
        sched.apply(t)
        lrs = {g["name"]: g["lr"] for g in opt.groups}
        if t > 0:
            assert math.isclose(lrs["B"] / lrs["A"], 16.0, rel_tol=1e-12)
            assert math.isclose(lrs["B (no decay)"], lrs["B"], rel_tol=1e-12)


def test_warmup_rises_linearly_from_zero():
    """Hugging Face's warm-up: factor t / warmup, 0 at the first step, 1 at the end of it."""
    assert [lr_factor(t, 10, warmup=4) for t in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_cosine_and_linear_decay_follow_their_formulas():
    """After the warm-up, cosine is (1 + cos(pi p)) / 2 and linear is 1 - p, with
    p = (t - warmup) / (total - warmup); both start at 1 and fall monotonically."""
    total, warmup = 20, 4
    for t in range(warmup, total):
        p = (t - warmup) / (total - warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * p))
        assert math.isclose(lr_factor(t, total, warmup, "cosine"), cosine)
        assert math.isclose(lr_factor(t, total, warmup, "linear"), 1 - p)
    for decay in ("cosine", "linear"):
        f = [lr_factor(t, total, warmup, decay) for t in range(warmup, total)]
        assert f[0] == 1.0 and all(a > b for a, b in zip(f, f[1:]))


def test_constant_schedule_without_warmup_is_todays_behaviour():
    """The default (warm-up 0, constant) leaves every group's rate exactly as it was."""
    opt = _opt()
    before = [g["lr"] for g in opt.groups]
    sched = Schedule(opt, total=10)
    for t in range(10):
        sched.apply(t)
        assert [g["lr"] for g in opt.groups] == before


def test_clipping_scales_the_global_norm_down_to_max_norm():
    """Above max_norm every gradient is scaled by the same factor (direction kept) and the
    global norm becomes max_norm; at or below it nothing changes."""
    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(4)}
    copy = {k: v.copy() for k, v in grads.items()}
    norm = clip_grad_norm(grads, 0.5)
    assert math.isclose(norm, global_norm(copy)) and norm > 0.5
    assert math.isclose(global_norm(grads), 0.5, rel_tol=1e-5)
    np.testing.assert_allclose(grads["a"] / copy["a"], 0.5 / (norm + 1e-6), rtol=1e-12)
    small = {k: v.copy() for k, v in grads.items()}
    clip_grad_norm(small, 10.0)
    assert all(np.array_equal(small[k], grads[k]) for k in grads)


@pytest.mark.parametrize("make, message", [
    (lambda: Schedule(_opt(), total=10, warmup=11),
     r"warmup: expected an integer in \[0, 10\] \(at most the run's 10 steps\), got 11"),
    (lambda: Schedule(_opt(), total=10, decay="exp"),
     r"decay: expected one of \['constant', 'cosine', 'linear'\], got 'exp'"),
    (lambda: clip_grad_norm({"a": np.ones(2)}, 0.0), "max_norm: expected a finite number > 0"),
    (lambda: clip_grad_norm({"a": np.ones(2)}, -1.0), "max_norm: expected a finite number > 0"),
])
def test_bad_schedule_arguments_are_clear_errors(make, message):
    """A warm-up longer than the run, an unknown decay, a clipping norm <= 0: clear errors."""
    with pytest.raises(ValueError, match=message):
        make()


def test_a_cosine_to_a_floor_is_pretrainings_old_rate_bit_for_bit():
    """`Schedule(decay="cosine", floor=0.1)` over every step of a default pretraining run gives
    exactly the rate pretraining computed by hand before, lr (0.1 + 0.45 (1 + cos(pi t / T))):
    (1 - 0.1) * 0.5 == 0.45 and halving is exact, so nothing recorded moves."""
    for config in (pretrain_config(64), pretrain_config(64, fast=True)):
        opt = Adam({"w": np.zeros(2)}, lr=config.lr)
        sched = Schedule(opt, config.steps, decay="cosine", floor=LR_FLOOR)
        for t in range(config.steps):
            sched.apply(t)
            old = config.lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * t / max(1, config.steps))))
            assert opt.groups[0]["lr"] == old, (config.steps, t)


def test_a_floor_is_where_each_decay_ends():
    """floor f: cosine and linear fall from 1 towards f (0: today's decays, unchanged), and a
    floor outside [0, 1) is refused."""
    for t in range(10):
        for decay in ("cosine", "linear"):
            assert lr_factor(t, 10, 0, decay, floor=0.0) == lr_factor(t, 10, 0, decay)
    assert lr_factor(9, 10, 0, "linear", floor=0.5) == pytest.approx(0.55)
    assert lr_factor(0, 10, 0, "cosine", floor=0.5) == 1.0
    with pytest.raises(ValueError, match=r"floor: expected a finite number in \[0, 1\)"):
        Schedule(_opt(), total=10, decay="cosine", floor=1.0)
