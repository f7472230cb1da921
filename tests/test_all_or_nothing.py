"""Nothing half-done: a refused update or load leaves every array bit-identical.

The optimizers and the adapter loader check everything first and write afterwards. Each test
makes the *last* input the bad one (so a loop that wrote as it checked would already have written
the others), catches the error, and compares the whole state with a snapshot taken before.
"""

import numpy as np
import pytest

from tinylora import LoRAConfig, LoRAMLP, MLPConfig
from tinylora.optim import SGD, Adam, AdamW


def snapshot(model, opt=None):
    """Copies of every array of the model (and of the optimizer's state and step count)."""
    state = {k: v.copy() for k, v in model.params.items()}
    if opt is not None:
        state["t"] = opt.t
        state.update({f"state.{k}.{n}": a.copy() for k, s in opt.state.items()
                      for n, a in s.items()})
    return state


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def trained_model(make_opt):
    """A model with a random non-zero B, and an optimizer that has taken one step (so that it
    has state to protect)."""
    model = LoRAMLP(MLPConfig(6, 8, 3), LoRAConfig(r=2), seed=1)
    rng = np.random.default_rng(2)
    for k in model.adapter_keys():
        model.params[k][...] = rng.standard_normal(model.params[k].shape)
    opt = make_opt(model.trainable_params())
    opt.step({k: rng.standard_normal(p.shape) for k, p in model.trainable_params().items()})
    return model, opt


OPTIMIZERS = {"sgd_momentum": lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
              "adam": lambda p: Adam(p, lr=0.1, weight_decay=0.01),
              "adamw": lambda p: AdamW(p, lr=0.1)}


def bad_last_gradient(kind, p):
    """The bad gradient for parameter p (n, r): the wrong shape, a broadcastable (1, r), a NaN,
    complex numbers, or a nested list."""
    return {"shape": lambda: np.ones((p.shape[0] + 1, p.shape[1])),
            "broadcast": lambda: np.ones((1, p.shape[1])),
            "nan": lambda: np.where(np.eye(*p.shape) > 0, np.nan, 1.0),
            "complex": lambda: np.ones(p.shape) + 1j,
            "list": lambda: np.ones(p.shape).tolist()}[kind]()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("kind", ["shape", "broadcast", "nan", "complex", "list"])
def test_a_refused_step_changes_no_parameter_no_state_and_not_t(name, kind):
    """One bad gradient (the last key's) refuses the whole step: params, moments and t are
    bit-identical afterwards, and the error names that gradient."""
    model, opt = trained_model(OPTIMIZERS[name])
    keys = list(model.trainable)
    grads = {k: np.ones(model.params[k].shape) for k in keys}
    grads[keys[-1]] = bad_last_gradient(kind, model.params[keys[-1]])
    before = snapshot(model, opt)
    with pytest.raises(ValueError, match=rf"grads\['{keys[-1]}'\]: expected"):
        opt.step(grads)
    assert same(snapshot(model, opt), before)


def test_a_step_with_a_missing_gradient_changes_nothing():
    """A grads dict without one key is refused before any update."""
    model, opt = trained_model(OPTIMIZERS["adam"])
    grads = {k: np.ones(model.params[k].shape) for k in model.trainable[:-1]}
    before = snapshot(model, opt)
    with pytest.raises(ValueError, match="grads: expected a dict with keys"):
        opt.step(grads)
    assert same(snapshot(model, opt), before)


def saved_adapter(tmp_path, change=None):
    """Adapters of another seed saved to a file, with `change(arrays)` applied to the last one."""
    other = LoRAMLP(MLPConfig(6, 8, 3), LoRAConfig(r=2, init="zero_A"), seed=7)
    arrays = {k: other.params[k].copy() for k in other.adapter_keys()}
    if change is not None:
        last = other.adapter_keys()[-1]
        arrays[last] = change(arrays[last])
    np.savez(tmp_path / "adapter.npz", **arrays)
    return tmp_path / "adapter.npz"


@pytest.mark.parametrize("change, message", [
    (lambda a: a + 1j, r"array 'fc2.B': expected a real \(float\) array, got .*complex128"),
    (lambda a: np.full(a.shape, "x"), r"array 'fc2.B': expected a real \(float\) array"),
    (lambda a: np.full(a.shape, np.inf), r"array 'fc2.B': expected finite values"),
    (lambda a: a[:, :-1], r"array 'fc2.B' expected shape \(2, 3\), got \(2, 2\)"),
])
def test_a_refused_load_leaves_the_model_as_it_was(tmp_path, change, message):
    """An adapter file whose last array is complex, text, infinite or of another shape: every
    array is checked and converted before the first is written, so nothing changes."""
    model, _ = trained_model(OPTIMIZERS["adam"])
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        model.load(saved_adapter(tmp_path, change))
    assert same(snapshot(model), before)


@pytest.mark.parametrize("content, why", [
    (b"", "No data left in file"),
    (b"not a zip file at all" * 4, "not a .npz archive"),
    ("truncated", "File is not a zip file"),
    ("npy", "a single array, not named arrays"),
])
def test_unreadable_adapter_files_are_one_clear_error(tmp_path, content, why):
    """Empty, garbage, truncated, or a lone .npy renamed .npz: a ValueError naming the file and
    why (never advice to unpickle), and the model unchanged."""
    model, _ = trained_model(OPTIMIZERS["adam"])
    path = tmp_path / "bad.npz"
    if content == "truncated":
        data = saved_adapter(tmp_path).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "npy":
        np.save(tmp_path / "one.npy", np.zeros(3))
        (tmp_path / "one.npy").rename(path)
    else:
        path.write_bytes(content)
    before = snapshot(model)
    with pytest.raises(ValueError, match=rf"expected a \.npz file .*'{path}'.*{why}") as err:
        model.load(path)
    assert "allow_pickle" not in str(err.value)
    assert same(snapshot(model), before)


def test_a_npy_path_is_refused_by_name(tmp_path):
    """load('x.npy') says a .npz file of named arrays is expected."""
    with pytest.raises(ValueError, match=r"path: expected a \.npz file of named arrays"):
        LoRAMLP(MLPConfig(6, 8, 3), LoRAConfig(r=2)).load(tmp_path / "x.npy")


def test_save_and_load_agree_on_a_path_without_suffix(tmp_path):
    """save('adapter') writes adapter.npz and load('adapter') reads that same file back."""
    a, _ = trained_model(OPTIMIZERS["adam"])
    written = a.save(tmp_path / "adapter")
    assert written == tmp_path / "adapter.npz" and written.exists()
    b = LoRAMLP(MLPConfig(6, 8, 3), LoRAConfig(r=2), seed=1)
    b.load(tmp_path / "adapter")
    assert same(snapshot(b), snapshot(a))
