"""`tinylora demo`: LoRA (ratio 1) against LoRA+ (ratio 16) on a synthetic low-rank shift.

The task: a frozen MLP whose target is the same MLP with a rank-2 change to its hidden layer,
so a rank-4 LoRA can fit it exactly. Both runs share the frozen weights, the data, the init and
the learning rate of A; LoRA+ only multiplies B's learning rate by 16.
"""

from __future__ import annotations

import math
from pathlib import Path

from tinylora import backend
from tinylora.models import LoRAMLP
from tinylora.optim import Adam, loraplus_groups
from tinylora.train import train


def lowrank_shift_task(d_in=16, width=64, d_out=4, n_points=256, shift_rank=2, seed=0,
                       backend_name=None, dtype=None):
    """-> (x (n_points, d_in), y (n_points, d_out), frozen weights [W1, W2, W3]).

    y is the frozen MLP's output after ``W2 += U V`` with U (width, shift_rank),
    V (shift_rank, width) random: a low-rank shift that LoRA on fc2 can represent exactly.
    """
    xp = backend.get_xp(backend_name)
    base = LoRAMLP(d_in, [width, width], d_out, seed=seed, backend=backend_name, dtype=dtype)
    weights = [base.params[f"fc{i}.W"] for i in (1, 2, 3)]
    rng = backend.host_rng(seed + 1)
    shift = (backend.normal(rng, (width, shift_rank), 1.0, xp, dtype)
             @ backend.normal(rng, (shift_rank, width), 1.0 / math.sqrt(width), xp, dtype))
    teacher = LoRAMLP(d_in, [width, width], d_out, targets=[],
                      weights=[weights[0], weights[1] + shift, weights[2]],
                      backend=backend_name, dtype=dtype)
    x = backend.normal(rng, (n_points, d_in), 1.0, xp, dtype)
    y, _ = teacher.forward(x)
    return x, y, weights


def compare(lr=3e-3, ratios=(1.0, 16.0), steps=200, r=4, seed=0, backend_name=None, dtype=None):
    """Train one LoRA MLP per ratio on the low-rank shift. -> {ratio: [loss per step]}."""
    x, y, weights = lowrank_shift_task(seed=seed, backend_name=backend_name, dtype=dtype)
    curves = {}
    for ratio in ratios:
        model = LoRAMLP(16, [64, 64], 4, targets=["fc2"], r=r, weights=weights, seed=seed + 2,
                        backend=backend_name, dtype=dtype)
        params = model.trainable_params()
        opt = Adam(params, groups=loraplus_groups(params, lr=lr, lr_ratio=ratio))
        curves[ratio] = train(model, opt, x, y, steps)
    return curves


def add_arguments(p) -> None:
    p.add_argument("--out", default="demo-out", help="folder for the figure (default demo-out)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate of A (and of B at ratio 1)")
    p.add_argument("--backend", choices=["numpy", "cupy"], default=None)


def main(args) -> int:
    curves = compare(lr=args.lr, steps=args.steps, backend_name=args.backend)
    marks = [t for t in (0, 10, 50, 100, args.steps - 1) if t < args.steps]
    print(f"Training loss (MSE) on a rank-2 shift, Adam, lr_A = {args.lr:g}")
    print("step    " + "  ".join(f"{'LoRA+ x' + format(r, 'g') if r != 1 else 'LoRA':>12}" for r in curves))
    for t in marks:
        print(f"{t:<6}  " + "  ".join(f"{c[t]:12.3e}" for c in curves.values()))
    from tinylora import plots

    path = plots.loss_curves({("LoRA (ratio 1)" if r == 1 else f"LoRA+ (ratio {r:g})"): c
                              for r, c in curves.items()},
                             Path(args.out) / "demo_loss_lora_vs_loraplus.png",
                             "LoRA vs LoRA+ on a low-rank shift (LoRA MLP, Adam)")
    print(f"wrote {path}")
    return 0
