"""The optimizers follow PyTorch's documented equations; LoRA+ is just B's learning rate."""

import math

import numpy as np
import pytest

from tinylora.groups import loraplus_groups
from tinylora.optim import SGD, Adam, AdamW, make_optimizer


def _reference_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    """An independent float64 re-implementation, written from the equations, loop by loop."""
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("cls, decoupled, wd", [(Adam, False, 0.0), (Adam, False, 0.1),
                                                 (AdamW, True, 0.1)])
def test_adam_and_adamw_match_the_equations_over_several_steps(cls, decoupled, wd):
    """Bias correction on both moments, eps after the correction, t from 1, and AdamW's decay
    decoupled before the moment update: agreement to float64 round-off after 6 steps."""
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(6)]
    params = {"w": p0.copy()}
    opt = cls(params, lr=0.01, weight_decay=wd)
    for g in grads:
        opt.step({"w": g})
    expected = _reference_adam(p0, grads, 0.01, wd=wd, decoupled=decoupled)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-13, atol=1e-15)


def test_adam_first_step_is_sign_like():
    """At t = 1 the bias corrections cancel: the step is exactly -lr * g / (|g| + eps)."""
    g = np.array([[3.0, -1e-3], [0.5, -20.0]])
    params = {"w": np.zeros_like(g)}
    Adam(params, lr=0.1).step({"w": g})
    np.testing.assert_allclose(params["w"], -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_loraplus_moves_B_lr_ratio_times_as_far_as_A():
    """With loraplus_groups and one Adam step, every B entry moves lr_ratio times as far as an
    A entry with a gradient of the same sign and size: LoRA+ changes B's rate and nothing else."""
    g = np.array([[0.7, -0.2], [1.5, -3.0]])
    params = {"fc1.A": np.zeros((2, 2)), "fc1.B": np.zeros((2, 2))}
    opt = Adam(params, groups=loraplus_groups(params, lr=1e-3, lr_ratio=16.0))
    opt.step({"fc1.A": g, "fc1.B": g})
    np.testing.assert_allclose(params["fc1.B"], 16.0 * params["fc1.A"], rtol=1e-12)
    assert np.all(np.sign(params["fc1.B"]) == -np.sign(g))


def test_loraplus_groups_put_every_B_in_the_fast_group():
    """Keys ending in .B (any depth) go to lr * ratio; every other key stays at lr."""
    keys = ["fc1.A", "fc1.B", "blocks.0.attn.q.A", "blocks.0.attn.q.B", "ln.g"]
    slow, fast = loraplus_groups(keys, lr=2e-4, lr_ratio=16)
    assert fast["params"] == ["fc1.B", "blocks.0.attn.q.B"] and math.isclose(fast["lr"], 3.2e-3)
    assert slow["params"] == ["fc1.A", "blocks.0.attn.q.A", "ln.g"] and slow["lr"] == 2e-4


def test_sgd_with_momentum_matches_pytorch_form():
    """v = mu v + g (v = g at the first step), p -= lr v."""
    params = {"w": np.array([1.0, -2.0])}
    opt = SGD(params, lr=0.1, momentum=0.9)
    g1, g2 = np.array([1.0, 2.0]), np.array([-1.0, 0.5])
    opt.step({"w": g1})
    opt.step({"w": g2})
    v2 = 0.9 * g1 + g2
    np.testing.assert_allclose(params["w"], np.array([1.0, -2.0]) - 0.1 * g1 - 0.1 * v2)


def test_optimizer_state_is_allocated_once_and_updates_are_in_place():
    """The same state and parameter arrays live across steps: no per-step allocation."""
    w = np.ones((3, 2))
    params = {"w": w}
    opt = Adam(params, lr=0.1)
    opt.step({"w": np.ones((3, 2))})
    m = opt.state["w"]["m"]
    opt.step({"w": np.ones((3, 2))})
    assert opt.state["w"]["m"] is m and params["w"] is w and not np.all(w == 1.0)


def test_per_model_learning_rates_broadcast_over_a_stack():
    """A learning-rate array of shape (S, 1, 1) gives each stacked model its own rate."""
    g = np.ones((3, 2, 2))
    params = {"w": np.zeros((3, 2, 2))}
    Adam(params, lr=np.array([1.0, 2.0, 4.0]).reshape(3, 1, 1)).step({"w": g})
    np.testing.assert_allclose(params["w"][:, 0, 0], -np.array([1.0, 2.0, 4.0]), rtol=1e-7)


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), -1e-3, None])
def test_non_finite_or_negative_learning_rates_are_refused(lr):
    """A NaN, infinite or negative learning rate is an error naming lr, not a silent NaN run."""
    with pytest.raises(ValueError, match="lr: expected a finite learning rate >= 0"):
        Adam({"w": np.zeros(2)}, lr=lr)


@pytest.mark.parametrize("ratio", [0.0, -16.0, float("nan")])
def test_lr_ratio_must_be_positive(ratio):
    """lr_ratio <= 0 (or NaN) makes no sense for a ratio of learning rates: refused."""
    with pytest.raises(ValueError, match="lr_ratio: expected a finite number > 0"):
        loraplus_groups(["fc1.A", "fc1.B"], lr=1e-3, lr_ratio=ratio)


def test_groups_must_cover_every_parameter_once():
    """A parameter in no group, or in two, is an error: every array trains at a known rate."""
    params = {"a": np.zeros(1), "b": np.zeros(1)}
    with pytest.raises(ValueError, match=r"parameters \['b'\] are in no group"):
        Adam(params, groups=[{"params": ["a"], "lr": 1e-3}])
    with pytest.raises(ValueError, match="in two groups"):
        Adam(params, groups=[{"params": ["a", "b"]}, {"params": ["b"]}])


def test_unknown_optimizer_lists_the_valid_ones():
    """make_optimizer('adagrad') lists sgd, adam and adamw."""
    with pytest.raises(ValueError, match=r"optimizer: expected one of \['adam', 'adamw', 'sgd'\]"):
        make_optimizer("adagrad", {"w": np.zeros(1)})
