"""What the ladder reports, with a bootstrap that redoes every choice the protocol made.

Host-only arithmetic on run records (`tinylora.text.stacked.train_stack`'s), no model here.

**The lattice and the choices.** lr_A lives on ``lr(k) = lr0 * 2^(k / per_octave)`` (a
quarter-octave lattice by default). For one chain (width, init, tokens per batch) and one
lr_ratio, the tuning seeds' runs give a final loss per lattice point and seed. The protocol keeps
the point with the lowest mean over the tuning seeds (`choose`; ties: the smaller rate), and the
*tuned ratio* is the ratio whose kept point has the lowest tuning mean. Every reported number
comes from the evaluation seeds at the kept points.

**Why the evaluation seeds run at up to three points per ratio.** A bootstrap over the tuning
seeds draws two of them with replacement: (0, 0), (1, 1) or (0, 1). So the kept point of a ratio
can only ever be the lowest of seed 0 alone, of seed 1 alone, or of their mean (`choice_set`),
and the protocol runs the evaluation seeds at exactly those points. Then every bootstrap draw
(`estimate` on resampled seeds) redoes the whole choice: each ratio's lr from the resampled
tuning seeds, the tuned ratio from them, and reads the resampled evaluation seeds at what it
chose. The intervals therefore carry the noise of choosing each ratio's rate (and the ratio) on
two seeds, which the first fine-tuning study's intervals left out.

**The estimands**, per chain: the paired final-loss gain of the tuned ratio over ratio 1 (each
evaluation seed's ratio-1 loss minus its tuned-ratio loss: > 0 means LoRA+ ends lower), the gain
of every ratio over ratio 1, and the best ratio: a quadratic fit of log10(mean loss) against
log10(ratio) around the lowest point of the profile (`tinylora.lab.optimum.fit_profile`), "not
located" when its vertex lies outside the fitted points. Across widths, the best ratio's
exponent in d_model is fitted draw by draw (`tinylora.lab.optimum.exponent`).

Intervals are the draws' spread widened as a t interval for n evaluation seeds (the rule of
`tinylora.lab.optimum`: centre +- t_0.975(n - 1) sd sqrt(n / (n - 1))).
"""

from __future__ import annotations

import math

import numpy as np  # host-only module: statistics over recorded floats

from tinylora.lab import optimum, predictions
from tinylora.lab.fit import t975

BOOT = 400  # bootstrap draws per chain
BOOT_SEED = 0  # the bootstrap's generator: the summary is a function of the records


def lattice_lr(lr0: float, k: int, per_octave: int) -> float:
    """lr(k) = lr0 * 2^(k / per_octave)."""
    return float(lr0) * 2.0 ** (k / per_octave)


def lattice_index(lr0: float, lr: float, per_octave: int) -> int:
    """The k with lattice_lr(lr0, k, per_octave) == lr (to rounding)."""
    return round(per_octave * math.log2(lr / lr0))


def lowest(means: dict) -> int:
    """The key with the lowest value (ties: the smaller key; inf is worse than any number)."""
    return min(sorted(means), key=lambda k: means[k])


def mean(values) -> float:
    """The mean, inf when any value is not finite (a diverged seed is not averaged away)."""
    values = list(values)
    return sum(values) / len(values) if all(math.isfinite(v) for v in values) else math.inf


def choose(points: dict, seeds) -> int | None:
    """The kept lattice point: the k whose mean loss over `seeds` (repeats allowed) is lowest,
    among the points where every one of them ran. `points` {k: {seed: final loss}}."""
    means = {k: mean(losses[s] for s in seeds) for k, losses in points.items()
             if all(s in losses for s in seeds)}
    return lowest(means) if means else None


def choice_set(points: dict, tune_seeds) -> list[int]:
    """Every point a bootstrap of the tuning seeds can keep: the lowest of each seed alone and
    of all of them (for two seeds, exactly the three possible draws)."""
    picks = [choose(points, [s]) for s in tune_seeds] + [choose(points, tune_seeds)]
    return sorted({k for k in picks if k is not None})


def paired_gain(base: list, other: list) -> float:
    """Mean over seeds of base - other (> 0: `other` ends lower); -inf when `other` diverged
    on a seed where `base` did not, nan when `base` diverged (nothing to compare with)."""
    if not all(math.isfinite(a) for a in base):
        return math.nan
    if not all(math.isfinite(b) for b in other):
        return -math.inf
    return sum(a - b for a, b in zip(base, other)) / len(base)


def spread_interval(draws, center, n_seeds: int) -> list | None:
    """center +- t_0.975(n - 1) sd(draws) sqrt(n / (n - 1)); None without two finite draws."""
    draws = [d for d in draws if d is not None and math.isfinite(d)]
    if center is None or not math.isfinite(center) or len(draws) < 2:
        return None
    half = t975(n_seeds - 1) * float(np.std(draws, ddof=1)) * math.sqrt(n_seeds / (n_seeds - 1))
    return [center - half, center + half]


