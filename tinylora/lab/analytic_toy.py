"""The paper's analytic toy (Eq. 2): one LoRA "layer" of width n, exact, at every width.

    f(x) = b a^T x,   x in R^n,  a in R^n,  b a scalar,  one data point (x, y),
    L = (f - y)^2 / 2,  U = f - y.      (W* = 0: replace y by y - W* x.)
    dL/db = (a^T x) U        dL/da = b U x

x has coordinates +-1 (random signs), so ||x||^2 = n exactly. Write s = a^T x (the paper's Z_A).
One step moves the output by delta1 + delta2 + delta3 (`docs/paper.md`):

    delta1 = b_{t-1} (a_t - a_{t-1})^T x          what moving a did (b held)
    delta2 = (b_t - b_{t-1}) a_{t-1}^T x          what moving b did (a held)
    delta3 = (b_t - b_{t-1}) (a_t - a_{t-1})^T x  both together

Exactness. GD moves a along x, so the whole run is a function of (b, s) and n:
``s <- s - eta_a b U n``, ``b <- b - eta_b s U``. Adam acts coordinate-wise, but every coordinate
of dL/da is ``(b U) x_i`` with ``|x_i| = 1``, so its update is ``-eta_a phi_t x_i`` with one
scalar phi_t for all i, and again ``s <- s - eta_a phi_t n``. The only random number that matters
is s_0 = a_0^T x; we condition on it (Init[1]: a_0 ~ N(0, 1/n), projected onto a_0^T x = 1;
b_0 = 0. Init[2]: a_0 = 0, b_0 = 1), so widths differ only through n and the slopes below are
exact, not statistical. y = 1.

Schedules (eta_a, eta_b) ~ (n^-alpha, n^-beta), with lr and base width n0 = 16:
    shared       (lr, lr)                              alpha = 0,   beta = 0
    shared_sqrt  lr sqrt(n0/n) for both                alpha = 1/2, beta = 1/2
    loraplus16   (lr, 16 lr)                           alpha = 0,   beta = 0
    theory       (lr n0/n, 16 lr): eta_a = Theta(1/n), eta_b = Theta(1)   alpha = 1, beta = 0

Theory, Init[1] (b_0 = 0, s_0 = 1, U_0 = -1):
  t = 1. a does not move (its gradient is b_0 U x = 0): delta1 = delta3 = 0 (no slope).
         GD: b_1 = eta_b, delta2 = eta_b, slope -beta. Adam: b_1 = eta_b sign, same slope.
  t = 2. GD: U_1 = eta_b - 1 (n-free when beta = 0; -> -1 when beta > 0), and
           delta1 = -eta_a b_1^2 U_1 n = Theta(eta_a eta_b^2 n)    slope 1 - alpha - 2 beta
           delta2 = -eta_b s_1^2 U_1   = Theta(eta_b)              slope -beta
           delta3 = eta_a eta_b U_1^2 b_1 s_1 n                    slope 1 - alpha - 2 beta
         Adam: a's step is 0.744 eta_a per coordinate whatever the gradient's size
         (bias-corrected moments at t = 2 after a zero gradient at t = 1), so
         (a_2 - a_1)^T x = Theta(eta_a n):
           delta1 = b_1 (a_2 - a_1)^T x = Theta(eta_a eta_b n)     slope 1 - alpha - beta
           delta2 = Theta(eta_b)                                   slope -beta
           delta3 = Theta(eta_a eta_b n)                           slope 1 - alpha - beta
  So with one shared rate delta1 and delta2 cannot both be Theta(1) (shared: delta1 ~ n
  explodes; shared_sqrt with GD: both vanish like n^-1/2; with Adam delta2 vanishes), while the
  theory schedule keeps every delta at slope 0 - at every step, since with eta_a n and eta_b
  fixed the run (b, s) does not depend on n at all.
Theory, Init[2] (a_0 = 0, b_0 = 1, s_0 = 0): t = 1: only a moves, delta1 = Theta(eta_a n),
  slope 1 - alpha. t = 2 (asymptotic in n, m = max(0, 1 - alpha) the growth of U_1):
  GD: delta1 1 - alpha + m, delta2 -beta + 2(1 - alpha) + m, delta3 2 - 2 alpha - beta + 2m.
  Adam: delta1 1 - alpha, delta2 and delta3 1 - alpha - beta.
  Where n-dependent factors like (eta_a n - 1) are not yet at their asymptote, the fitted slope
  over 2^4..2^16 differs from these; the Init[1] predictions (and Init[2] at t = 1, and the
  theory schedule everywhere) are exact over any range.
"""

