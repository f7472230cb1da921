"""The optimizer's step decided on the device (`tinylora.fast.optim`), proven on the CPU.

The fast step judges the gradients where they are and reads the answer on the host only at
`settle`. Here NumPy stands in for the GPU: the twins take their device path (`on_host` says no)
with the CUDA kernels replaced by NumPy lines that keep the kernels' rule (write nothing unless
status[0] == 0), and the arrays are `NoRead` arrays, which fail the test when anything reads a
value on the host (`bool`, `float`, `int`, `.item()`): what a GPU would pay a synchronisation for.
The kernels themselves are checked against the reference on a GPU (`tests/test_cuda_kernels.py`).
"""

import numpy as np
import pytest

import tinylora
import tinylora.fast
from tinylora import LoRAConfig, LoRAMLP, MLPConfig, backend, optim
from tinylora.fast import cuda
from tinylora.fast import optim as fast_optim
from tinylora.fast import validate as fast_validate
from tinylora.train import loss_and_grads, train_step


class NoRead(np.ndarray):
    """A NumPy array whose values may not be read on the host (each read raises)."""

    def _read(self, *args, **kwargs):
        raise AssertionError("a value was read on the host inside the step")

    __bool__ = __float__ = __int__ = __index__ = item = tolist = _read


def fake_count(x, out=None):
    """`cuda.count_nonfinite` in NumPy."""
    n = np.count_nonzero(~np.isfinite(np.asarray(x)))
    if out is None:
        return np.asarray(n, dtype=np.int64)
    out[...] = n
    return out


def fake_adam(p, g, m, v, lr, beta1, beta2, eps, t, wd, decoupled, status):
    """`cuda.adam` in NumPy: `Adam._update`'s lines, only while status[0] == 0."""
    if status[0] != 0:
        return
    p, g, m, v = (np.asarray(a) for a in (p, g, m, v))  # views: the writes land in the arrays
    if decoupled:
        p -= lr * wd * p
    else:
        g = g + wd * p
    optim.adam_update.reference(p, g, m, v, lr, beta1, beta2, eps, t)


def fake_sgd(p, g, buf, lr, wd, momentum, first, status):
    """`cuda.sgd` in NumPy: `SGD._update`'s lines, only while status[0] == 0."""
    if status[0] != 0:
        return
    p, g = np.asarray(p), np.asarray(g) + wd * np.asarray(p)
    if buf is not None:
        buf[...] = g if first else momentum * np.asarray(buf) + g
        g = np.asarray(buf)
    p -= lr * g


@pytest.fixture
def device(monkeypatch):
    """Fast mode with NumPy standing in for a GPU (the device path, NumPy kernels)."""
    for module in (fast_optim, fast_validate):
        monkeypatch.setattr(module, "on_host", lambda xp: False)
    monkeypatch.setattr(cuda, "count_nonfinite", fake_count)
    monkeypatch.setattr(cuda, "adam", fake_adam)
    monkeypatch.setattr(cuda, "sgd", fake_sgd)
    with tinylora.fast.enabled():
        yield
    fast_validate._pending.clear()


