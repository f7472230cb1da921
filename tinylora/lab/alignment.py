"""How far A's Adam step lines up with the layer's inputs: the alignment that the width law's
counting (`tinylora.lab.predictions`) takes to grow like n.

Adam's first step is a sign: A moves along -eta_A sign(dA), dA = Z^T G (row-vector form; Z the
layer's input, tokens x n; G = dL/d(Z A), tokens x r). What that step does to the features is

    Z dA = -eta_A Z sign(Z^T G),      alignment(Z, G) = RMS(Z sign(Z^T G)) / RMS(Z)

and the counting says "n terms of one sign": alignment ~ n. That holds when n is well above the
number of independent inputs in the batch (sign(Z^T G) then follows each token's own Z), or when
the inputs share a direction (the toy's ReLU features have a positive mean). With N independent
zero-mean tokens and n well below N, sign(Z^T G) is nearly random to each token, and the n terms
add like a random walk: alignment ~ sqrt(n). In between it moves from one to the other, so what
matters is its *local* exponent against n at the widths measured (`local_exponents`).

The prediction that follows: delta1 ~ eta_A alignment(n) eta_B and delta2 ~ eta_B (Init[1]), so
the balanced eta_A* ~ 1 / alignment(n) (its exponent minus the alignment's), eta_B* ~ n^0
(`tinylora.lab.predictions.exponents(..., alignment=a)`).

`first_step` measures it in a model, with the model's own G: under Init[1] (B = 0) A first moves
at step 2, after B's first step (-eta_B sign(dB)); the direction of that step is all that sets
sign(dA) at step 2 while eta_B is small, so B is set to a tiny multiple of it. Under Init[2]
(A = 0, B random) A moves at step 1.
"""

from __future__ import annotations

import math

from tinylora import backend
from tinylora.train import loss_and_grads

TINY = 1e-6  # B's first step, scaled down: sign(dA) does not depend on its length


def alignment(Z, G) -> float:
    """RMS(Z sign(Z^T G)) / RMS(Z) for Z (..., n) and G (..., r) (the leading axes are the
    tokens). 1 <= alignment <= n: sqrt(n) for sign patterns random to Z, n for Z's own."""
    xp = backend.xp_of(Z)
    Z2, G2 = Z.reshape(-1, Z.shape[-1]), G.reshape(-1, G.shape[-1])
    return _relative(Z2, xp.sign(Z2.T @ G2))  # [n, N] @ [N, r] -> [n, r]


def _relative(Z, S) -> float:
    """RMS(Z S) / RMS(Z): the size of a sign step's effect on the features, per unit input."""
    xp = backend.xp_of(Z)
    ZS = Z @ S  # [..., n] @ [(1,) n, r] -> [..., r]
    return float(xp.sqrt((ZS * ZS).mean()) / xp.sqrt((Z * Z).mean()))


def first_step(setup) -> dict:
    """{layer: RMS(Z sign(dA)) / RMS(Z)} for A's first Adam step in each LoRA layer of a
    `tinylora.lab.coordcheck.CoordSetup` (one model, or a stack of one; module docstring). The
    setup's B factors are changed (to B's first step under Init[1])."""
    model = setup.model
    _, grads = loss_and_grads(model, setup.x, setup.y)
    if all(float(abs(model.params[f"{t}.B"]).max()) == 0 for t in model.targets):  # Init[1]
        for t in model.targets:
            model.params[f"{t}.B"][...] = -TINY * backend.xp_of(grads[f"{t}.B"]).sign(
                grads[f"{t}.B"])
        _, grads = loss_and_grads(model, setup.x, setup.y)
    inputs = setup.inputs(model, model.forward(setup.x)[1])
    out = {}
    for t, Z in inputs.items():
        dA = grads[f"{t}.A"]
        out[t] = _relative(Z, backend.xp_of(dA).sign(dA.reshape(-1, *dA.shape[-2:])[0]))
    return out


def local_exponents(widths, values) -> list:
    """The slope of log(value) against log(width) between neighbouring widths: one per pair,
    None where a value is missing or not positive."""
    pairs = zip(zip(widths, values), zip(widths[1:], values[1:]))
    return [None if not (a and b and a > 0 and b > 0) else math.log(b / a) / math.log(m / n)
            for (n, a), (m, b) in pairs]
