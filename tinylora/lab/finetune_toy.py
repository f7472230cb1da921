"""The paper's numerical toy (Eq. 3, Figure 2) as a grid task, in two variants.

    h = relu(x W_in)                       x (N, d) with d = 5, W_in (d, n) frozen
    z = relu(h W_mid + scale (h A) B)      A (n, r), B (r, n): the LoRA factors; W_mid (n, n) frozen
    f(x) = z W_out                         W_out (n, 1) frozen
    X ~ N(0, I_d),  Y = sin(mean(X)),  loss = mean squared error.

"paper"    the setting as printed in the paper's appendix: W_mid = 0 (the paper's model is
           ``W_out relu(B A relu(W_in x))``), W_in ~ N(0, 1), W_out ~ N(0, 1/n), and both factors
           random, A ~ N(0, 1/n), B ~ N(0, 1) (neither Init[1] nor Init[2]; see `docs/paper.md`).
"finetune" true fine-tuning: a frozen middle weight W_mid ~ N(0, 1/n) and Init[1]
           (B = 0, A ~ N(0, 1/n)), or with ``init="zero_A"`` Init[2] (A = 0, B ~ N(0, 1)). With
           W_mid = 0 Init[1] could not learn at all: B = 0 makes the ReLU's input exactly 0 and
           its derivative 0, so every gradient would vanish.

Target. ``target="sin"``: Y = sin(mean(X)), the paper's. It saturates: after 100 Adam steps the
loss is ~1e-3 over a wide region of (eta_A, eta_B), which leaves the optimum to noise.
``target="teacher"``: the same frozen network with a planted rank-2 change of its middle layer,
``W_mid + alpha U V`` (`teacher_shift`). A rank-4 LoRA fits it exactly, so the loss floor is 0
and the loss at a step says how far training has got. What alpha holds fixed at every width is a
convention, and the two readouts differ in it: ``held="output"`` (the default) moves the target
by RMS 1, which under the mup readout rewrites the layer by 17x (n = 64) to 78x (n = 4096) its
own size, RMS(h alpha U V) / RMS(h W_mid); ``held="layer"`` holds that relative change of the
layer at 1, and the target then moves by RMS ~ n^-1/2 under mup (by Theta(1) under sp, where
the two conventions coincide up to a constant). `tinylora.lab.predictions` derives each one's
prediction.

Readout. ``readout="sp"``: W_out ~ N(0, 1/n) as the paper prints it; ``"mup"``: W_out ~
N(0, 1/n^2), muP's readout. Which rates each readout predicts, and why, is derived in
`tinylora.lab.predictions`.

This is a `tinylora.models.LoRAMLP` ``d -> n -> n -> 1`` with LoRA on fc2 (the middle layer) and
scale = alpha / r = 1, as in Eq. 3; with ``cached=True`` it is a
`tinylora.lab.finetune_toy_model.ToyModel`, the same numbers with the frozen part (``relu(x W_in)``
and its product with W_mid) computed once. The frozen model and the data are drawn from
`model_seed`, the adapter's init from (model_seed, seed). The commands use `seeded_tasks`: seed s
gets its own frozen model, data and adapter init, so averaging over seeds averages over all of
them.
"""

from __future__ import annotations

import math

from tinylora import backend
from tinylora.lab.finetune_toy_model import ToyModel, frozen_part
from tinylora.lab.grid import GridTask
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig

VARIANTS = ("paper", "finetune")
READOUTS = {"sp": lambda n: n**-0.5, "mup": lambda n: 1.0 / n}  # the std of W_out
INITS = {"zero_B": "Init[1]", "zero_A": "Init[2]"}  # of the "finetune" variant
TARGETS = ("sin", "teacher")
HELD = ("output", "layer")  # what the teacher's shift holds fixed at every width
SHIFT_RANK = 2  # the teacher's planted change of W_mid (a rank-4 LoRA can fit it exactly)


def toy_data(n_points: int, d_in: int, rng, xp, dtype):
    """X ~ N(0, I_d) (n_points, d_in) and Y = sin(mean over the d inputs) (n_points, 1)."""
    x = backend.normal(rng, (n_points, d_in), 1.0, xp, dtype)
    return x, xp.sin(x.mean(axis=1, keepdims=True))


def _toy_forward(x, w_in, w_mid, w_out):
    """f = relu(relu(x W_in) W_mid) W_out: the frozen toy (or a teacher, with its own W_mid)."""
    h = (x @ w_in).clip(0.0)  # [N, d] -> [N, n]
    return (h @ w_mid).clip(0.0) @ w_out  # [N, n] -> [N, n] -> [N, 1]


