"""What the width law predicts: the exponents of n of eta_A*, eta_B*, their ratio and their
product, *derived* here by a counting written as code (`count`) and solved for the rates
(`exponents`), for every measurement, optimizer, readout, init and task convention. Every
comparison in the project reads them from here (the commands copy the table into summary.json),
so a measurement is only ever set against the prediction of the setting it ran, and a setting
the counting does not cover gets none (`NoPrediction`), never a neighbour's.

The counting (`docs/width_law.md` at length). One LoRA layer z = relu(P + s (Z A) B) with input
Z of width n (coordinates Theta(1), a fixed number of tokens), rank r fixed, read out by a frozen
f = z W_out. Every size is a power of n when eta_A = n^alpha and eta_B = n^beta (a `Power`):

    W_out        n^-1/2 (readout sp) or n^-1 (mup), per coordinate
    residual     Theta(1) when the task holds the *output*'s change fixed (held="output");
                 n^(1/2) W_out when it holds the *layer*'s change fixed (held="layer": a Theta(1)
                 change of z along a direction random to W_out moves f by sqrt(n) |W_out|)
    dL/dz        residual W_out: every token's gradient points along W_out
    a step       Adam: eta per coordinate whatever the gradient's scale (eta sign(g) at first);
                 SGD: eta times the gradient's coordinates
    Z dA         n^alignment |dA|: A's step follows the signs of Z^T G, so the n terms of Z dA
                 share a sign (alignment 1) when n is well above the tokens in a batch or the
                 inputs share a direction; `tinylora.lab.alignment` measures it

Init[1] (B_0 = 0, A_0 ~ N(0, 1/n)): the features Z A_0 are Theta(1); step 1 moves only B, along
W_out (dB = (Z A)^T dL/dz); at t = 2, A's gradient Z^T (dL/dz B^T) sums n coordinated terms.
Init[2] (A_0 = 0, B_0 ~ N(0, 1)): A's gradient sums n terms of random sign (B_0 is random to
W_out); the features are Z A_1; delta1 = (Z dA) B_0 lies in B_0's span, random to W_out.

A change of z along W_out moves f by n |dz| |W_out|, one random to it by sqrt(n) |dz| |W_out|.

    balanced      delta1 = delta2 = c (Theta(1)) at t = 2
    loss-optimal  each factor's change of f is as large as the residual (larger overshoots,
                  smaller learns nothing), unless that moves the features Z A by more than
                  Theta(1): then A's rate is capped where the features stay Theta(1)

Two conditions, linear in (alpha, beta): `exponents` solves them exactly (fractions). Examples
(alignment 1): Adam balanced (-1, 0, +1) whatever the readout; Adam loss-optimal (-1, -1/2,
+1/2) with sp, (-1, 0, +1) with mup (-1, -1/2, +1/2 when the layer's change is held fixed); SGD
loss-optimal Init[1] (-1, 0, +1) with sp and (-1, +1, +2) with mup. No prediction: SGD with
Init[2] (at t = 2 B's first step, coordinated with W_out, can outweigh the random B_0 in A's
gradient, so the count at t = 2 does not close), and a model without a readout wherever the
readout enters.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from tinylora.run.records import markdown_table

MEASUREMENTS = ("balanced", "loss_optimal")
OPTIMIZERS = ("adam", "sgd")
READOUTS = ("sp", "mup")
INITS = ("zero_B", "zero_A")  # Init[1], Init[2] (tinylora.lora's names)
HELD = ("output", "layer")  # what the task keeps Theta(1) at every width (`finetune_toy`)
INIT_NAMES = {"zero_B": "Init[1]", "zero_A": "Init[2]"}  # the paper's names, for tables
RATES = ("eta_A", "eta_B", "ratio", "product")
READOUT_SIZE = {"sp": Fraction(-1, 2), "mup": Fraction(-1)}  # log_n of W_out's coordinates


class NoPrediction(ValueError):
    """A setting the counting does not cover: no prediction is attached to it."""


@dataclass(frozen=True)
class Power:
    """A size n^(const + a alpha + b beta) when eta_A = n^alpha and eta_B = n^beta."""

    const: Fraction = Fraction(0)
    a: Fraction = Fraction(0)
    b: Fraction = Fraction(0)

    def __add__(self, other) -> Power:  # sizes multiply: their exponents add
        other = other if isinstance(other, Power) else Power(Fraction(other))
        return Power(self.const + other.const, self.a + other.a, self.b + other.b)

    __radd__ = __add__

    def at(self, alpha, beta) -> Fraction:
        return self.const + self.a * alpha + self.b * beta


ETA_A, ETA_B = Power(a=Fraction(1)), Power(b=Fraction(1))
SHARED_SIGN, RANDOM_SIGN = Power(Fraction(1)), Power(Fraction(1, 2))  # a sum of n terms


def count(optimizer: str, readout: str, init: str, held: str = "output",
          alignment=1) -> dict:
    """The sizes at step t = 2 of one LoRA layer's quantities, as `Power`s (module docstring):
    {"delta1", "delta2", "features" (how far Z A moved), "residual", "output1", "output2" (how
    far delta1 and delta2 move f)}."""
    w = Power(READOUT_SIZE[readout])
    residual = Power() if held == "output" else RANDOM_SIGN + w
    g_z = residual + w  # dL/dz, per coordinate, along W_out
    alignment = Power(Fraction(alignment).limit_denominator(1000))

    def step(eta: Power, grad: Power) -> Power:
        return eta if optimizer == "adam" else eta + grad

    if init == "zero_B":
        features = Power()  # Z A_0: n terms of size n^-1/2, random signs
        B = step(ETA_B, features + g_z)  # B_1: step 1 moves only B (B_0 = 0 leaves dA = 0)
        A_step = step(ETA_A, SHARED_SIGN + g_z + B)  # Z^T (dL/dz B_1^T): B_1 lies along W_out
        Z_dA = alignment + A_step
        moved, delta1_direction = Z_dA, SHARED_SIGN  # delta1 = (Z dA) B_1: along W_out
    else:
        if optimizer != "adam":
            raise NoPrediction("Init[2] with SGD: at t = 2 B's first step (along W_out) can "
                               "outweigh the random B_0 in A's gradient; the count does not close")
        B = Power()  # B_0 ~ N(0, 1) (Adam's steps of eta_B <= Theta(1) leave it Theta(1))
        A_step = step(ETA_A, RANDOM_SIGN + g_z + B)  # Z^T (dL/dz B_0^T): B_0 random to W_out
        Z_dA = alignment + A_step
        features = moved = Z_dA  # Z A_1 (A_0 = 0)
        delta1_direction = RANDOM_SIGN  # delta1 = (Z dA) B_0: in B_0's span
    delta1 = Z_dA + B
    delta2 = features + step(ETA_B, features + g_z)  # (Z A) dB, dB = (Z A)^T dL/dz
    return {"delta1": delta1, "delta2": delta2, "features": moved, "residual": residual,
            "output1": delta1_direction + w + delta1, "output2": SHARED_SIGN + w + delta2}


def _solve(equations) -> tuple[Fraction, Fraction]:
    """(alpha, beta) with lhs.at(alpha, beta) == rhs.const for both (lhs, rhs) pairs."""
    (p, x), (q, y) = equations
    u, v = x.const - p.const, y.const - q.const
    det = p.a * q.b - p.b * q.a
    if det == 0:
        raise NoPrediction("the two conditions fix only one combination of the rates")
    return (u * q.b - p.b * v) / det, (p.a * v - u * q.a) / det


def _check(name, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {list(allowed)}, got {value!r}")


def exponents(measurement: str, readout: str, init: str = "zero_B", optimizer: str = "adam",
              held: str = "output", alignment=1) -> dict:
    """{"eta_A", "eta_B", "ratio", "product"}: the predicted exponents of n (module docstring).

    readout "none" (a model without a frozen readout, the Transformer block): allowed where the
    readout does not enter. Raises `NoPrediction` where the counting has no answer."""
    _check("measurement", measurement, MEASUREMENTS)
    _check("optimizer", optimizer, OPTIMIZERS)
    _check("readout", readout, (*READOUTS, "none"))
    _check("init", init, INITS)
    _check("held", held, HELD)
    if readout == "none":
        each = [exponents(measurement, r, init, optimizer, held, alignment) for r in READOUTS]
        if each[0] != each[1]:
            raise NoPrediction(f"{measurement} rates with {optimizer}: the readout enters, and "
                               "this model has none")
        return each[0]
    q = count(optimizer, readout, init, held, alignment)
    if measurement == "balanced":
        alpha, beta = _solve([(q["delta1"], Power()), (q["delta2"], Power())])
    else:
        alpha, beta = _solve([(q["output1"], q["residual"]), (q["output2"], q["residual"])])
        if q["features"].at(alpha, beta) > 0:  # A's rate capped: the features stay Theta(1)
            alpha, beta = _solve([(q["features"], Power()), (q["output2"], q["residual"])])
    return {"eta_A": float(alpha), "eta_B": float(beta), "ratio": float(beta - alpha),
            "product": float(alpha + beta)}


def attach(measurement: str, readout: str, init: str = "zero_B", optimizer: str = "adam",
           held: str = "output", alignment=1) -> tuple[dict | None, str | None]:
    """(prediction, None), or (None, why there is none): what a summary records."""
    try:
        return exponents(measurement, readout, init, optimizer, held, alignment), None
    except NoPrediction as why:
        return None, str(why)


def table() -> list[dict]:
    """Every setting that has a prediction (alignment 1): rows {measurement, optimizer, readout,
    init, held, eta_A, eta_B, ratio, product} (what summary.json carries under "predictions")."""
    rows = []
    for m in MEASUREMENTS:
        for o in OPTIMIZERS:
            for r in READOUTS:
                for i in INITS:
                    for h in HELD:
                        predicted, _ = attach(m, r, i, o, h)
                        if predicted is not None:
                            rows.append({"measurement": m, "optimizer": o, "readout": r,
                                         "init": i, "held": h, **predicted})
    return rows


def markdown(optimizer: str | None = None, held: str | None = None) -> str:
    """The table of predictions as markdown, for one optimizer and convention if given."""
    rows = [[t["measurement"].replace("_", "-"), t["optimizer"], t["readout"],
             INIT_NAMES[t["init"]], t["held"], *(f"{t[k]:+g}" for k in RATES)] for t in table()
            if (optimizer or t["optimizer"]) == t["optimizer"] and (held or t["held"]) == t["held"]]
    return markdown_table(["rates", "optimizer", "readout", "init", "held fixed", "eta_A*",
                           "eta_B*", "ratio", "product"], rows)
