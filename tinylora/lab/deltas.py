"""The three terms of a LoRA layer's update, measured along a short Adam (or SGD) run: what
`tinylora coordcheck` and `tinylora balance` read.

For one LoRA layer with input Z (row-vector form, s = scale) and one step from (A0, B0) to
(A1, B1) (`docs/paper.md`, "Efficient feature learning"):

    delta1 = s (Z (A1 - A0)) B0        what moving A did
    delta2 = s (Z A0) (B1 - B0)        what moving B did
    delta3 = s (Z (A1 - A0)) (B1 - B0) both together (the three sum to s (Z A1 B1 - Z A0 B0))
    Z_A = Z A1 (the r features),  Z_B = s Z_A B1 (the adapter's output)

Sizes are root-mean-squares over every coordinate (points x output features). Each term is a
product ``M F`` of an (..., r) matrix M and an (r, d_out) factor F, and
``|M F|^2 = sum((M^T M) * (F F^T))``: two r x r Gram matrices, so a size is measured without
forming the (points, d_out) array (`rms_product`).

`trajectory` trains a model (one, or a stack of S copies with one pair of rates each, as in
`tinylora.lab.grid`) for a few Adam steps and returns these sizes per step, layer and copy, with
what explains them when they stop following the theory:

    ZA_moved      RMS(Z (A_t - A_0)) / RMS(Z A_0): how far the features have moved (Init[1])
    B_moved       RMS(B_t - B_0) / RMS(B_0): how far B has moved from its init (Init[2])
    input_moved   RMS(Z_t - Z_1) / RMS(Z_1): how far the layer's input has moved (a layer that
                  sits above another LoRA layer sees its input change)
    output_moved  RMS(f_t - f_0) / RMS(y - f_0): the share of the first residual the output has
                  covered (one per model, stored under the layer name "model")

A copy has diverged when its loss does by the rule of `tinylora.diverge` (not finite, or above
DIVERGED times its starting loss) or its gradients stop being finite: from then on its sizes are
inf, its factors, rates and optimizer state 0 (the other copies are never touched).
"""

from __future__ import annotations

import math

from tinylora import backend
from tinylora.diverge import diverged, quiet_overflow
from tinylora.groups import loraplus_groups
from tinylora.layers import mse_backward, mse_forward
from tinylora.optim import make_optimizer
from tinylora.train import retire

QUANTITIES = ("delta1", "delta2", "delta3", "Z_A", "Z_B")
DIAGNOSTICS = ("ZA_moved", "B_moved", "input_moved")


def deltas(Z, A0, B0, A1, B1, scale: float) -> dict:
    """The quantities of one LoRA layer after a step from (A0, B0) to (A1, B1), input Z, as full
    arrays (for reading one step by hand; `trajectory` measures their sizes without them)."""
    z_da = Z @ (A1 - A0)  # [..., d_in] -> [..., r]
    z_a = Z @ A1  # [..., d_in] -> [..., r]
    return {"delta1": scale * (z_da @ B0), "delta2": scale * ((Z @ A0) @ (B1 - B0)),
            "delta3": scale * (z_da @ (B1 - B0)), "Z_A": z_a, "Z_B": scale * (z_a @ B1)}


def projection_inputs(model, cache) -> dict:
    """For models built from `tinylora.projection` (the LoRA MLP, the Transformer block): every
    projection leaves ``(name, is_lora, inner)`` in the forward cache, and a LoRA layer's inner
    cache starts with its input. Walk the cache and collect Z for each LoRA target."""
    found = {}

    def walk(c):
        if isinstance(c, (tuple, list)):
            if len(c) == 3 and isinstance(c[0], str) and isinstance(c[1], bool):
                name, _, inner = c  # a projection's (name, is_lora, inner)
                if name in model.targets:
                    found[name] = inner[0]  # the input of projection `name`
                return
            for item in c:
                walk(item)

    walk(cache)
    return {t: found[t] for t in model.targets}


def _rows(M, n_stack: int):
    """M (*S, ..., r) or (..., r) -> (S, K, r) (S = 1 without a stack): the rows of each copy."""
    if n_stack == 0:
        return M.reshape(1, -1, M.shape[-1])
    return M.reshape(n_stack, -1, M.shape[-1])


def rms(M, n_stack: int = 0):
    """RMS of each copy's entries of M (*S, ...). -> a host array of S numbers (1 unstacked)."""
    rows = _rows(M, n_stack)
    xp = backend.xp_of(rows)
    return backend.to_numpy(xp.sqrt((rows * rows).mean(axis=(1, 2))))


def rms_product(M, F, n_stack: int = 0):
    """RMS of the entries of ``M @ F`` per copy, from Gram matrices (never forming M @ F).

    M (*S, ..., r), F (*S, r, d_out) or (r, d_out). -> a host array of S numbers."""
    rows = _rows(M, n_stack)  # [S, K, r]
    F = F.reshape(1, *F.shape) if F.ndim == 2 else F  # [S or 1, r, d_out]
    xp = backend.xp_of(rows)
    g_m = rows.swapaxes(-1, -2) @ rows  # [S, r, K] @ [S, K, r] -> [S, r, r]
    g_f = F @ F.swapaxes(-1, -2)  # [S, r, d_out] @ [S, d_out, r] -> [S, r, r]
    sq = (g_m * g_f).sum(axis=(1, 2)) / (rows.shape[1] * F.shape[-1])
    return backend.to_numpy(xp.sqrt(xp.maximum(sq, 0.0)))  # round-off can leave -0.0


