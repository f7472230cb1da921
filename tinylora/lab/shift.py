"""LoRA (lr_ratio 1) against LoRA+ (lr_ratio 16) on a synthetic low-rank shift: a quick
comparison.

The task: a frozen MLP whose target is the same MLP with a rank-2 change to its hidden layer,
so a rank-4 LoRA can fit it exactly. Both runs share the frozen weights, the data, the init and
the learning rate of A; LoRA+ only multiplies B's learning rate by 16.

    from tinylora.lab.shift import compare
    curves = compare(steps=200)          # {1.0: [loss per step], 16.0: [...]}
"""

from __future__ import annotations

import math

from tinylora import backend
from tinylora.groups import loraplus_groups
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import Adam
from tinylora.train import train


def lowrank_shift_task(d_in=16, width=64, d_out=4, n_points=256, shift_rank=2, seed=0,
                       backend_name=None, dtype=None):
    """-> (x (n_points, d_in), y (n_points, d_out), frozen weights [W1, W2, W3]).

    y is the frozen MLP's output after ``W2 += U V`` with U (width, shift_rank),
    V (shift_rank, width) random: a low-rank shift that LoRA on fc2 can represent exactly.
    """
    xp = backend.get_xp(backend_name)
    base = LoRAMLP(MLPConfig(d_in, [width, width], d_out), LoRAConfig(targets=()), seed=seed,
                   backend=backend_name, dtype=dtype)
    weights = [base.params[f"fc{i}.W"] for i in (1, 2, 3)]
    rng = backend.host_rng(seed + 1)
    shift = (backend.normal(rng, (width, shift_rank), 1.0, xp, dtype)
             @ backend.normal(rng, (shift_rank, width), 1.0 / math.sqrt(width), xp, dtype))
    teacher = LoRAMLP(MLPConfig(d_in, [width, width], d_out), LoRAConfig(targets=()),
                      weights=[weights[0], weights[1] + shift, weights[2]],
                      backend=backend_name, dtype=dtype)
    x = backend.normal(rng, (n_points, d_in), 1.0, xp, dtype)
    y, _ = teacher.forward(x)
    return x, y, weights


def compare(lr=3e-3, lr_ratios=(1.0, 16.0), steps=200, r=4, seed=0, backend_name=None,
            dtype=None):
    """Train one LoRA MLP per lr_ratio on the low-rank shift. -> {lr_ratio: [loss per step]}."""
    x, y, weights = lowrank_shift_task(seed=seed, backend_name=backend_name, dtype=dtype)
    curves = {}
    for lr_ratio in lr_ratios:
        model = LoRAMLP(MLPConfig(16, [64, 64], 4), LoRAConfig(r=r, targets=["fc2"]),
                        weights=weights, seed=seed + 2, backend=backend_name, dtype=dtype)
        params = model.trainable_params()
        opt = Adam(params, groups=loraplus_groups(params, lr=lr, lr_ratio=lr_ratio))
        curves[lr_ratio] = train(model, opt, x, y, steps)
    return curves
