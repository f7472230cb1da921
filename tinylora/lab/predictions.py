"""What the width law predicts: the exponents of eta_A*, eta_B*, their ratio and their product,
for each measurement, readout and init. Every comparison in the project reads them from here
(and the commands copy the table into their summary.json), so a measurement is only ever set
against the prediction of the setting it ran.

The counting (`docs/paper.md`, "Efficient feature learning"; `docs/width_law.md` at length).
One LoRA layer, input Z with Theta(1) coordinates of width n, rank r fixed, Adam. Adam's update
has Theta(eta) coordinates whatever the gradient's scale (its first step is eta * sign(g)), so
update sizes are counted in rates, and a sum of n coordinated terms is Theta(n):

    delta1_t = (Z dA_t) B_{t-1}     Z dA = Theta(eta_A n): dA's coordinates follow Z's signs
    delta2_t = (Z A_{t-1}) dB_t     Z A_{t-1} = Theta(1) features, dB = Theta(eta_B)

Init[1] (B_0 = 0, A_0 ~ N(0, 1/n)): Z A_0 = Theta(1) and B_{t-1} = Theta(eta_B (t - 1)), so

    delta2 ~ eta_B,    delta1 ~ eta_A n eta_B (t - 1)             (t >= 2; at t = 1 delta1 = 0)

Init[2] (A_0 = 0, B_0 ~ N(0, 1)): B stays Theta(1) and Z A_{t-1} = Theta(eta_A n (t - 1)), so

    delta1 ~ eta_A n,  delta2 ~ eta_A n eta_B (t - 1)             (t >= 2; at t = 1 delta2 = 0)

(a) Balanced rates: delta1 = delta2 = c at step t. Init[1]: eta_B* ~ c, eta_A* ~ 1/(n (t - 1));
Init[2]: eta_A* ~ c / n, eta_B* ~ 1/(t - 1). Either way eta_A* ~ n^-1, eta_B* ~ n^0, ratio ~ n^1:
Adam makes the sizes independent of what sits after the layer, so the readout does not enter.

Loss-optimal rates ask how the layer's change moves the output f = z W_out. A change dz that is
coordinated with W_out (a gradient step's is: dL/dz is proportional to W_out) moves f by
n |dz_i| |W_out,i|; a change along a direction random to W_out by sqrt(n) |dz_i| |W_out,i|.
The optimum keeps the output's change per step Theta(1) (larger diverges, smaller learns
nothing), with both factors contributing.

(b) Readout sp (W_out ~ N(0, 1/n), the paper's printed toy): a coordinated dz moves f by
sqrt(n) |dz_i|, so the layer's terms must be n^-1/2. Init[1]: delta2 ~ eta_B -> eta_B* ~ n^-1/2;
delta1 ~ eta_A n eta_B -> eta_A* ~ n^-1; ratio ~ n^1/2, product ~ n^-3/2.
(c) Readout mup (W_out ~ N(0, 1/n^2)): a coordinated dz moves f by |dz_i|: the terms stay
Theta(1) and the loss-optimal rates are the balanced ones, (-1, 0, 1), product ~ n^-1.

Init[2]. delta1 = (Z dA) B_0 moves z inside the span of B_0's r random rows, a direction random
to W_out (no coordination gain); delta2 = (Z A) dB is coordinated as under Init[1]. With sp,
delta1 moves f by Theta(eta_A n) -> eta_A* ~ n^-1 (which also keeps Z A = Theta(1)), delta2 by
sqrt(n) eta_B Z A -> eta_B* ~ n^-1/2: the same (-1, -1/2, 1/2) as Init[1]. With mup, delta1
moves f by eta_A sqrt(n) only; keeping the features Z A = Theta(eta_A n) stable caps eta_A at
1/n, where delta2 moves f by eta_B: (-1, 0, 1) again, but A's own effect on the output then
vanishes like n^-1/2 (A learns only through the features it hands to B), so this prediction is
the weakest of the table. What Init[2] changes everywhere is the structure: delta1 is set by
eta_A alone and delta2 by the product, the reverse of Init[1], so the flat valley of the loss
(and the ill-posed direction of a balanced root) lies along another line.
"""

from __future__ import annotations

from tinylora.run.records import markdown_table

MEASUREMENTS = ("balanced", "loss_optimal")
READOUTS = ("sp", "mup")
INITS = ("zero_B", "zero_A")  # Init[1], Init[2] (tinylora.lora's names)
INIT_NAMES = {"zero_B": "Init[1]", "zero_A": "Init[2]"}  # the paper's names, for tables
RATES = ("eta_A", "eta_B", "ratio", "product")

_SQRT = {"eta_A": -1.0, "eta_B": -0.5}  # loss-optimal under the sp readout, either init
_PAPER = {"eta_A": -1.0, "eta_B": 0.0}  # balanced (any readout), loss-optimal under mup


def _with_ratio_and_product(rates: dict) -> dict:
    a, b = rates["eta_A"], rates["eta_B"]
    return {"eta_A": a, "eta_B": b, "ratio": b - a, "product": a + b}


def exponents(measurement: str, readout: str, init: str = "zero_B") -> dict:
    """{"eta_A", "eta_B", "ratio", "product"}: the predicted exponents of n (module docstring)."""
    for name, value, allowed in (("measurement", measurement, MEASUREMENTS),
                                 ("readout", readout, READOUTS), ("init", init, INITS)):
        if value not in allowed:
            raise ValueError(f"{name}: expected one of {list(allowed)}, got {value!r}")
    if measurement == "loss_optimal" and readout == "sp":
        return _with_ratio_and_product(_SQRT)
    return _with_ratio_and_product(_PAPER)


def table() -> list[dict]:
    """Every setting's prediction: rows {measurement, readout, init, eta_A, eta_B, ratio,
    product} (what summary.json carries under "predictions")."""
    return [{"measurement": m, "readout": r, "init": i, **exponents(m, r, i)}
            for m in MEASUREMENTS for r in READOUTS for i in INITS]


def markdown() -> str:
    """The table of predictions as markdown (docs and summaries)."""
    rows = [[t["measurement"].replace("_", "-"), t["readout"], INIT_NAMES[t["init"]],
             *(f"{t[k]:+g}" for k in RATES)] for t in table()]
    return markdown_table(["rates", "readout", "init", "eta_A*", "eta_B*", "ratio", "product"],
                          rows)
