"""The paper's numerical toy (Eq. 3, Figure 2) as a grid task, in two variants.

    h = relu(x W_in)                       x (N, d) with d = 5, W_in (d, n) frozen
    z = relu(h W_mid + scale (h A) B)      A (n, r), B (r, n): the LoRA factors; W_mid (n, n) frozen
    f(x) = z W_out                         W_out (n, 1) frozen
    X ~ N(0, I_d),  Y = sin(mean(X)),  loss = mean squared error.

"paper"    the setting as printed in the paper's appendix: W_mid = 0 (the paper's model is
           ``W_out relu(B A relu(W_in x))``), W_in ~ N(0, 1), W_out ~ N(0, 1/n), and both factors
           random, A ~ N(0, 1/n), B ~ N(0, 1) (neither Init[1] nor Init[2]; see `docs/paper.md`).
"finetune" true fine-tuning: a frozen middle weight W_mid ~ N(0, 1/n) and Init[1]
           (B = 0, A ~ N(0, 1/n)). With W_mid = 0 Init[1] could not learn at all: B = 0 makes the
           ReLU's input exactly 0 and its derivative 0, so every gradient would vanish.

Readout. The paper prints W_out ~ N(0, 1/n) ("sp", standard parametrisation): the output sums n
coordinates, so a change that moves every feature by Theta(1) in a coordinated way moves the
output by Theta(sqrt(n)). With ``readout="mup"``, W_out ~ N(0, 1/n^2) (muP's readout), a
Theta(1) change of the features moves the output by Theta(1). Counting as in `docs/paper.md` with
the sp readout's sqrt(n) gain, a stable output asks eta_B ~ n^-1/2 (and eta_A ~ 1/n, a ratio
~ n^1/2); without that gain (mup) the paper's eta_B ~ 1, ratio ~ n. (A hypothesis to test with
``tinylora width-sweep --readout mup``; a short probe, 100 steps, gave flat, inconclusive optima.)

This is a `tinylora.models.LoRAMLP` ``d -> n -> n -> 1`` with LoRA on fc2 (the middle layer) and
scale = alpha / r = 1, as in Eq. 3. The frozen model and the data are drawn from `model_seed`,
the adapter's init from (model_seed, seed). The commands use `seeded_tasks`: seed s gets its own
frozen model, data and adapter init, so averaging over seeds averages over all of them.
"""

from __future__ import annotations

import math

from tinylora import backend
from tinylora.lab.grid import GridTask
from tinylora.models import LoRAMLP

VARIANTS = ("paper", "finetune")
READOUTS = {"sp": lambda n: n**-0.5, "mup": lambda n: 1.0 / n}  # the std of W_out


def toy_data(n_points: int, d_in: int, rng, xp, dtype):
    """X ~ N(0, I_d) (n_points, d_in) and Y = sin(mean over the d inputs) (n_points, 1)."""
    x = backend.normal(rng, (n_points, d_in), 1.0, xp, dtype)
    return x, xp.sin(x.mean(axis=1, keepdims=True))


def toy_task(width: int = 100, variant: str = "finetune", optimizer: str = "adam",
             steps: int = 200, record_steps=(10, 200), n_train: int = 1000, n_test: int = 100,
             d_in: int = 5, r: int = 4, model_seed: int = 0, readout: str = "sp",
             backend_name=None, dtype=None) -> GridTask:
    """The grid task of Eq. 3 at width n = `width` (see the module docstring)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {list(VARIANTS)}, got {variant!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer: expected 'sgd' (gradient descent) or 'adam', "
                         f"got {optimizer!r}")
    if isinstance(width, bool) or not isinstance(width, int) or width < r:
        raise ValueError(f"width: expected an integer >= r = {r}, got {width!r}")
    if readout not in READOUTS:
        raise ValueError(f"readout: expected one of {list(READOUTS)}, got {readout!r}")
    xp = backend.get_xp(backend_name)
    dtype = backend.resolve_dtype(dtype)
    rng = backend.host_rng(model_seed)
    n = width
    w_in = backend.normal(rng, (d_in, n), 1.0, xp, dtype)
    w_mid = (backend.zeros((n, n), xp, dtype) if variant == "paper"
             else backend.normal(rng, (n, n), 1.0 / math.sqrt(n), xp, dtype))
    w_out = backend.normal(rng, (n, 1), READOUTS[readout](n), xp, dtype)
    x_train, y_train = toy_data(n_train, d_in, rng, xp, dtype)
    x_test, y_test = toy_data(n_test, d_in, rng, xp, dtype)

    def build(stack):
        return LoRAMLP(d_in, [n, n], 1, targets=["fc2"], r=r, weights=[w_in, w_mid, w_out],
                       stack=stack, backend=backend_name, dtype=dtype)

    def adapter_init(seed):
        seed_rng = backend.host_rng([model_seed, seed])  # independent of the frozen model's draw
        A = backend.normal(seed_rng, (n, r), 1.0 / math.sqrt(n), xp, dtype)
        B = (backend.normal(seed_rng, (r, n), 1.0, xp, dtype) if variant == "paper"
             else backend.zeros((r, n), xp, dtype))
        return {"fc2.A": A, "fc2.B": B}

    return GridTask(build, adapter_init, x_train, y_train, x_test, y_test, optimizer, steps,
                    tuple(record_steps), elements=n_train * n)


def seeded_tasks(first_seed: int = 0, **kwargs):
    """seed -> the toy task whose frozen model and data are drawn from first_seed + seed
    (for `tinylora.grid.train_cells`: every seed a different draw of everything)."""
    return lambda seed: toy_task(model_seed=first_seed + seed, **kwargs)