def _ratio(num, den):
    """num / den per copy, None where den is 0 (the quantity is undefined there)."""
    return [None if d == 0 else float(a / d) for a, d in zip(num, den)]


def _rates(model, eta, n_stack):
    """A float, or one rate per copy as an array (S, 1, 1) on the model's backend."""
    if n_stack == 0:
        return float(eta)
    values = [float(e) for e in (eta if hasattr(eta, "__len__") else [eta] * n_stack)]
    if len(values) != n_stack:
        raise ValueError(f"rates: expected {n_stack} rates (one per copy), got {len(values)}")
    return backend.asarray(values, model.xp, model.params[model.adapter_keys()[0]].dtype
                           ).reshape(n_stack, 1, 1)


def _finite_per_copy(values, n_stack: int, xp) -> list:
    """Per copy: whether every number of each array in `values` is finite."""
    ok = None
    for v in values:
        flat = v.reshape(max(n_stack, 1), -1) if n_stack else v.reshape(1, -1)
        good = backend.to_numpy(xp.isfinite(flat).all(axis=1))
        ok = good if ok is None else ok & good
    return [bool(g) for g in ok]


def trajectory(setup, eta_a, eta_b, steps: int, optimizer: str = "adam") -> list[dict]:
    """Train `steps` steps of `optimizer` ("adam" or "sgd"; A's group at eta_a, B's at eta_b;
    one rate per copy for a stacked model). -> one dict per step t = 1..steps: {layer:
    {quantity: [one number per copy]}}, the quantities of `QUANTITIES` and `DIAGNOSTICS`, and
    {"model": {"output_moved"}}.

    `setup` is a `tinylora.lab.coordcheck.CoordSetup` (model, x, y, inputs)."""
    model = setup.model
    stack = tuple(getattr(model, "stack", ()))  # the Transformer block has no stack
    n_stack = stack[0] if stack else 0
    copies = max(n_stack, 1)
    params = model.trainable_params()
    groups = loraplus_groups(params, lr=_rates(model, eta_a, n_stack),
                             lr_B=_rates(model, eta_b, n_stack))
    opt, s, xp = make_optimizer(optimizer, params, groups=groups), model.scale, model.xp
    start = {k: params[k].copy() for k in params}
    alive, first_inputs, f0, start_loss, out = [True] * copies, None, None, None, []
    with quiet_overflow(xp):
        for _ in range(steps):
            pred, cache = model.forward(setup.x)
            inputs = setup.inputs(model, cache)
            if f0 is None:  # before the first step: the frozen model's output and inputs
                f0, first_inputs = pred.copy(), {k: z.copy() for k, z in inputs.items()}
            value, loss_cache = mse_forward(pred, setup.y, stack_ndim=len(stack))
            dloss = xp.ones(n_stack, dtype=pred.dtype) if n_stack else 1.0
            grads = model.backward(mse_backward(dloss, loss_cache), cache)
            losses = [float(v) for v in backend.to_numpy(value).reshape(-1)]
            start_loss = start_loss or losses
            finite = _finite_per_copy([pred, *grads.values()], n_stack, xp)
            dead = [i for i in range(copies) if alive[i] and (
                not finite[i] or diverged(losses[i], start_loss[i]))]
            if dead:  # this copy has diverged: retire it (never touching the others)
                retire(opt, grads, [i in dead for i in range(copies)] if n_stack else True)
                alive = [a and i not in dead for i, a in enumerate(alive)]
            before = {k: params[k].copy() for k in params}
            opt.step(grads)
            row = {layer: _layer_sizes(Z, before, params, start, first_inputs[layer], layer, s,
                                       n_stack) for layer, Z in inputs.items()}
            moved = rms(pred - f0, n_stack) / rms(setup.y - f0, n_stack)
            row["model"] = {"output_moved": [float(v) for v in moved]}
            for layer_row in row.values():
                for values in layer_row.values():
                    for i in range(copies):
                        values[i] = values[i] if alive[i] else math.inf
            out.append(row)
    return out


def _layer_sizes(Z, before, after, start, Z1, layer, s, n_stack) -> dict:
    """The sizes of one LoRA layer's update (see the module docstring), one number per copy."""
    A0, B0, A1, B1 = (before[f"{layer}.A"], before[f"{layer}.B"], after[f"{layer}.A"],
                      after[f"{layer}.B"])
    z_da, z_a = Z @ (A1 - A0), Z @ A1  # [..., r] each
    z_a0 = Z @ start[f"{layer}.A"]
    sizes = {"delta1": rms_product(s * z_da, B0, n_stack),
             "delta2": rms_product(s * (Z @ A0), B1 - B0, n_stack),
             "delta3": rms_product(s * z_da, B1 - B0, n_stack),
             "Z_A": rms(z_a, n_stack), "Z_B": rms_product(s * z_a, B1, n_stack)}
    out = {q: [float(v) for v in sizes[q]] for q in QUANTITIES}
    out["ZA_moved"] = _ratio(rms(z_a - z_a0, n_stack), rms(z_a0, n_stack))
    b_start = start[f"{layer}.B"]
    out["B_moved"] = _ratio(rms(B1 - b_start, n_stack), rms(b_start, n_stack))
    stacked_input = bool(n_stack) and Z.ndim >= 3 and Z.shape[0] == n_stack  # above a LoRA layer
    moved = _ratio(rms(Z - Z1, n_stack if stacked_input else 0),
                   rms(Z1, n_stack if stacked_input else 0))
    out["input_moved"] = moved if stacked_input else moved * max(n_stack, 1)
    return out
