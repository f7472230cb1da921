"""Where two measured sizes both equal a target: a robust 2-D root finder on the log-rates.

The problem (`tinylora balance`): find (eta_A, eta_B) with RMS(delta1) = RMS(delta2) = c. In
u = log10 eta_A, v = log10 eta_B the two functions

    G1(u, v) = ln(delta1 / c),   G2(u, v) = ln(delta2 / c)

are close to linear where the theory holds (delta2 ~ eta_B, delta1 ~ eta_A eta_B n under
Init[1]), but nothing here assumes it: a bisection that assumes monotone sizes returns a guess
where they are not, so the search goes in three steps and reports what it saw.

1. Scan. Evaluate both sizes on a lattice of log-rates (spacing `step` decades) over a window.
   Every square of four neighbouring points where G1 and G2 both change sign may hold a
   crossing of the two contours; the bilinear interpolant of the square is solved for it.
   Crossings closer than one lattice step are one root.
2. Decide. No crossing: a linear fit of G1, G2 over the window says where the root should lie,
   and the window grows toward it (a few rounds at most; then "none"). More than one: "multiple",
   with every crossing reported and no answer picked. One: the root, and whether G1 and G2 are
   monotone along the lattice row and column through it ("monotone": False says the sizes rise
   and fall in the window, so a bracketing method would have been unreliable).
3. Refine. Newton steps from the interpolated crossing, the Jacobian taken from the square and
   updated by Broyden's rule, until both sizes are within `tol` of c (relative), every step's
   point evaluated exactly; "unconverged" if that fails.

`evaluate(points)` takes a list of (eta_A, eta_B) and returns, for each, a dict
``{key: {"delta1": .., "delta2": .., ...}}`` with one entry per target key (the quantities a
target can ask for: a step, a layer). Diverged runs give inf: read as "too big". All targets
share the evaluations (one training run gives every step and layer). Host floats only: this
module imports numpy directly (it never sees a training array).
"""

from __future__ import annotations

import math

import numpy as np  # host-side arithmetic on a few hundred floats

STATUSES = ("ok", "multiple", "none", "unconverged")


class Lattice:
    """Evaluations on the lattice u = i * step, v = j * step (log10 rates), cached by (i, j)."""

    def __init__(self, evaluate, step: float):
        self.evaluate, self.step, self.values = evaluate, step, {}
        self.evaluations = 0

    def fill(self, window) -> None:
        """Evaluate every lattice point of window ((i0, i1), (j0, j1)) not evaluated yet."""
        (i0, i1), (j0, j1) = window
        new = [(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)
               if (i, j) not in self.values]
        if new:
            results = self.evaluate([(10 ** (i * self.step), 10 ** (j * self.step))
                                     for i, j in new])
            self.values.update(zip(new, results))
            self.evaluations += len(new)

    def G(self, window, key, c: float):
        """(G1, G2) on the window as arrays [i, j] (inf where a run diverged)."""
        (i0, i1), (j0, j1) = window
        out = np.empty((2, i1 - i0 + 1, j1 - j0 + 1))
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                out[:, i - i0, j - j0] = _g(self.values[(i, j)][key], c)
        return out


def _g(sizes: dict, c: float):
    """(ln(delta1 / c), ln(delta2 / c)); a size 0 is -inf, a diverged (inf or nan) one +inf."""
    def one(x):
        x = float(x)
        if not math.isfinite(x):
            return math.inf
        return -math.inf if x <= 0 else math.log(x / c)

    return one(sizes["delta1"]), one(sizes["delta2"])


def _bilinear(corners, x: float, y: float):
    """The bilinear interpolants of (G1, G2) on the unit square at (x, y), and their Jacobian.

    corners: array (2, 2, 2) [function, x in {0, 1}, y in {0, 1}]."""
    f00, f10, f01, f11 = corners[:, 0, 0], corners[:, 1, 0], corners[:, 0, 1], corners[:, 1, 1]
    val = f00 * (1 - x) * (1 - y) + f10 * x * (1 - y) + f01 * (1 - x) * y + f11 * x * y
    jac = np.stack([(f10 - f00) * (1 - y) + (f11 - f01) * y,
                    (f01 - f00) * (1 - x) + (f11 - f10) * x], axis=1)
    return val, jac