def teacher_shift(rng, weights, x_train, shift_rank: int = SHIFT_RANK, size: float = 1.0,
                  rounds: int = 50, held: str = "output"):
    """A planted low-rank change of the middle layer, W_mid + alpha U V (U (n, k) ~ N(0, 1),
    V (k, n) ~ N(0, 1/n)). held="output": alpha set so that the target moves by
    RMS(y - f_frozen) = size on the training inputs (fixed-point rounds on alpha, each O(N n k):
    the frozen product is computed once); held="layer": alpha set so that the layer's
    pre-activation moves by size times its own RMS, RMS(h alpha U V) = size RMS(h W_mid).
    -> the teacher's middle weight; a rank-k LoRA fits the teacher exactly."""
    w_in, w_mid, w_out = weights
    xp, n = backend.xp_of(w_mid), w_mid.shape[0]
    U = backend.normal(rng, (n, shift_rank), 1.0, xp, w_mid.dtype)
    V = backend.normal(rng, (shift_rank, n), 1.0 / math.sqrt(n), xp, w_mid.dtype)
    h = (x_train @ w_in).clip(0.0)  # [N, d] -> [N, n]
    P, hU = h @ w_mid, h @ U  # [N, n], [N, k]
    if held == "layer":
        shift = hU @ V  # [N, k] -> [N, n]
        alpha = size * float(xp.sqrt((P * P).mean()) / xp.sqrt((shift * shift).mean()))
        return w_mid + alpha * (U @ V)
    base, alpha = P.clip(0.0) @ w_out, 1.0
    for _ in range(rounds):
        moved = (P + alpha * (hU @ V)).clip(0.0) @ w_out - base
        rms = float(xp.sqrt((moved * moved).mean()))
        alpha *= size / rms
        if abs(rms / size - 1) < 1e-12:
            break
    return w_mid + alpha * (U @ V)


def toy_task(width: int = 100, variant: str = "finetune", optimizer: str = "adam",
             steps: int = 200, record_steps=(10, 200), n_train: int = 1000, n_test: int = 100,
             d_in: int = 5, r: int = 4, model_seed: int = 0, readout: str = "sp",
             init: str = "zero_B", target: str = "sin", cached: bool = False,
             backend_name=None, dtype=None, held: str = "output") -> GridTask:
    """The grid task of Eq. 3 at width n = `width` (see the module docstring)."""
    for name, value, allowed in (("variant", variant, VARIANTS), ("readout", readout, READOUTS),
                                 ("init", init, INITS), ("target", target, TARGETS),
                                 ("held", held, HELD)):
        if value not in allowed:
            raise ValueError(f"{name}: expected one of {list(allowed)}, got {value!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer: expected 'sgd' (gradient descent) or 'adam', "
                         f"got {optimizer!r}")
    if isinstance(width, bool) or not isinstance(width, int) or width < r:
        raise ValueError(f"width: expected an integer >= r = {r}, got {width!r}")
    xp = backend.get_xp(backend_name)
    dtype = backend.resolve_dtype(dtype)
    rng = backend.host_rng(model_seed)
    n = width
    w_in = backend.normal(rng, (d_in, n), 1.0, xp, dtype)
    w_mid = (backend.zeros((n, n), xp, dtype) if variant == "paper"
             else backend.normal(rng, (n, n), 1.0 / math.sqrt(n), xp, dtype))
    w_out = backend.normal(rng, (n, 1), READOUTS[readout](n), xp, dtype)
    weights = [w_in, w_mid, w_out]
    x_train, y_train = toy_data(n_train, d_in, rng, xp, dtype)
    x_test, y_test = toy_data(n_test, d_in, rng, xp, dtype)
    if target == "teacher":  # the planted shift replaces sin(mean x) as the target
        w_teacher = teacher_shift(rng, weights, x_train, held=held)
        y_train, y_test = (_toy_forward(x, w_in, w_teacher, w_out) for x in (x_train, x_test))

    frozen = []  # the frozen part of each input, computed at the first cached build

    def build(stack):
        if cached:
            frozen[:] = frozen or [frozen_part(w_in, w_mid, x) for x in (x_train, x_test)]
            zero = adapter_init(0)
            return ToyModel(weights, zero["fc2.A"], zero["fc2.B"], frozen, stack)
        return LoRAMLP(MLPConfig(d_in, [n, n], 1), LoRAConfig(r=r, targets=["fc2"]),
                       weights=weights, stack=stack, backend=backend_name, dtype=dtype)

    def adapter_init(seed):
        seed_rng = backend.host_rng([model_seed, seed])  # independent of the frozen model's draw
        A = backend.normal(seed_rng, (n, r), 1.0 / math.sqrt(n), xp, dtype)
        B = backend.normal(seed_rng, (r, n), 1.0, xp, dtype)
        if variant == "finetune":  # Init[1]: B = 0; Init[2]: A = 0
            A, B = (A, 0.0 * B) if init == "zero_B" else (0.0 * A, B)
        return {"fc2.A": A, "fc2.B": B}

    return GridTask(build, adapter_init, x_train, y_train, x_test, y_test, optimizer, steps,
                    tuple(record_steps), elements=n_train * n)


def seeded_tasks(first_seed: int = 0, **kwargs):
    """seed -> the toy task whose frozen model and data are drawn from first_seed + seed
    (for `tinylora.lab.grid.train_cells`: every seed a different draw of everything)."""
    return lambda seed: toy_task(model_seed=first_seed + seed, **kwargs)
