"""tinylora.lab.alignment: how far A's Adam step lines up with its inputs, on inputs whose answer
is known (random zero-mean tokens, more and fewer than the width; inputs that share a
direction), and in a model, against the step Adam actually takes."""

import math

import numpy as np
import pytest

from tinylora.lab import alignment, coordcheck
from tinylora.lab.deltas import projection_inputs
from tinylora.lab.finetune_toy import toy_task
from tinylora.lab.fit import loglog_slope
from tinylora.optim import Adam
from tinylora.train import loss_and_grads

WIDTHS = [32, 64, 128, 256, 512]


def _slope(tokens, make, seeds=4):
    """The alignment's exponent over WIDTHS for inputs from `make(rng, tokens, n)` and a
    random G (mean over seeds)."""
    values = []
    for n in WIDTHS:
        rngs = [np.random.default_rng([s, n]) for s in range(seeds)]
        values.append(np.mean([alignment.alignment(make(r, tokens, n),
                                                   r.standard_normal((tokens, 4)))
                               for r in rngs]))
    return loglog_slope(WIDTHS, values).slope


def _gaussian(rng, tokens, n):
    return rng.standard_normal((tokens, n))


def test_a_sign_step_random_to_its_inputs_adds_like_sqrt_n():
    """4096 independent zero-mean tokens, n = 32..512 well below them: sign(Z^T G) is nearly
    random to each token, and RMS(Z sign(Z^T G)) / RMS(Z) grows like n^1/2 (within 0.07)."""
    assert _slope(4096, _gaussian) == pytest.approx(0.5, abs=0.07)


def test_a_sign_step_lines_up_when_the_width_passes_the_tokens():
    """8 tokens, n = 32..512 well above them: each sign follows the tokens' own Z, the n terms
    share a sign, and the alignment grows like n (within 0.1)."""
    assert _slope(8, _gaussian) == pytest.approx(1.0, abs=0.1)


def test_alignment_is_one_where_every_sign_is_zs_own_and_sqrt_n_where_none_is():
    """One token: Z sign(Z^T G) = sum |z_i| = n mean|z| exactly (alignment n mean|z| / RMS(z));
    sign patterns drawn apart from Z give sqrt(n) (RMS over 256 of them, within 10 %)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1, 1024))
    g = np.ones((1, 1))
    assert alignment.alignment(z, g) == pytest.approx(np.abs(z).sum() / np.sqrt((z**2).mean()))
    S = np.sign(rng.standard_normal((1024, 256)))
    assert alignment._relative(z, S) / math.sqrt(1024) == pytest.approx(1.0, abs=0.1)


def test_first_step_measures_the_sign_adam_takes_at_step_2():
    """Under Init[1] A first moves at step 2: `first_step`'s sign pattern is the one of A's real
    second Adam step (eta_B small), so its alignment is RMS(Z dA_2) / (eta_A RMS(Z)) up to
    Adam's constant at t = 2."""
    setup = coordcheck.block_setup(32, 0, dtype="float64")
    measured = alignment.first_step(setup)
    setup = coordcheck.block_setup(32, 0, dtype="float64")
    model = setup.model
    opt = Adam(model.trainable_params(), lr=1e-7)
    for _ in range(2):
        A0 = {t: model.params[f"{t}.A"].copy() for t in model.targets}
        _, grads = loss_and_grads(model, setup.x, setup.y)
        opt.step(grads)
    Z = projection_inputs(model, model.forward(setup.x)[1])
    for t in model.targets:
        step = np.sign(A0[t] - model.params[f"{t}.A"])  # -sign of the step = sign(dA)
        assert alignment._relative(Z[t], step) == pytest.approx(measured[t], rel=1e-4), t


def test_the_toys_relu_features_line_up_like_n():
    """The fine-tuning toy's ReLU features share a direction (a positive mean): A's first step
    lines up with them like n^1 (within 0.1) over n = 256..2048 with 64 points, as the
    counting assumes; the block's layer-normed tokens do not (`test_balance`)."""
    widths, values = [256, 512, 1024, 2048], []
    for n in widths:
        per_seed = []
        for seed in range(3):
            task = toy_task(n, "finetune", "adam", steps=1, record_steps=(), n_train=64,
                            n_test=1, model_seed=seed, cached=True)
            model = task.build((1,))
            for k, v in task.adapter_init(seed).items():
                model.params[k][...] = v
            setup = coordcheck.CoordSetup(model, task.x_train, task.y_train, projection_inputs)
            per_seed.append(alignment.first_step(setup)["fc2"])
        values.append(np.mean(per_seed))
    assert loglog_slope(widths, values).slope == pytest.approx(1.0, abs=0.1)


def test_local_exponents_are_the_slopes_between_neighbours():
    """n^0.5 then n^1: local exponents 0.5 and 1; a missing value gives None."""
    assert alignment.local_exponents([1, 4, 16], [1.0, 2.0, 8.0]) == pytest.approx([0.5, 1.0])
    assert alignment.local_exponents([1, 4, 16], [1.0, None, 8.0]) == [None, None]
