"""Locating the loss-optimal rates of a learning-rate grid: a continuous estimate with a
bootstrap over seeds, and the verdict "flat valley" where the grid cannot locate it.

The argmin of a lattice is a poor estimate of an optimum: it moves by whole cells with the noise,
and in a long flat valley it can sit anywhere along the valley. Here, in u = log10 eta_A and
v = log10 eta_B,

    y(u, v) = log10(seed-mean loss)

is fitted by least squares with a *cubic* in x = (u, v) over the finite cells within `RADIUS`
lattice steps of the best cell (a (2R + 1)^2 square), and the optimum is its stationary point
nearest the best cell: Newton's method from the stationary point of the cubic's quadratic part,
``-H^-1 g``, provided the Hessian is positive definite there and at x*, and x* lies within the
fitted square (else the fit "fails": the surface there is not a bowl the grid can see). Why a
cubic: the measured surfaces are not bowls. Their walls are asymmetric (the loss rises slowly
toward small rates, steeply toward divergence: across the valley and along it), and a quadratic
fitted over a symmetric square moves its vertex toward the gentle side. On planted surfaces with
walls as asymmetric as a recorded grid's and each seed its own optimum (`tests/test_optimum.py`)
a quadratic put the product 0.13 decades off (0 of 40 intervals held it) and the ratio 0.09; the
cubic is off by at most 0.004, and its intervals hold the truth in 38 or 39 of 40 for every rate.

Intervals come from a bootstrap over seeds (never from "cells within 1 %"): draw the seeds with
replacement, refit, repeat `BOOT` times; the interval is the estimate +- t_0.975(n - 1) times
the draws' standard deviation, corrected for n seeds (`_interval`). Exponents are fitted per
bootstrap draw too (one draw per width, a least-squares slope of log10 rate on log10 n, over the
widths whose fit succeeded in that draw, at least 80 % of them) and their interval is built from
those slopes the same way, so it carries the seed noise of every width.

The ratio v - u and the product u + v are read off every draw as well. A valley along which the
loss barely changes shows as a small eigenvalue of H, fits that fail in many draws, and a wide
ratio interval, while the product (the valley's position) stays sharp. `identifiable` says so
per width: at least 90 % of the draws fit, and the ratio's interval spans at most `MAX_SPREAD`
decades (then eta_A*, eta_B* and the ratio are located); `product_identifiable` asks the same of
the product's interval (in a flat valley the product usually still is).

A grid is ``{(kA, kB): per-seed losses}`` with ``eta = 10^(k / per_decade)``; a diverged seed makes
its cell inf (left out). Host floats only: this module imports numpy directly.
"""

from __future__ import annotations

import math

import numpy as np  # host-side statistics on a few hundred floats, never on device arrays

from tinylora.lab.fit import t975

RADIUS = 2  # the fitted square: the best cell +- 2 lattice steps
MIN_CELLS = 12  # finite cells the fit needs in its square (a cubic has 10 coefficients)
BOOT = 400  # bootstrap draws
MAX_SPREAD = 1.0  # decades: a ratio interval wider than this is not a located optimum
MIN_FIT = 0.9  # share of bootstrap draws whose fit must succeed
MIN_WIDTHS = 0.8  # an exponent's draw needs the fits of this share of the widths
RATES = ("eta_A", "eta_B", "ratio", "product")


def surface(grid: dict, seeds) -> dict:
    """{(kA, kB): log10 of the mean loss over `seeds` (indices, repeats allowed)}; inf if any
    of them diverged or the loss is not positive."""
    out = {}
    for k, losses in grid.items():
        values = [losses[s] for s in seeds]
        m = sum(values) / len(values)
        out[k] = math.log10(m) if math.isfinite(m) and m > 0 else math.inf
    return out


def _cubic_terms(x):
    """The cubic's basis at points x (k, 2): 1, u, v, u^2/2, uv, v^2/2, u^3/6, u^2 v/2, u v^2/2,
    v^3/6 (scaled so that the coefficients of the quadratic part are g and H)."""
    u, v = x[:, 0], x[:, 1]
    return np.stack([np.ones(len(u)), u, v, u * u / 2, u * v, v * v / 2, u**3 / 6,
                     u * u * v / 2, u * v * v / 2, v**3 / 6], axis=1)


def _gradient_and_hessian(c, x):
    """The cubic's gradient (2,) and Hessian (2, 2) at x = (u, v), from its coefficients c."""
    u, v = x
    g = np.array([c[1] + c[3] * u + c[4] * v + c[6] * u * u / 2 + c[7] * u * v + c[8] * v * v / 2,
                  c[2] + c[4] * u + c[5] * v + c[7] * u * u / 2 + c[8] * u * v + c[9] * v * v / 2])
    H = np.array([[c[3] + c[6] * u + c[7] * v, c[4] + c[7] * u + c[8] * v],
                  [c[4] + c[7] * u + c[8] * v, c[5] + c[8] * u + c[9] * v]])
    return g, H