def _bilinear_root(corners):
    """A common zero of the bilinear interpolants inside the unit square, by Newton.
    -> (x, y, Jacobian there) or None."""
    x = y = 0.5
    for _ in range(30):
        val, jac = _bilinear(corners, x, y)
        if abs(np.linalg.det(jac)) < 1e-14:
            return None
        dx, dy = np.linalg.solve(jac, -val)
        x, y = x + dx, y + dy
        if abs(dx) + abs(dy) < 1e-12:
            break
    eps = 1e-9
    if not (-eps <= x <= 1 + eps and -eps <= y <= 1 + eps):
        return None
    return x, y, _bilinear(corners, x, y)[1]


def crossings(G, window, step: float) -> list[dict]:
    """The points where the contours G1 = 0 and G2 = 0 cross, one per square that holds one
    (squares within one lattice step merged). -> [{"u", "v", "jacobian"}] (log10 units)."""
    (i0, _), (j0, _) = window
    found = []
    for a in range(G.shape[1] - 1):
        for b in range(G.shape[2] - 1):
            sq = G[:, a:a + 2, b:b + 2]
            if not np.all(np.isfinite(sq)):
                continue
            if not all(sq[k].min() <= 0 <= sq[k].max() for k in (0, 1)):
                continue
            root = _bilinear_root(sq)
            if root is None:
                continue
            x, y, jac = root  # the Jacobian per lattice step; per decade below
            point = {"u": (i0 + a + x) * step, "v": (j0 + b + y) * step, "jacobian": jac / step}
            if all(math.hypot(point["u"] - other["u"], point["v"] - other["v"]) > step
                   for other in found):
                found.append(point)
    return found


def monotone(G, window, step: float, u: float, v: float, slack: float = 1e-3) -> bool:
    """Whether G1 and G2 are each monotone along the lattice row and column nearest (u, v)
    (finite values only; changes below `slack` ignored)."""
    (i0, _), (j0, _) = window
    a = min(max(round(u / step) - i0, 0), G.shape[1] - 1)
    b = min(max(round(v / step) - j0, 0), G.shape[2] - 1)
    for line in (G[0, :, b], G[1, :, b], G[0, a, :], G[1, a, :]):
        d = np.diff(line[np.isfinite(line)])
        d = d[np.abs(d) > slack]
        if d.size and not (np.all(d > 0) or np.all(d < 0)):
            return False
    return True


def _toward(G, window, step: float, most: int):
    """A grown window that should contain the root a linear fit of G1, G2 predicts."""
    (i0, i1), (j0, j1) = window
    ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
    rows, sol = [], []
    for k in (0, 1):
        ok = np.isfinite(G[k])
        if ok.sum() < 3:
            return None
        X = np.stack([np.ones(ok.sum()), ii[ok], jj[ok]], axis=1)
        coef = np.linalg.lstsq(X, G[k][ok], rcond=None)[0]
        rows.append(coef[1:])
        sol.append(-coef[0])
    try:
        i_star, j_star = np.linalg.solve(np.array(rows), np.array(sol))
    except np.linalg.LinAlgError:
        return None
    lo_i = max(i0 - most, min(i0, math.floor(i_star) - 1))
    hi_i = min(i1 + most, max(i1, math.ceil(i_star) + 1))
    lo_j = max(j0 - most, min(j0, math.floor(j_star) - 1))
    hi_j = min(j1 + most, max(j1, math.ceil(j_star) + 1))
    grown = ((lo_i, hi_i), (lo_j, hi_j))
    return None if grown == tuple(window) else grown


