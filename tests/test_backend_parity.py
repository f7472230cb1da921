"""NumPy and CuPy run the same code path and give the same numbers.

Every test here needs CuPy and a CUDA device: marked `gpu`, skipped with the reason elsewhere
(CI has no GPU). `scripts/gpu_check.sh` runs them on a GPU machine.
Tolerances: float64 within 1e-10 (the same operations, only the order of summation in the
BLAS kernels differs); float32 within 1e-4 relative (cuBLAS and OpenBLAS round differently, and
20 Adam steps carry those differences along).
"""

import numpy as np
import pytest

from tinylora import backend
from tinylora.gradcheck import catalogue, randomize_lora
from tinylora.groups import loraplus_groups
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import Adam
from tinylora.train import loss_and_grads, train

pytestmark = pytest.mark.gpu

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-4, atol=1e-5)}


def _setup(name, dtype):
    """The same seeded model and data on backend `name` (numbers drawn on the host)."""
    xp = backend.get_xp(name)
    model = LoRAMLP(MLPConfig(8, [32, 32], 4, activation="gelu", bias=True), LoRAConfig(r=2),
                    seed=0, backend=name, dtype=dtype)
    randomize_lora(model, seed=1)
    x = backend.normal(2, (64, 8), 1.0, xp, dtype)
    y = backend.normal(3, (64, 4), 1.0, xp, dtype)
    return model, x, y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_and_gradients_agree_across_backends(dtype):
    """Same seed: the same output, loss and every gradient on NumPy and CuPy."""
    (m_np, x_np, y_np), (m_cp, x_cp, y_cp) = _setup("numpy", dtype), _setup("cupy", dtype)
    np.testing.assert_allclose(backend.to_numpy(m_cp.forward(x_cp)[0]), m_np.forward(x_np)[0],
                               **TOL[dtype])
    loss_np, g_np = loss_and_grads(m_np, x_np, y_np)
    loss_cp, g_cp = loss_and_grads(m_cp, x_cp, y_cp)
    np.testing.assert_allclose(float(loss_cp), float(loss_np), **TOL[dtype])
    for k in g_np:
        assert g_cp[k].dtype == np.dtype(dtype)
        np.testing.assert_allclose(backend.to_numpy(g_cp[k]), g_np[k], **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_twenty_adam_steps_follow_the_same_trajectory(dtype):
    """A 20-step LoRA+ Adam run ends at the same parameters and losses on both backends."""
    runs = {}
    for name in ("numpy", "cupy"):
        model, x, y = _setup(name, dtype)
        params = model.trainable_params()
        opt = Adam(params, groups=loraplus_groups(params, lr=1e-3, lr_ratio=16))
        losses = train(model, opt, x, y, steps=20)
        runs[name] = (losses, {k: backend.to_numpy(v) for k, v in params.items()})
    np.testing.assert_allclose(runs["cupy"][0], runs["numpy"][0], **TOL[dtype])
    for k, v in runs["numpy"][1].items():
        np.testing.assert_allclose(runs["cupy"][1][k], v, **TOL[dtype])


def test_gradient_catalogue_passes_on_cupy():
    """`tinylora gradcheck --backend cupy`: every tensor within tolerance on the GPU."""
    bad = [r.line() for r in catalogue.run_all("cupy") if not r.ok]
    assert not bad, "\n".join(bad)


def test_lora_starts_at_the_frozen_model_on_cupy():
    """The zero_B invariant holds on the GPU too."""
    xp = backend.get_xp("cupy")
    x = backend.normal(0, (5, 8), 1.0, xp)
    lora = LoRAMLP(MLPConfig(8, 16, 4), LoRAConfig(r=2), seed=3, backend="cupy")
    frozen = LoRAMLP(MLPConfig(8, 16, 4), LoRAConfig(targets=()), seed=3, backend="cupy")
    assert float(abs(lora.forward(x)[0] - frozen.forward(x)[0]).max()) == 0.0


def test_arrays_stay_on_the_device():
    """Outputs, gradients and optimizer state are CuPy arrays: no silent trip to the host."""
    model, x, y = _setup("cupy", "float32")
    params = model.trainable_params()
    opt = Adam(params, lr=1e-3)
    _, grads = loss_and_grads(model, x, y)
    opt.step(grads)
    assert all(type(g).__module__.startswith("cupy") for g in grads.values())
    assert all(type(s["m"]).__module__.startswith("cupy") for s in opt.state.values())