def chain_table(runs: list[dict], lr0: float, per_octave: int) -> dict:
    """{lr_ratio: {k: {seed: final loss}}} for one chain's runs."""
    table: dict = {}
    for r in runs:
        k = lattice_index(lr0, r["lr"], per_octave)
        table.setdefault(float(r["lr_ratio"]), {}).setdefault(k, {})[r["seed"]] = r["final_loss"]
    return table


def estimate(table: dict, tune: list, evals: list) -> dict | None:
    """Every choice of the protocol and every estimand, on the tuning seeds `tune` and the
    evaluation seeds `evals` (lists, repeats allowed: one bootstrap draw). None when some kept
    point lacks an evaluation seed (the chain is not finished)."""
    ratios = sorted(table)
    kept = {x: choose(table[x], tune) for x in ratios}
    if any(k is None or not all(s in table[x][k] for s in evals) for x, k in kept.items()):
        return None
    tune_loss = {x: mean(table[x][kept[x]][s] for s in tune) for x in ratios}
    per_seed = {x: [table[x][kept[x]][s] for s in evals] for x in ratios}
    tuned = lowest(tune_loss)
    gains = {x: paired_gain(per_seed[1.0], per_seed[x]) for x in ratios}
    profile = [mean(per_seed[x]) for x in ratios]
    fit = optimum.fit_profile(np.log10(ratios), [math.log10(v) if math.isfinite(v) else math.inf
                                                 for v in profile])
    return {"kept_lr": {x: kept[x] for x in ratios}, "tuned": tuned, "gain_tuned": gains[tuned],
            "gains": gains, "profile": dict(zip(ratios, profile)),
            "best_log10": None if fit is None else fit["x"], "loss_ratio1": mean(per_seed[1.0])}


def chain_estimates(table: dict, tune_seeds, eval_seeds, rng, boot: int = BOOT) -> dict | None:
    """The point estimate (every seed once) and `boot` draws with both seed sets resampled."""
    point = estimate(table, list(tune_seeds), list(eval_seeds))
    if point is None:
        return None
    tune_seeds, eval_seeds = list(tune_seeds), list(eval_seeds)
    draws = [estimate(table, [tune_seeds[i] for i in rng.integers(0, len(tune_seeds),
                                                                   len(tune_seeds))],
                      [eval_seeds[i] for i in rng.integers(0, len(eval_seeds),
                                                           len(eval_seeds))])
             for _ in range(boot)]
    n = len(eval_seeds)
    best = [d["best_log10"] for d in draws]
    good = [b for b in best if b is not None]
    q = spread_interval(good, point["best_log10"], n)
    located = {"lr_ratio": None if point["best_log10"] is None else 10 ** point["best_log10"],
               "lr_ratio_interval": None if q is None else [10 ** q[0], 10 ** q[1]],
               "fit_share": len(good) / boot,
               "draws": [None if b is None else {"lr_ratio": b} for b in best]}
    located["identifiable"] = bool(q is not None and located["fit_share"] >= optimum.MIN_FIT
                                   and q[1] - q[0] <= optimum.MAX_SPREAD)
    ratios = sorted(table)
    return {
        "point": point, "located": located,
        "gain_tuned_interval": spread_interval([d["gain_tuned"] for d in draws],
                                               point["gain_tuned"], n),
        "gain_interval": {x: spread_interval([d["gains"][x] for d in draws], point["gains"][x],
                                             n) for x in ratios},
        "loss_ratio1_interval": spread_interval([d["loss_ratio1"] for d in draws],
                                                point["loss_ratio1"], n),
        "tuned_share": {x: sum(d["tuned"] == x for d in draws) / boot for x in ratios},
        "kept_changes": {x: len({d["kept_lr"][x] for d in draws}) for x in ratios},
        "n_draws": boot}


def chains_of(config: dict) -> list[tuple]:
    """(width, init, batch_size) of every chain, in the order they run: the first init at
    every width (widest first), the control, then the other init (what a time limit cuts is
    the last of it)."""
    main = [[(w, i, config["batch_size"]) for w in sorted(config["widths"], reverse=True)]
            for i in config["inits"]]
    control = [] if not config["control_width"] else [
        (config["control_width"], "zero_B", config["control_batch_size"])]
    return main[0] + control + [c for rest in main[1:] for c in rest]