def _refine(lattice, targets, starts, tol: float, max_iter: int):
    """Broyden-Newton from each start; -> per target (u, v, sizes at the point, converged)."""
    state = [dict(s, done=False, sizes=None) for s in starts]
    for _ in range(max_iter + 1):
        todo = [k for k, s in enumerate(state) if not s["done"]]
        if not todo:
            break
        results = lattice.evaluate([(10 ** state[k]["u"], 10 ** state[k]["v"]) for k in todo])
        lattice.evaluations += len(todo)
        for k, res in zip(todo, results):
            s, (key, c) = state[k], targets[k]
            g = np.array(_g(res[key], c))
            if s["sizes"] is None or np.abs(g).max() < s["err"]:  # the best point so far
                s["sizes"], s["at"], s["err"] = res[key], (s["u"], s["v"]), np.abs(g).max()
            if np.all(np.abs(g) <= math.log1p(tol)):
                s["done"], s["converged"] = True, True
                continue
            if not np.all(np.isfinite(g)):
                s["done"], s["converged"] = True, False
                continue
            if s.get("g") is not None and np.abs(g).max() > np.abs(s["g"]).max():
                s["u"], s["v"] = (s["u"] + s["prev"][0]) / 2, (s["v"] + s["prev"][1]) / 2
                continue  # the step made things worse: go back half-way, keep the Jacobian
            if s.get("g") is not None:  # Broyden: the Jacobian learns from the last step
                dx = np.array([s["u"] - s["prev"][0], s["v"] - s["prev"][1]])
                s["jacobian"] = s["jacobian"] + np.outer(g - s["g"] - s["jacobian"] @ dx,
                                                         dx) / float(dx @ dx)
            try:
                du, dv = np.linalg.solve(s["jacobian"], -g)
            except np.linalg.LinAlgError:
                s["done"], s["converged"] = True, False
                continue
            shrink = min(1.0, 0.5 / max(abs(du), abs(dv), 1e-30))  # at most half a decade
            s["prev"], s["g"] = (s["u"], s["v"]), g
            s["u"], s["v"] = s["u"] + shrink * du, s["v"] + shrink * dv
    return [(s["at"][0], s["at"][1], s["sizes"], s.get("converged", False)) for s in state]


def solve(evaluate, targets, windows, step: float = 0.5, tol: float = 1e-3, max_iter: int = 12,
          max_rounds: int = 4, grow: int = 4, lattice: Lattice | None = None) -> list[dict]:
    """Every target (key, c): the (eta_A, eta_B) where delta1 = delta2 = c (module docstring).

    windows: ((i0, i1), (j0, j1)), lattice indices of log10 eta_A and log10 eta_B (times
    `step`), where the scan starts: one for every target, or a list with one per target.
    -> one dict per target: status (one of `STATUSES`), eta_A, eta_B (None unless "ok" or
    "unconverged"), sizes (the evaluation at the returned point: delta1, delta2 and whatever
    else `evaluate` measures), candidates (every crossing the scan saw), monotone, window."""
    lattice = lattice or Lattice(evaluate, step)
    found = {}
    one = len(windows) == 2 and isinstance(windows[0][0], int)
    windows = {k: tuple(map(tuple, windows if one else windows[k])) for k in range(len(targets))}
    for _ in range(max_rounds + 1):
        pending = [k for k in range(len(targets)) if k not in found]
        if not pending:
            break
        for k in pending:
            lattice.fill(windows[k])
        for k in pending:
            key, c = targets[k]
            G = lattice.G(windows[k], key, c)
            cand = crossings(G, windows[k], step)
            grown = None if cand else _toward(G, windows[k], step, grow)
            if cand or grown is None:
                found[k] = (cand, G)
            else:
                windows[k] = grown
    out, starts, refine = [], [], []
    for k, (key, c) in enumerate(targets):
        cand, G = found.get(k, ([], None))
        row = {"key": key, "c": c, "status": "none" if not cand else "multiple",
               "eta_A": None, "eta_B": None, "sizes": None, "window": windows[k],
               "candidates": [{"eta_A": 10 ** point["u"], "eta_B": 10 ** point["v"]}
                              for point in cand],
               "monotone": None}
        if len(cand) == 1:
            row["monotone"] = monotone(G, windows[k], step, cand[0]["u"], cand[0]["v"])
            starts.append(cand[0])
            refine.append(k)
        out.append(row)
    for k, (u, v, sizes, ok) in zip(refine, _refine(lattice, [targets[k] for k in refine],
                                                    starts, tol, max_iter)):
        out[k].update(status="ok" if ok else "unconverged", eta_A=10 ** u, eta_B=10 ** v,
                      sizes=sizes)
    return out
