"""Reading the width sweep's grids: the located optimum per width, the exponents against the
prediction, LoRA against LoRA+ scored on seeds they were not tuned on.

    located      `tinylora.lab.optimum.locate` on the final window (training loss at the measured
                 step): eta_A*, eta_B*, ratio, product, each with its bootstrap interval, and
                 whether the optimum is identifiable there (else: a flat valley)
    exponents    fitted over the widths where the optimum is located (a width on the grid's edge
                 is left out of every fit; one in a flat valley out of the fits of eta_A*, eta_B*
                 and the ratio, and out of the product's where its product is not located
                 either; both lists are in the summary), and again over those
                 from n = `FIT_FROM` on: at n = 64 the sp sweep is pre-asymptotic (eta_A* n and
                 eta_B* sqrt(n) are flat only from 128 on), so the two fits side by side show how
                 much one width moves the answer
    best cell    the lattice cell with the lowest seed-mean loss, and the exponents of its rates
                 (least squares with the textbook regression interval, `tinylora.lab.fit`): a
                 readout to a quarter decade that needs no bowl. With SGD the loss falls until
                 the rates diverge, so there is no stationary point to fit, and this is the
                 measurement; with Adam it is a cross-check of the fit
    predicted    the counting's prediction for the optimizer, readout, init and convention that
                 ran (`tinylora.lab.predictions`), or None and the reason where it has none
    held out     the seeds split in two halves; each method's best lattice cell is chosen on one
                 half (LoRA+: the 2-D window; LoRA: the diagonal) and its loss read on the other
                 half; the two directions averaged. Nothing favours the larger search space.
    above floor  the best cell's loss at the measured step over its loss at step 0 (the teacher's
                 floor is 0: this is how much of the way is left)
"""

from __future__ import annotations

import math
from dataclasses import asdict

from tinylora import backend
from tinylora.lab import landscape, optimum, predictions
from tinylora.lab.fit import loglog_slope

RATES = optimum.RATES
MAX_HALF_WIDTH = 0.3  # a ratio exponent whose interval is wider than +-0.3 is not a measurement
FIT_FROM = 128  # the second fit's smallest width


def loss_grid(cells: list, at: int = -1) -> dict:
    """{(kA, kB): [each seed's training loss at record index `at`]}: what `optimum` reads."""
    return {(c["kA"], c["kB"]): [seed[at] for seed in c["train"]] for c in cells}


def _mean(cell: dict, seeds, at: int = -1) -> float:
    values = [cell["train"][s][at] for s in seeds]
    return math.inf if any(not math.isfinite(v) for v in values) else sum(values) / len(values)


def held_out(cells: list, diagonal: list, seeds: int) -> dict:
    """LoRA+ and LoRA, each tuned on one half of the seeds and scored on the other (twice)."""
    halves = (list(range(0, seeds, 2)), list(range(1, seeds, 2)))
    scores = {"loraplus": [], "lora": []}
    for tune, score in (halves, halves[::-1]):
        for name, pool in (("loraplus", cells), ("lora", diagonal)):
            finite = [c for c in pool if math.isfinite(_mean(c, tune))]
            pick = min(finite, key=lambda c: _mean(c, tune)) if finite else None
            scores[name].append(math.inf if pick is None else _mean(pick, score))
    out = {k: sum(v) / len(v) for k, v in scores.items()}
    lora_best = landscape.best_cell(diagonal)
    out["lora_eta"] = None if lora_best is None else lora_best["eta_A"]
    return out


def analyze_width(payload: dict, cfg) -> dict:
    """Everything the summary reports about one width."""
    cells = landscape.window_cells(payload)
    diagonal = [c for c in payload["cells"] if c["kA"] == c["kB"]]
    rng = backend.host_rng([cfg.model_seed, payload["width"], 7])  # the bootstrap's own draws
    loc = optimum.locate(loss_grid(cells), cfg.seeds, cfg.per_decade, rng)
    best = landscape.best_cell(cells)
    every = range(cfg.seeds)
    floor = None if best is None else _mean(best, every) / _mean(best, every, at=0)
    return {"width": payload["width"], "located": loc, "held_out": held_out(cells, diagonal,
                                                                            cfg.seeds),
            "above_floor": floor, "edge": payload["edge"],
            "best_cell": None if best is None else [best["kA"], best["kB"]]}


def prediction(cfg) -> tuple[dict | None, str | None]:
    """(predicted exponents, None) for the setting that ran, or (None, why there are none)."""
    if cfg.variant != "finetune":
        return None, f"variant {cfg.variant!r}: both factors random, neither Init[1] nor Init[2]"
    return predictions.attach("loss_optimal", cfg.readout, cfg.init, cfg.optimizer, cfg.held)


