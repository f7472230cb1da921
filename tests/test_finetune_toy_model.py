"""tinylora.lab.finetune_toy_model and the toy's tasks: the cached toy computes exactly what the
LoRA MLP computes; the teacher target moves by RMS 1 and a rank-2 LoRA fits it exactly."""

import numpy as np
import pytest

from tinylora import backend
from tinylora.lab.finetune_toy import SHIFT_RANK, teacher_shift, toy_task
from tinylora.lab.finetune_toy_model import ToyModel
from tinylora.train import loss_and_grads


@pytest.mark.parametrize("stack", [(), (3,)])
@pytest.mark.parametrize("init", ["zero_B", "zero_A"])
def test_cached_toy_equals_the_lora_mlp(init, stack):
    """Same task, the frozen part cached or not: the same loss and gradients to the last bit,
    with random non-zero factors (at the init B = 0 or A = 0 would hide a wrong gradient)."""
    plain = toy_task(32, init=init, target="teacher", n_train=16, n_test=8)
    cached = toy_task(32, init=init, target="teacher", n_train=16, n_test=8, cached=True)
    a, b = plain.build(stack), cached.build(stack)
    rng = np.random.default_rng(0)
    for k in ("fc2.A", "fc2.B"):
        a.params[k][...] = b.params[k][...] = rng.standard_normal(a.params[k].shape)
    for x, y in ((plain.x_train, plain.y_train), (plain.x_test, plain.y_test)):
        xb = cached.x_train if x is plain.x_train else cached.x_test
        (la, ga), (lb, gb) = loss_and_grads(a, x, y), loss_and_grads(b, xb, y)
        np.testing.assert_allclose(lb, la, rtol=1e-13)
        for k in ga:
            np.testing.assert_allclose(gb[k], ga[k], rtol=1e-12, atol=1e-15)


def test_the_init_of_each_variant():
    """Init[1]: B = 0 and A random; Init[2]: A = 0 and B ~ N(0, 1); the paper's: both random."""
    for init, zero in (("zero_B", "fc2.B"), ("zero_A", "fc2.A")):
        factors = toy_task(64, init=init, n_train=4, n_test=2).adapter_init(0)
        assert not np.any(factors[zero])
        other = factors["fc2.A" if zero == "fc2.B" else "fc2.B"]
        assert np.all(other != 0)
    paper = toy_task(64, variant="paper", n_train=4, n_test=2).adapter_init(0)
    assert all(np.all(v != 0) for v in paper.values())


@pytest.mark.parametrize("readout", ["sp", "mup"])
def test_teacher_moves_the_target_by_rms_one(readout):
    """The teacher's target differs from the frozen model's output by RMS 1 on the training
    points, for both readouts and at two widths: the same size of task at every width."""
    for width in (32, 256):
        task = toy_task(width, target="teacher", readout=readout, n_train=64, n_test=16)
        f0, _ = task.build(()).forward(task.x_train)
        assert float(np.sqrt(((task.y_train - f0) ** 2).mean())) == pytest.approx(1.0, rel=1e-6)


def test_the_layer_convention_holds_the_layers_change_and_the_target_shrinks_under_mup():
    """held="layer": the teacher moves the layer's pre-activation by its own RMS at every width
    (RMS(h dW) = RMS(h W_mid)); the target then moves by less under mup, about like n^-1/2
    (mean of 4 seeds: a factor 3 to 6 from n = 64 to 1024, sqrt(16) = 4), and by Theta(1)
    under sp. The default (held "output") draws the same U and V: the two teachers differ only
    in alpha."""
    moved = {}
    for readout in ("sp", "mup"):
        for width in (64, 1024):
            sizes = []
            for seed in range(4):
                task = toy_task(width, target="teacher", readout=readout, n_train=64,
                                n_test=16, held="layer", model_seed=seed)
                f0, _ = task.build(()).forward(task.x_train)
                sizes.append(float(np.sqrt(((task.y_train - f0) ** 2).mean())))
            moved[readout, width] = np.mean(sizes)
    assert 3 < moved["mup", 64] / moved["mup", 1024] < 6
    assert 0.5 < moved["sp", 1024] < 2 and 0.5 < moved["sp", 64] < 2
    rng, n = backend.host_rng(1), 32
    weights = [backend.normal(rng, (5, n), 1.0, np), backend.normal(rng, (n, n), n**-0.5, np),
               backend.normal(rng, (n, 1), 1.0 / n, np)]
    x = backend.normal(rng, (64, 5), 1.0, np)
    layer = teacher_shift(backend.host_rng(2), weights, x, held="layer")
    output = teacher_shift(backend.host_rng(2), weights, x)
    h = np.maximum(x @ weights[0], 0)
    rms = lambda a: float(np.sqrt((a**2).mean()))  # noqa: E731
    assert rms(h @ (layer - weights[1])) == pytest.approx(rms(h @ weights[1]), rel=1e-10)
    d_layer, d_output = layer - weights[1], output - weights[1]
    assert abs(float((d_layer * d_output).sum())) == pytest.approx(
        float(np.linalg.norm(d_layer) * np.linalg.norm(d_output)), rel=1e-10)  # parallel


def test_a_rank_two_lora_fits_the_teacher_exactly():
    """The planted change of W_mid has rank 2, so LoRA factors built from it reproduce the
    teacher's outputs: the loss floor is 0 (what the sweep's "loss / start" is measured against)."""
    rng = backend.host_rng(3)
    n, xp = 48, np
    weights = [backend.normal(rng, (5, n), 1.0, xp), backend.normal(rng, (n, n), n**-0.5, xp),
               backend.normal(rng, (n, 1), n**-0.5, xp)]
    x = backend.normal(rng, (64, 5), 1.0, xp)
    w_teacher = teacher_shift(rng, weights, x)
    u, s, vt = np.linalg.svd(w_teacher - weights[1])
    assert np.sum(s > 1e-9 * s[0]) == SHIFT_RANK
    A = np.zeros((n, 4))
    A[:, :SHIFT_RANK] = u[:, :SHIFT_RANK] * s[:SHIFT_RANK]
    B = np.zeros((4, n))
    B[:SHIFT_RANK] = vt[:SHIFT_RANK]
    f, _ = ToyModel(weights, A, B).forward(x)
    y = np.maximum(np.maximum(x @ weights[0], 0) @ w_teacher, 0) @ weights[2]
    np.testing.assert_allclose(f, y, rtol=1e-10, atol=1e-12)


def test_a_fresh_toy_model_is_not_merged_and_loads_another_toys_adapter(tmp_path):
    """ToyModel's cached frozen inputs do not shadow `LoRAModel._frozen` (the weights `merge`
    keeps): a fresh cached toy reports ``merged == False`` and loads an adapter saved from another
    ToyModel, bit for bit."""
    task = toy_task(16, init="zero_A", n_train=8, n_test=4, cached=True)
    source, target = task.build(()), task.build(())
    assert isinstance(target, ToyModel) and not target.merged
    source.params["fc2.A"][...] = np.random.default_rng(1).standard_normal((16, 4))
    path = source.save(tmp_path / "toy_adapter.npz")
    target.load(path)
    for k in ("fc2.A", "fc2.B"):
        np.testing.assert_array_equal(target.params[k], source.params[k])