def chain_row(records: dict, chain: tuple) -> dict:
    """Everything reported for one chain; ``finished`` False when its runs are incomplete."""
    cfg = records["config"]
    width, init, batch_size = chain
    runs = [r for r in records["runs"] if (r["width"], r["init"], r["batch_size"]) == chain]
    table = chain_table(runs, cfg["lr0"], cfg["per_octave"])
    rng = np.random.default_rng([BOOT_SEED, width, batch_size, cfg["inits"].index(init)
                                 if init in cfg["inits"] else 0])
    est = chain_estimates(table, cfg["tune_seeds"], cfg["eval_seeds"], rng) if table else None
    row = {"width": width, "init": init, "tokens_per_batch": batch_size * cfg["context"],
           "finished": est is not None, "runs": len(runs),
           "base": records["bases"].get(str(width))}
    if est is None:
        return row
    p, loc, ratios = est["point"], est["located"], sorted(table)
    lo, hi = min(ratios), max(ratios)
    note = None
    if loc["lr_ratio"] is None:
        low = min(ratios, key=lambda x: p["profile"][x])
        note = (f"lowest at ratio {low:g}, an end of the grid" if low in (lo, hi)
                else f"lowest at ratio {low:g}, but no bowl around it")
    seeds = cfg["tune_seeds"]
    kept = [p["kept_lr"][x] for x in ratios]
    return {**row, "lr_ratios": ratios,  # every list below is aligned with lr_ratios
            "kept_lr": [lattice_lr(cfg["lr0"], k, cfg["per_octave"]) for k in kept],
            "lr_bracketed": [k - 1 in table[x] and k + 1 in table[x] for x, k in zip(ratios, kept)],
            "lattice_points": [len(table[x]) for x in ratios],
            "choice_set_sizes": [len(choice_set(table[x], seeds)) for x in ratios],
            "kept_lr_distinct_in_draws": [est["kept_changes"][x] for x in ratios],
            "profile": [p["profile"][x] for x in ratios],
            "gain_by_lr_ratio": [[p["gains"][x], *(est["gain_interval"][x] or [None, None])]
                                 for x in ratios],
            "tuned_lr_ratio_share": [est["tuned_share"][x] for x in ratios],
            "loss_ratio1": p["loss_ratio1"], "loss_ratio1_interval": est["loss_ratio1_interval"],
            "tuned_lr_ratio": p["tuned"],
            "gain_tuned": p["gain_tuned"], "gain_tuned_interval": est["gain_tuned_interval"],
            "best_lr_ratio": loc["lr_ratio"], "best_lr_ratio_interval": loc["lr_ratio_interval"],
            "best_lr_ratio_identifiable": loc["identifiable"], "best_lr_ratio_note": note,
            "best_lr_ratio_fit_share": loc["fit_share"], "_located": loc}


def summarize(records: dict) -> dict:
    """summary.json's dict: the protocol, one row per chain (`chain_row`'s keys, the bootstrap
    draws left out), per init the best ratio's exponent in d_model over the main chains beside
    the width law's prediction for a standard-parametrised readout (+1/2, `docs/width_law.md`),
    and ``readout``: whether the pretrained heads still are standard, their RMS x sqrt(d_model)
    against d_model (exponent 0 for "sp", -1/2 for muP's readout)."""
    cfg = records["config"]
    rows = [chain_row(records, c) for c in chains_of(cfg)]
    exponents = {}
    for init in cfg["inits"]:
        main = [r for r in rows if r["init"] == init and r["finished"]
                and r["tokens_per_batch"] == cfg["batch_size"] * cfg["context"]]
        e = optimum.exponent([r["width"] for r in main], [r["_located"] for r in main],
                             "lr_ratio", len(cfg["eval_seeds"])) if len(main) >= 2 else None
        exponents[init] = {"slope": e and e["slope"], "interval": e and e["interval"],
                           "widths": e["widths"] if e else [r["width"] for r in main
                                                            if r["best_lr_ratio"] is not None],
                           "predicted": predictions.exponents("loss_optimal", "sp",
                                                              init)["ratio"]}
    bases = sorted((int(w), b["head_scale"]) for w, b in records["bases"].items())
    head = float(np.polyfit(np.log([w for w, _ in bases]), np.log([h for _, h in bases]), 1)[0]
                 ) if len(bases) >= 2 else None
    return {"config": cfg, "stopped": records.get("stopped"),
            "readout": {"widths": [w for w, _ in bases], "head_scale": [h for _, h in bases],
                        "head_scale_exponent": head,  # standard ("sp"): 0; muP's: -1/2
                        "predicted_if": {"sp": 0.0, "mup": -0.5}},
            "chains": [{k: v for k, v in r.items() if k != "_located"} for r in rows],
            "lr_ratio_exponent": exponents, "bootstrap_draws": BOOT,
            "not_finished": [[r["width"], r["init"], r["tokens_per_batch"]] for r in rows
                             if not r["finished"]]}
