"""tinylora.lab.grid: many (eta_A, eta_B) cells and seeds trained at once, exactly as one by one."""

import math

import numpy as np
import pytest

from tinylora.lab import grid
from tinylora.lab.finetune_toy import seeded_tasks, toy_task
from tinylora.train import loss_and_grads

CELLS = [(1e-3, 1e-2), (3e-3, 1e-3), (1e-2, 1e-1)]


def _task(optimizer="adam", variant="finetune", steps=6, **kw):
    return toy_task(16, variant, optimizer, steps, (0, 3, steps), n_train=24, n_test=8, **kw)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_batched_equals_one_by_one(optimizer):
    """Every cell x seed of a stacked run has the losses it gets when trained alone
    (float64, up to summation order): a grid is S independent models, not a mixture."""
    task = _task(optimizer)
    batched = grid.train_cells(task, CELLS, seeds=[0, 1])
    alone = grid.train_one_by_one(task, CELLS, seeds=[0, 1])
    for which in (0, 1):  # train, test
        np.testing.assert_allclose(batched[which], alone[which], rtol=1e-10, atol=1e-14)
    assert len(batched[0]) == 3 and len(batched[0][0]) == 2 and len(batched[0][0][0]) == 3


def test_chunking_does_not_change_the_numbers():
    """Splitting the stack into chunks of any size gives the same losses."""
    task = _task()
    whole = grid.train_cells(task, CELLS, seeds=[0, 1], chunk=6)
    pieces = grid.train_cells(task, CELLS, seeds=[0, 1], chunk=4)
    np.testing.assert_allclose(whole[0], pieces[0], rtol=1e-12)


def test_per_seed_tasks_batched_equals_one_by_one():
    """With a task per seed (own frozen model and data) batching still matches one by one,
    and different seeds really are different models."""
    tasks = seeded_tasks(width=16, variant="finetune", optimizer="adam", steps=5,
                         record_steps=(5,), n_train=24, n_test=8)
    batched = grid.train_cells(tasks, CELLS, seeds=[0, 1])
    alone = grid.train_one_by_one(tasks, CELLS, seeds=[0, 1])
    np.testing.assert_allclose(batched[0], alone[0], rtol=1e-10)
    assert batched[0][0][0] != batched[0][0][1]


def test_a_diverged_cell_is_recorded_as_inf_and_spares_the_others():
    """Gradient descent at eta = 1e4 blows up: its losses become inf (no exception), and the
    cells sharing its stack keep exactly the numbers they have alone."""
    task = _task("sgd", steps=8)
    cells = [(1e-2, 1e-2), (1e4, 1e4)]
    train, test = grid.train_cells(task, cells, seeds=[0])
    assert math.isinf(train[1][0][-1]) and math.isinf(test[1][0][-1])
    assert all(math.isfinite(v) for v in train[0][0])
    alone, _ = grid.train_one_by_one(task, cells[:1], seeds=[0])
    np.testing.assert_allclose(train[0], alone[0], rtol=1e-10)
    single, _ = grid.train_one_by_one(task, cells[1:], seeds=[0])  # the plain path too
    assert math.isinf(single[0][0][-1])


def test_learning_rates_sit_on_a_quarter_decade_lattice():
    """eta(k) = 10^(k/4); lattice(lo, hi) lists the k between, both ends included."""
    assert grid.eta(-8) == pytest.approx(1e-2) and grid.eta(2) == pytest.approx(10**0.5)
    assert grid.lattice(1e-2, 1e-1) == [-8, -7, -6, -5, -4]
    assert grid.lattice(1e-3, 1.0, per_decade=1) == [-3, -2, -1, 0]
    with pytest.raises(ValueError, match="lo, hi"):
        grid.lattice(1.0, 0.1)


def test_record_steps_are_checked():
    """Asking to record a step beyond the run's last step is an error, not a silent gap."""
    with pytest.raises(ValueError, match="record_steps"):
        toy_task(16, "finetune", "adam", 5, (10,))


def test_paper_variant_with_init1_cannot_learn():
    """docs/paper.md: with W_mid = 0 and B = 0 the ReLU sees exactly 0, so every gradient is zero -
    why the fine-tuning variant adds a frozen middle weight."""
    task = _task(variant="paper")
    model = task.build(())
    model.params["fc2.B"][...] = 0.0
    _, grads = loss_and_grads(model, task.x_train, task.y_train)
    assert all(float(np.abs(g).max()) == 0.0 for g in grads.values())
    finetune = _task(variant="finetune")
    model = finetune.build(())
    model.params["fc2.B"][...] = finetune.adapter_init(0)["fc2.B"]
    assert float(np.abs(model.params["fc2.B"]).max()) == 0.0  # Init[1]
    _, grads = loss_and_grads(model, finetune.x_train, finetune.y_train)
    assert float(np.abs(grads["fc2.B"]).max()) > 0.0


def test_toy_data_is_sin_of_the_mean():
    """Y = sin(mean(X)) over the d = 5 inputs (paper Eq. 3)."""
    task = _task()
    x, y = task.x_train, task.y_train
    assert x.shape == (24, 5) and y.shape == (24, 1)
    np.testing.assert_allclose(y[:, 0], np.sin(x.mean(axis=1)))


@pytest.mark.gpu
def test_cupy_grid_matches_numpy():
    """The same grid on CuPy: batched equals one by one there too, and equals NumPy's numbers
    (float64, up to the order of summation on the device)."""
    host = grid.train_cells(_task(), CELLS, seeds=[0, 1])
    task = _task(backend_name="cupy")
    device = grid.train_cells(task, CELLS, seeds=[0, 1])
    alone = grid.train_one_by_one(task, CELLS, seeds=[0, 1])
    np.testing.assert_allclose(device[0], alone[0], rtol=1e-10)
    np.testing.assert_allclose(device[0], host[0], rtol=1e-9)
    diverged, _ = grid.train_cells(_task("sgd", steps=8, backend_name="cupy"), [(1e4, 1e4)], [0])
    assert math.isinf(diverged[0][0][-1])


def test_readouts_scale_w_out_as_documented():
    """readout 'sp' (the paper's): W_out ~ N(0, 1/n); 'mup': W_out ~ N(0, 1/n^2)."""
    for readout, std in (("sp", 256**-0.5), ("mup", 1 / 256)):
        task = toy_task(256, "finetune", "adam", 2, (2,), n_train=4, n_test=2, readout=readout)
        w_out = task.build(()).params["fc3.W"]
        assert float(w_out.std()) == pytest.approx(std, rel=0.2)
    with pytest.raises(ValueError, match="readout"):
        toy_task(16, readout="ntk")