def fit(surf: dict, per_decade: int, radius: int = RADIUS):
    """The cubic fit around the best cell of a surface. -> dict {u, v (log10 rates), H (the
    Hessian at the optimum), best (kA, kB), n_cells, y} or None when it fails (see the module
    docstring)."""
    finite = {k: y for k, y in surf.items() if math.isfinite(y)}
    if len(finite) < MIN_CELLS:
        return None
    best = min(finite, key=finite.get)
    near = [(k, y) for k, y in finite.items()
            if max(abs(k[0] - best[0]), abs(k[1] - best[1])) <= radius]
    if len(near) < MIN_CELLS:
        return None
    step = 1.0 / per_decade
    x = np.array([[(ka - best[0]) * step, (kb - best[1]) * step] for (ka, kb), _ in near])
    coef, *_ = np.linalg.lstsq(_cubic_terms(x), np.array([y for _, y in near]), rcond=None)
    xs = np.zeros(2)
    for _ in range(50):  # Newton from the best cell: the first step is the quadratic's vertex
        g, H = _gradient_and_hessian(coef, xs)
        if np.any(np.linalg.eigvalsh(H) <= 0) or np.any(np.abs(xs) > radius * step):
            return None
        dx = -np.linalg.solve(H, g)
        xs = xs + dx
        if np.abs(dx).max() < 1e-12:
            break
    g, H = _gradient_and_hessian(coef, xs)
    if (np.abs(g).max() > 1e-9 or np.any(np.linalg.eigvalsh(H) <= 0)
            or np.any(np.abs(xs) > radius * step)):
        return None
    return {"u": best[0] * step + xs[0], "v": best[1] * step + xs[1], "H": H.tolist(),
            "best": list(best), "n_cells": len(near),
            "y": float((_cubic_terms(xs[None]) @ coef)[0])}


def _rates(f) -> dict:
    """log10 of eta_A*, eta_B*, the ratio and the product from a fit."""
    return {"eta_A": f["u"], "eta_B": f["v"], "ratio": f["v"] - f["u"], "product": f["u"] + f["v"]}


def _interval(values, center: float, n_seeds: int) -> list | None:
    """center +- t_0.975(n - 1) sd(draws) sqrt(n / (n - 1)): the bootstrap's spread, widened as
    a t interval for n seeds (plain quantiles of 6-8 resampled seeds cover too rarely: the
    resampled spread is too small by (n - 1) / n, and the tails are coarse)."""
    if len(values) < 2 or center is None:
        return None
    half = t975(n_seeds - 1) * float(np.std(values, ddof=1)) * math.sqrt(n_seeds / (n_seeds - 1))
    return [center - half, center + half]


def bootstrap_draws(grid: dict, n_seeds: int, per_decade: int, rng, boot: int = BOOT) -> list:
    """`boot` refits on seeds drawn with replacement: a list of log10-rate dicts (None for a
    draw whose fit failed)."""
    draws = []
    for _ in range(boot):
        seeds = rng.integers(0, n_seeds, n_seeds)
        f = fit(surface(grid, seeds), per_decade)
        draws.append(None if f is None else _rates(f))
    return draws


def locate(grid: dict, n_seeds: int, per_decade: int, rng, boot: int = BOOT) -> dict:
    """The optimum of one width's grid: point estimate (every seed), bootstrap intervals and
    the identifiability verdict. Rates as numbers (not logs); intervals likewise."""
    full = fit(surface(grid, range(n_seeds)), per_decade)
    draws = bootstrap_draws(grid, n_seeds, per_decade, rng, boot)
    good = [d for d in draws if d is not None]
    out = {"fit": full, "fit_share": len(good) / max(1, len(draws)), "draws": draws}
    for rate in RATES:
        center = None if full is None else _rates(full)[rate]
        q = _interval([d[rate] for d in good], center, n_seeds)
        out[rate] = None if full is None else 10 ** center
        out[f"{rate}_interval"] = None if q is None else [10 ** q[0], 10 ** q[1]]
    spread = None if out["ratio_interval"] is None else math.log10(
        out["ratio_interval"][1] / out["ratio_interval"][0])
    out["ratio_spread_decades"] = spread
    out["identifiable"] = bool(full is not None and out["fit_share"] >= MIN_FIT
                               and spread is not None and spread <= MAX_SPREAD)
    product = out["product_interval"]
    out["product_identifiable"] = bool(
        full is not None and out["fit_share"] >= MIN_FIT and product is not None
        and math.log10(product[1] / product[0]) <= MAX_SPREAD)
    if full is not None:
        eig = np.linalg.eigvalsh(np.array(full["H"]))
        out["curvatures"] = [float(e) for e in eig]  # of log10 loss, per decade^2
    return out