from __future__ import annotations

import math

from tinylora import backend
from tinylora.lab.fit import loglog_slope
from tinylora.optim import make_optimizer

SCHEDULES = {  # name: (alpha, beta, ratio eta_b / eta_a at the base width)
    "shared": (0.0, 0.0, 1.0),
    "shared_sqrt": (0.5, 0.5, 1.0),
    "loraplus16": (0.0, 0.0, 16.0),
    "theory": (1.0, 0.0, 16.0),
}
OPTIMIZERS = ("gd", "adam")
QUANTITIES = ("delta1", "delta2", "delta3", "f")
DELTAS = QUANTITIES[:3]
BASE_WIDTH = 16
REPORT_STEP = 2  # the first step at which all three deltas move under Init[1]
WIDTHS = tuple(2**k for k in range(4, 17))


def rates(schedule: str, n: int, lr: float, base_width: int = BASE_WIDTH) -> tuple[float, float]:
    """(eta_a, eta_b) of `schedule` at width n: lr (n0/n)^alpha and ratio * lr (n0/n)^beta."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {list(SCHEDULES)}, got {schedule!r}")
    alpha, beta, ratio = SCHEDULES[schedule]
    return lr * (base_width / n) ** alpha, ratio * lr * (base_width / n) ** beta


def init_toy(n: int, init: int, seed: int, xp, dtype=None):
    """-> (x, a_0, b_0): x (n,) of +-1, and the factors of Init[1] or Init[2] (see above)."""
    if init not in (1, 2):
        raise ValueError(f"init: expected 1 (B = 0) or 2 (A = 0), got {init!r}")
    rng = backend.host_rng(seed)
    x_host = rng.choice([-1.0, 1.0], size=n)
    x = xp.asarray(x_host, dtype=backend.resolve_dtype(dtype))
    if init == 1:  # a_0 ~ N(0, 1/n), then moved along x so that s_0 = a_0^T x = 1 exactly
        a = backend.normal(rng, (n,), 1.0 / math.sqrt(n), xp, dtype)
        a += x * ((1.0 - float(a @ x)) / n)
        b = xp.zeros(1, dtype=x.dtype)
    else:
        a = xp.zeros(n, dtype=x.dtype)
        b = xp.ones(1, dtype=x.dtype)
    return x, a, b


def run_width(n: int, schedule: str, optimizer: str, steps: int, init: int = 1, lr: float = 0.1,
              y: float = 1.0, seed: int = 0, backend_name=None, dtype=None) -> dict:
    """Train the toy at width n. -> {quantity: [value at t = 1..steps]} (host floats)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {list(OPTIMIZERS)}, got {optimizer!r}")
    xp = backend.get_xp(backend_name)
    x, a, b = init_toy(n, init, seed, xp, dtype)
    eta_a, eta_b = rates(schedule, n, lr)
    params = {"a": a, "b": b}
    groups = [{"params": ["a"], "lr": eta_a}, {"params": ["b"], "lr": eta_b}]
    opt = make_optimizer("sgd" if optimizer == "gd" else "adam", params, groups=groups)
    out = {q: [] for q in QUANTITIES}
    for _ in range(steps):
        s = a @ x  # s = a^T x, the paper's Z_A (a 0-d array)
        U = b[0] * s - y  # f - y
        a_prev, b_prev = a.copy(), b.copy()
        opt.step({"a": (b[0] * U) * x, "b": (s * U).reshape(1)})  # dL/da = b U x, dL/db = s U
        da_x = (a - a_prev) @ x  # (a_t - a_{t-1})^T x
        db = b[0] - b_prev[0]
        values = {"delta1": b_prev[0] * da_x, "delta2": db * (a_prev @ x), "delta3": db * da_x,
                  "f": b[0] * (a @ x)}
        for q, v in values.items():
            out[q].append(backend.finite_or_inf(v))
    return out