def fits(rows: list, cfg, min_width: int = 0) -> dict:
    """The exponents over the widths >= min_width where each rate is located (eta_A*, eta_B*
    and the ratio where the optimum is identifiable, the product where the product is: a flat
    valley still places it): {"fit_widths", "product_widths", rate: the fit of
    `tinylora.lab.optimum.exponent` (None: fewer than 2 widths)}."""
    kept = [r for r in rows if not r["edge"] and r["width"] >= min_width]
    usable = {rate: [r for r in kept if r["located"]["product_identifiable" if rate == "product"
                                                   else "identifiable"]] for rate in RATES}
    out = {"fit_widths": [r["width"] for r in usable["ratio"]],
           "product_widths": [r["width"] for r in usable["product"]]}
    for rate, use in usable.items():
        out[rate] = optimum.exponent([r["width"] for r in use], [r["located"] for r in use],
                                     rate, cfg.seeds)
    return out


def cell_fits(rows: list, cfg) -> dict:
    """{rate: {"slope", "interval", "widths"} or None}: the exponents of the best cell's rates
    over the widths whose best cell is off the grid's edge."""
    cells = [(r["width"], [10 ** (k / cfg.per_decade) for k in r["best_cell"]]) for r in rows
             if not r["edge"] and r["best_cell"] is not None]
    out = {}
    for rate in RATES:
        pts = [(w, {"eta_A": a, "eta_B": b, "ratio": b / a, "product": a * b}[rate])
               for w, (a, b) in cells]
        fit = loglog_slope(*zip(*pts)) if len(pts) >= 2 else None
        out[rate] = None if fit is None else {
            "slope": fit.slope, "interval": None if fit.interval is None else list(fit.interval),
            "widths": [w for w, _ in pts]}
    return out


def summarize(payloads: list, cfg, rows: list | None = None) -> dict:
    """summary.json of `tinylora width-sweep` (keys pinned by tests/test_sweep.py); `rows`:
    the `analyze_width` of each payload, when the caller has them already."""
    rows = rows or [analyze_width(payload, cfg) for payload in payloads]
    widths = [r["width"] for r in rows]
    exps, tail = fits(rows, cfg), fits(rows, cfg, FIT_FROM)
    predicted, note = prediction(cfg)
    ratio = exps["ratio"]
    half = None if not ratio or not ratio["interval"] else (ratio["interval"][1]
                                                            - ratio["interval"][0]) / 2
    flat = [r["width"] for r in rows if not r["edge"] and not r["located"]["identifiable"]]
    out = {"widths": widths, "fit_widths": exps["fit_widths"],
           "product_widths": exps["product_widths"],
           "edge": [r["edge"] for r in rows], "predicted": predicted, "prediction_note": note,
           "predictions": predictions.table(),
           "theory_exponent": None if predicted is None else predicted["ratio"],
           "identifiable": [r["located"]["identifiable"] for r in rows], "flat_widths": flat,
           "ratio_located": bool(half is not None and half <= MAX_HALF_WIDTH),
           "ratio_half_width": half,
           "loss_lora": [r["held_out"]["lora"] for r in rows],
           "loss_loraplus": [r["held_out"]["loraplus"] for r in rows],
           "lora_eta": [r["held_out"]["lora_eta"] for r in rows],
           "above_floor": [r["above_floor"] for r in rows],
           "best_cell": [r["best_cell"] for r in rows],
           "fit_share": [r["located"]["fit_share"] for r in rows],
           "curvatures": [r["located"].get("curvatures") for r in rows],
           "cell_exponents": cell_fits(rows, cfg), "fit_from": FIT_FROM,
           f"from_{FIT_FROM}": {"fit_widths": tail["fit_widths"],
                                "product_widths": tail["product_widths"],
                                **{rate: tail[rate] and {k: tail[rate][k] for k in
                                                         ("slope", "interval", "draws")}
                                   for rate in RATES}}}
    for rate in RATES:
        out[f"best_{rate}"] = [r["located"][rate] for r in rows]
        out[f"{rate}_interval"] = [r["located"][f"{rate}_interval"] for r in rows]
        e = exps[rate]
        key = "exponent" if rate == "ratio" else f"exponent_{rate}"
        out[key] = None if e is None else e["slope"]
        out[f"{key}_interval"] = None if e is None else e["interval"]
        out[f"{key}_draws"] = None if e is None else e["draws"]
    out["interval_contains_theory"] = (None if out["exponent_interval"] is None
                                       or predicted is None else
                                       out["exponent_interval"][0] <= predicted["ratio"]
                                       <= out["exponent_interval"][1])
    out["loss"] = (f"mean squared error on the training set at step {cfg.steps} (of "
                   f"{cfg.target}), mean of {cfg.seeds} seeds")
    out["config"] = asdict(cfg)
    return out