def exponent(widths, located: list, rate: str, n_seeds: int) -> dict | None:
    """The exponent of `rate` over the widths where it was located: the least-squares slope of
    the point estimates, and the 95 % interval of the slopes fitted draw by draw."""
    keep = [i for i, loc in enumerate(located) if loc[rate] is not None]
    if len(keep) < 2:
        return None
    lw = np.log10([widths[i] for i in keep])
    slope = float(np.polyfit(lw, np.log10([located[i][rate] for i in keep]), 1)[0])
    slopes = []
    for b in range(len(located[keep[0]]["draws"])):
        pts = [(lw[j], located[i]["draws"][b]) for j, i in enumerate(keep)]
        pts = [(x, d[rate]) for x, d in pts if d is not None]
        if len(pts) >= max(2, MIN_WIDTHS * len(keep)):  # a width whose fit failed in this
            slopes.append(float(np.polyfit(*zip(*pts), 1)[0]))  # draw is left out of it
    return {"slope": slope, "interval": _interval(slopes, slope, n_seeds),
            "widths": [widths[i] for i in keep],
            "draws": len(slopes)}


# --------------------------------------------------------------------------------------------
# One dimension: the optimum of a profile, e.g. the best LoRA+ ratio of a fine-tuning study


def fit_profile(x, y, radius: int = RADIUS):
    """The quadratic ``y0 + g (x - x_b) + h (x - x_b)^2 / 2`` fitted by least squares to the
    finite points within `radius` places of the lowest one (sorted by x). -> dict {x, y, h,
    best, n_points}, or None when it fails: fewer than 3 points, h <= 0 (no bowl), or the
    stationary point outside the fitted points' range (the optimum lies beyond the profile)."""
    pts = sorted((float(a), float(b)) for a, b in zip(x, y) if math.isfinite(b))
    if len(pts) < 3:
        return None
    i = min(range(len(pts)), key=lambda j: pts[j][1])
    near = pts[max(0, i - radius):i + radius + 1]
    if len(near) < 3:
        return None
    xb = pts[i][0]
    dx = np.array([a - xb for a, _ in near])
    design = np.stack([np.ones(len(dx)), dx, dx**2 / 2], axis=1)
    (y0, g, h), *_ = np.linalg.lstsq(design, np.array([b for _, b in near]), rcond=None)
    if h <= 0:
        return None
    xs = -g / h
    if not dx.min() <= xs <= dx.max():
        return None
    return {"x": xb + float(xs), "y": float(y0 + g * xs + h * xs**2 / 2), "h": float(h),
            "best": xb, "n_points": len(near)}


def locate_profile(x, losses, rng, boot: int = BOOT, name: str = "ratio", draw=None) -> dict:
    """The optimum of a profile measured on several seeds: `x` (k,) the log10 of the knob,
    `losses` (k, n_seeds) per point and seed (inf: diverged). The fitted curve is log10 of
    the seed-mean loss, as in `fit`; the interval is the bootstrap over seeds (`_interval`).
    `draw(rng)`, when given, makes each bootstrap draw's curve instead of resampling the
    columns of `losses` (the fine-tuning study redoes its lr choice there:
    `tinylora.text.rechoose`).

    -> {name: 10^x*, f"{name}_interval", "fit", "fit_share", "draws": [{name: log10}|None],
    "identifiable"}: the shape `exponent` reads (so the exponent of the optimum against the
    width, with its interval, comes from the same draws)."""
    losses = np.asarray(losses, dtype=float)
    n_seeds = losses.shape[1]

    def curve(seeds):
        m = losses[:, seeds].mean(axis=1)
        return [math.log10(v) if math.isfinite(v) and v > 0 else math.inf for v in m]

    full = fit_profile(x, curve(list(range(n_seeds))))
    draws = []
    for _ in range(boot):
        f = fit_profile(x, draw(rng) if draw else curve(rng.integers(0, n_seeds, n_seeds)))
        draws.append(None if f is None else {name: f["x"]})
    good = [d[name] for d in draws if d is not None]
    q = _interval(good, None if full is None else full["x"], n_seeds)
    spread = None if q is None else q[1] - q[0]
    return {name: None if full is None else 10 ** full["x"],
            f"{name}_interval": None if q is None else [10 ** q[0], 10 ** q[1]],
            "fit": full, "fit_share": len(good) / max(1, boot), "draws": draws,
            "identifiable": bool(full is not None and len(good) >= MIN_FIT * boot
                                 and spread is not None and spread <= MAX_SPREAD)}