def theory_slope(init: int, optimizer: str, schedule: str, step: int, quantity: str):
    """The slope of log|quantity| against log n that the docstring derives, or None."""
    s = _theory_slope(init, optimizer, schedule, step, quantity)
    return None if s is None else s + 0.0  # + 0.0 turns -0.0 into 0.0


def _theory_slope(init, optimizer, schedule, step, quantity):
    alpha, beta, _ = SCHEDULES[schedule]
    if quantity not in DELTAS:
        return None
    if schedule == "theory":  # eta_a n and eta_b are width-free: the whole run is
        return 0.0 if (step >= 2 or quantity == ("delta2" if init == 1 else "delta1")) else None
    gd = optimizer == "gd"
    if init == 1:
        if step == 1:
            return -beta if quantity == "delta2" else None
        if step == 2:
            return -beta if quantity == "delta2" else (1 - alpha - (2 if gd else 1) * beta)
        return None
    m = max(0.0, 1 - alpha)
    if step == 1:
        return 1 - alpha if quantity == "delta1" else None
    if step == 2:
        if not gd:
            return 1 - alpha if quantity == "delta1" else 1 - alpha - beta
        return {"delta1": 1 - alpha + m, "delta2": -beta + 2 * (1 - alpha) + m,
                "delta3": 2 - 2 * alpha - beta + 2 * m}[quantity]
    return None


def theory_is_exact(init: int, schedule: str, step: int) -> bool:
    """Whether the predicted slope holds over any range of widths (not only as n -> infinity)."""
    return schedule == "theory" or step == 1 or (init == 1 and step == 2)


def run(widths=WIDTHS, steps: int = 4, init: int = 1, optimizers=OPTIMIZERS,
        schedules=tuple(SCHEDULES), lr: float = 0.1, seeds=(0,), backend_name=None, dtype=None,
        progress=None) -> list[dict]:
    """Every (optimizer, schedule, width, seed). -> records: one row per step and quantity."""
    rows = []
    jobs = [(o, s, n, seed)
            for o in optimizers for s in schedules for n in widths for seed in seeds]
    for opt_name, sched, n, seed in jobs:
        values = run_width(n, sched, opt_name, steps, init, lr, seed=seed,
                           backend_name=backend_name, dtype=dtype)
        for q, vs in values.items():
            rows += [{"optimizer": opt_name, "schedule": sched, "width": n, "seed": seed,
                      "step": t + 1, "quantity": q, "value": v} for t, v in enumerate(vs)]
        if progress is not None:
            progress.update(1)
    return rows


def slopes(rows: list[dict], init: int) -> list[dict]:
    """Fit |quantity| ~ n^s per (optimizer, schedule, step, delta), beside the theory's slope.

    The seeds' values are averaged in absolute value first (they agree to rounding: see above).
    """
    groups: dict = {}
    for r in rows:
        if r["quantity"] in DELTAS:
            key = (r["optimizer"], r["schedule"], r["step"], r["quantity"])
            groups.setdefault(key, {}).setdefault(r["width"], []).append(abs(r["value"]))
    out = []
    for (opt_name, sched, step, q), by_width in groups.items():
        widths = sorted(by_width)
        mean = [sum(by_width[n]) / len(by_width[n]) for n in widths]
        fit = loglog_slope(widths, mean)
        out.append({"optimizer": opt_name, "schedule": sched, "step": step, "quantity": q,
                    "slope": None if fit is None else fit.slope + 0.0,
                    "theory": theory_slope(init, opt_name, sched, step, q),
                    "exact": theory_is_exact(init, sched, step)})
    return out
