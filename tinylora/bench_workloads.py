"""The workloads that `tinylora bench` times: a model, its data, one training step, a floor.

A `Workload` is everything the timer needs, built once:

    step()   one training step exactly as the library trains:
             ``loss, grads = loss_and_grads(model, x, y); opt.step(grads)``   (in place)
    floor()  the bare matrix products that an exact step cannot avoid, same shapes and dtype,
             on the same array library (for "grid": the same cells trained one by one)

`tinylora.bench_torch` mirrors each workload in PyTorch from the same weights and data.

    mlp    LoRAMLP width -> width -> width, LoRA (rank 8) on fc1 and fc2, batch 256, Adam (LoRA+)
    block  TransformerBlock d_model = width, 4 heads, LoRA on q, k, v, o, fc1, fc2   (hook below)
    grid   the lab's batched (eta_A, eta_B) grid against the same cells one by one (hook below)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tinylora import backend
from tinylora.models import LoRAMLP
from tinylora.optim import Adam, loraplus_groups
from tinylora.train import loss_and_grads

BATCH = 256  # MLP rows per step
RANK = 8
LR, LR_RATIO = 1e-3, 16.0  # Adam with the LoRA+ groups: A at LR, B at LR * LR_RATIO


@dataclass
class Workload:
    """One benchmark case. `x`, `y` and `init` (host copies of the parameters before any step)
    let `tinylora.bench_torch` rebuild the identical computation."""

    name: str  # "mlp" | "block" | "grid"
    width: int
    dtype: str
    model: object
    opt: object
    x: object
    y: object
    step: Callable[[], object]
    floor: Callable[[], object]
    init: dict = field(default_factory=dict)
    loss: str = "mse"


def train_step(model, opt, x, y, loss: str = "mse"):
    """The library's training step: forward, loss, backward, optimizer update (in place)."""
    value, grads = loss_and_grads(model, x, y, loss)
    opt.step(grads)
    return value


def _adam(model):
    params = model.trainable_params()
    return Adam(params, groups=loraplus_groups(params, lr=LR, lr_ratio=LR_RATIO))


def _host_copy(params):
    return {k: backend.to_numpy(v).copy() for k, v in params.items()}


# --------------------------------------------------------------------------------------------
# (a) the LoRA MLP


def build_mlp(width: int, dtype: str = "float32", seed: int = 0, backend_name=None) -> Workload:
    """LoRAMLP(width, width, width), relu, LoRA rank 8 on fc1 and fc2, MSE on a batch of 256."""
    xp = backend.get_xp(backend_name)
    model = LoRAMLP(width, width, width, r=RANK, seed=seed, backend=backend_name, dtype=dtype)
    rng = backend.host_rng(seed + 1)
    x = backend.normal(rng, (BATCH, width), 1.0, xp, dtype)
    y = backend.normal(rng, (BATCH, width), 1.0, xp, dtype)
    init = _host_copy(model.params)
    opt = _adam(model)
    return Workload("mlp", width, dtype, model, opt, x, y, init=init,
                    step=lambda: train_step(model, opt, x, y), floor=mlp_floor(model, x))


def mlp_floor(model, x):
    """The products of one exact LoRA-MLP step, on fresh arrays of the step's shapes and dtype.

    Per LoRA layer, forward: h W, h A, z_a B. Backward: dy B^T, z_a^T dy, h^T dz_a, and for
    every layer but the first (whose input needs no gradient) dy W^T and dz_a A^T.
    """
    xp, p = backend.xp_of(x), model.params
    rng = backend.host_rng(123)
    M, dtype = x.shape[0], x.dtype
    layers = []
    for i, name in enumerate(model.layer_names):
        W, A, B = p[f"{name}.W"], p[f"{name}.A"], p[f"{name}.B"]
        d_in, r = A.shape[-2:]
        h = x if i == 0 else backend.normal(rng, (M, d_in), 1.0, xp, dtype)
        z_a = backend.normal(rng, (M, r), 1.0, xp, dtype)
        dy = backend.normal(rng, (M, W.shape[1]), 1.0, xp, dtype)
        layers.append((i > 0, h, W, A, B, z_a, dy))

    def floor():
        for _, h, W, A, B, _, _ in layers:  # forward
            h @ W  # [M, d_in] -> [M, d_out]
            z_a = h @ A  # [M, d_in] -> [M, r]
            z_a @ B  # [M, r] -> [M, d_out]
        for need_dx, h, W, A, B, z_a, dy in reversed(layers):  # backward
            dz_a = dy @ B.T  # [M, d_out] -> [M, r]
            z_a.T @ dy  # dB  [r, M] @ [M, d_out]
            h.T @ dz_a  # dA  [d_in, M] @ [M, r]
            if need_dx:
                dy @ W.T  # [M, d_out] -> [M, d_in]
                dz_a @ A.T  # [M, r] -> [M, d_in]

    return floor


# --------------------------------------------------------------------------------------------
# (b) the Transformer block and (c) the batched grid: hooks, filled in once
# `tinylora.transformer` and `tinylora.grid` have landed.


def build_block(width: int, dtype: str = "float32", seed: int = 0, backend_name=None) -> Workload:
    raise NotImplementedError("the 'block' workload needs tinylora.transformer (not merged yet)")


def build_grid(width: int, dtype: str = "float32", seed: int = 0, backend_name=None) -> Workload:
    raise NotImplementedError("the 'grid' workload needs tinylora.grid (not merged yet)")


BUILDERS = {"mlp": build_mlp, "block": build_block, "grid": build_grid}
WIDTHS = {"mlp": (128, 512, 2048), "block": (128, 256, 512), "grid": (64, 128, 256)}