OPTIMIZERS = {"adam": lambda p: optim.Adam(p, lr=0.05, weight_decay=0.01),
              "adamw": lambda p: optim.AdamW(p, lr=0.05),
              "sgd_momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01)}


def setup(make_opt, no_read=False):
    """A LoRA MLP with a random non-zero B, its data and an optimizer (NoRead arrays if asked)."""
    model = LoRAMLP(MLPConfig(6, [8], 3), LoRAConfig(r=2), seed=1)
    rng = np.random.default_rng(2)
    for k in model.adapter_keys():
        model.params[k][...] = rng.standard_normal(model.params[k].shape)
    x, y = rng.standard_normal((16, 6)), rng.standard_normal((16, 3))
    if no_read:
        model.params = {k: v.view(NoRead) for k, v in model.params.items()}
        x, y = x.view(NoRead), y.view(NoRead)
    return model, make_opt(model.trainable_params()), x, y


def snapshot(model, opt):
    state = {k: np.array(v) for k, v in model.params.items()}
    state["t"] = opt.t
    state.update({f"state.{k}.{n}": np.array(a) for k, s in opt.state.items()
                  for n, a in s.items()})
    return state


def assert_same(a, b, rtol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=0, err_msg=k)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_device_step_reads_nothing_on_the_host_and_updates_as_the_reference(device, name):
    """Five steps (forward, backward, the fast step) on arrays that refuse every host read: no
    value is read, and the parameters, moments and t equal the reference's after the steps."""
    model, opt, x, y = setup(OPTIMIZERS[name], no_read=True)
    for _ in range(5):
        _, grads = loss_and_grads(model, x, y)
        opt.step(grads)
    opt.settle()  # the read point: nothing refused
    ref_model, ref_opt, rx, ry = setup(OPTIMIZERS[name])
    with tinylora.fast.enabled(False):
        for _ in range(5):
            ref_opt.step(loss_and_grads(ref_model, rx, ry)[1])
    assert_same(snapshot(model, opt), snapshot(ref_model, ref_opt), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_refused_device_step_and_those_after_it_write_nothing(device, name):
    """A NaN in the last gradient at step 4, then two finite steps before anything is read:
    none of the three writes (a refusal holds until the host reads it); `settle` raises the
    reference's error, naming the gradient, and t is back at 3; the next step is step 4."""
    model, opt, x, y = setup(OPTIMIZERS[name], no_read=True)
    for _ in range(3):
        opt.step(loss_and_grads(model, x, y)[1])
    opt.settle()
    before = snapshot(model, opt)
    keys = list(model.trainable)
    for t in range(3):
        grads = loss_and_grads(model, x, y)[1]
        if t == 0:
            np.asarray(grads[keys[-1]])[0, 1] = np.nan
        opt.step(grads)
    assert opt.t == 6  # tentative, until the host reads
    with pytest.raises(ValueError) as err:
        opt.settle()
    p = model.params[keys[-1]]
    assert str(err.value) == (f"grads['{keys[-1]}']: expected finite values, got 1 NaN or inf "
                              f"of {p.size} ({tinylora.validate.describe(p)})")
    assert_same(snapshot(model, opt), before)
    opt.step(loss_and_grads(model, x, y)[1])
    opt.settle()
    assert opt.t == 4


def test_a_refused_first_step_leaves_no_optimizer_state(device):
    """A refused first step: after settle, t is 0 and the optimizer holds no moments, as the
    reference leaves it."""
    model, opt, x, y = setup(OPTIMIZERS["adam"])
    grads = loss_and_grads(model, x, y)[1]
    grads[model.trainable[0]][0, 0] = np.inf
    opt.step(grads)
    with pytest.raises(ValueError, match=r"got 1 NaN or inf"):
        opt.settle()
    assert opt.t == 0 and opt.state == {}


def test_an_unsettled_refusal_is_reported_within_settle_every_steps():
    """A caller that never settles (plain fast mode on NumPy): a refused step is reported by the
    SETTLE_EVERY-th step since the last read, and t is the one before the refused step."""
    model, opt, x, y = setup(OPTIMIZERS["adam"])
    with tinylora.fast.enabled():
        opt.step(loss_and_grads(model, x, y)[1])
        opt.settle()
        grads = loss_and_grads(model, x, y)[1]
        grads[model.trainable[0]][...] = np.nan
        opt.step(grads)  # step 2: refused, not yet reported
        taken = []
        with pytest.raises(ValueError, match=r"grads\['fc1.A'\]: .* got 12 NaN or inf of 12"):
            while len(taken) <= fast_optim.SETTLE_EVERY:
                opt.step(loss_and_grads(model, x, y)[1])
                taken.append(1)
    assert len(taken) == fast_optim.SETTLE_EVERY - 2 and opt.t == 1


def test_train_step_reports_a_non_finite_input_as_an_error_not_a_divergence(device):
    """On a device the check of x is deferred; `train_step` settles with the loss it reads, so a
    NaN in x is still the reference's error (x's, not the gradients') and nothing is written."""
    model, opt, x, y = setup(OPTIMIZERS["adam"])
    before = snapshot(model, opt)
    x = x.copy()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"^x: expected finite values, got 1 NaN or inf of 96"):
        for _ in range(2):
            train_step(model, opt, x, y)
    assert_same(snapshot(model, opt), before)


def test_deferred_checks_are_read_together_in_order_and_never_pile_up(device, monkeypatch):
    """Deferred checks raise at the next read point in the order they were made (the first bad
    one), and are read as soon as PENDING_LIMIT wait."""
    reads = []
    monkeypatch.setattr(backend, "to_numpy", lambda a: reads.append(1) or np.asarray(a))
    bad = np.array([1.0, np.nan, np.inf])
    for name, x in (("a", np.ones(3)), ("b", bad), ("c", bad[:1] * np.nan)):
        fast_validate.defer_finite(x, name)
    assert reads == []
    with pytest.raises(ValueError, match=r"^b: expected finite values, got 2 NaN or inf of 3"):
        tinylora.validate.all_finite([np.ones(2)])  # a read point
    assert reads == [1] and fast_validate._pending == []
    for i in range(fast_validate.PENDING_LIMIT - 1):
        fast_validate.defer_finite(np.ones(2), f"x{i}")
    assert reads == [1]
    fast_validate.defer_finite(np.ones(2), "last")
    assert reads == [1, 1] and fast_validate._pending == []


def test_merge_keeps_the_first_refusal_until_it_is_read():
    """merge writes (t, counts) only for the first step with a bad value since the last read."""
    status = np.zeros(3, dtype=np.int64)
    fast_optim.merge(status, np.array([0, 0]), 1)
    assert status.tolist() == [0, 0, 0]
    fast_optim.merge(status, np.array([0, 2]), 2)
    fast_optim.merge(status, np.array([5, 0]), 3)
    assert status.tolist() == [2, 0, 2]
