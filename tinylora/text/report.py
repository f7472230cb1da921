"""What the fine-tuning study reports: tuned rates, the best ratio, speed-ups, intervals.

Host-only arithmetic on the run records of `tinylora.text.finetune` (lists of floats), no model
here. Everything is recomputed from the records, so records.json alone rebuilds the summary.

*Tuning* (`tuning_table`) reads only the runs on the tuning seeds: per setting, the mean final
loss over those seeds at each lattice lr; the kept lr is the lowest, *interior* when both its
lattice neighbours were tried. Every number below comes from the *evaluation* seeds' runs, made
at the kept lrs, which the tuning never saw.

The *best ratio* per (width, init) is a continuous estimate (`tinylora.lab.optimum
.locate_profile`): the ratio profile (each ratio's evaluation-seed losses at its tuned lr) is
fitted by a quadratic in log ratio around its lowest point; its interval is a bootstrap that
redraws the tuning seeds and chooses each ratio's lr again inside every draw, as well as the
evaluation seeds (`tinylora.text.rechoose`), since an lr chosen on two seeds is itself noisy.
The *ratio exponent* is the slope of log best ratio against log d_model, fitted draw by draw
(`tinylora.lab.optimum.exponent`). No prediction is attached to it: the width law's counting is
for one LoRA layer before a frozen readout, with A's step lined up with its inputs, and TinyLM
(LoRA on every projection of two blocks, 1024 tokens per batch, where the alignment of A's step
with layer-normed tokens grows like n^0.5, not n: `docs/results/balance-block-1024/`) is
neither (`PREDICTION`). The *tuned ratio* is the one a practitioner would pick: the lowest
tuning-seed loss over the ratio grid, chosen on the tuning seeds and scored on the evaluation
seeds.

The speed-up, per seed, paired (LoRA and LoRA+ with the same seed share the LoRA init and the
order of batches): both runs reach the loss ``L* = max(final LoRA, final LoRA+)``, the worse of
their two final validation losses. When LoRA+ ends at least as low as LoRA, L* is exactly plain
LoRA's final loss, the definition we use. Then

    speed-up = (steps LoRA needs to reach L*) / (steps LoRA+ needs to reach L*)

with "steps to reach" the first crossing of the validation curve, linearly interpolated between
evaluations. > 1: LoRA+ gets there in fewer steps; < 1: it is slower (or ends worse). A diverged
LoRA+ run never reaches L*: speed-up 0; a diverged LoRA run against a finite LoRA+: inf.
Intervals are 95 % Student-t intervals over seeds: of the mean for losses, of the geometric mean
(a t-interval of the log) for speed-ups, which are ratios.
"""

from __future__ import annotations

import math

import numpy as np  # host-only module: statistics over recorded floats

from tinylora.lab import optimum
from tinylora.lab.fit import t975
from tinylora.text import rechoose, tuning

PROFILE_BOOT = 400  # bootstrap draws of the ratio profile
PROFILE_SEED = 0  # the bootstrap's generator: the summary is a function of the records
PREDICTION = ("none: the width law is counted for one LoRA layer before a frozen readout with A's "
              "step lined up with its inputs; TinyLM is neither (docs/width_law.md)")


def mean_interval(values) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of `values` and its 95 % t-interval. One value: lo = hi = mean.
    Any inf makes the mean inf (a diverged seed is not averaged away); NaNs are dropped."""
    v = np.asarray([x for x in values if not (isinstance(x, float) and math.isnan(x))], float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    if not np.all(np.isfinite(v)):
        m = float(v.mean())
        return m, m, m
    m = float(v.mean())
    if v.size == 1:
        return m, m, m
    t = t975(v.size - 1)
    half = t * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - half, m + half


def ratio_interval(values) -> tuple[float, float, float]:
    """(geometric mean, lo, hi) of positive ratios: the 95 % t-interval of log(values), mapped
    back with exp, so it never goes below 0 and 2x faster mirrors 2x slower. A seed whose ratio
    is 0 or inf (a diverged run) falls back to `mean_interval` of the raw values."""
    v = [x for x in values if not (isinstance(x, float) and math.isnan(x))]
    if not v or not all(0 < x < math.inf for x in v):
        return mean_interval(v)
    m, lo, hi = mean_interval([math.log(x) for x in v])
    return math.exp(m), math.exp(lo), math.exp(hi)


def steps_to_reach(steps, losses, target: float) -> float:
    """First step at which the curve (steps, losses) is <= target, interpolated. inf if never."""
    for i, (t, loss) in enumerate(zip(steps, losses)):
        if loss <= target:
            if i == 0:
                return float(t)
            t0, l0 = steps[i - 1], losses[i - 1]
            if not math.isfinite(l0):
                return float(t)
            return float(t0 + (t - t0) * (l0 - target) / (l0 - loss))
    return math.inf


def paired_speedup(lora: dict, plus: dict) -> dict:
    """Speed-up of one LoRA+ run over the LoRA run with the same seed (see the module doc)."""
    fl, fp = lora["final_loss"], plus["final_loss"]
    if not math.isfinite(fl) and not math.isfinite(fp):
        return {"target": math.inf, "steps_lora": math.nan, "steps_plus": math.nan,
                "speedup": math.nan}
    if not math.isfinite(fp):
        return {"target": fl, "steps_lora": steps_to_reach(lora["eval_steps"], lora["val_loss"],
                                                           fl), "steps_plus": math.inf,
                "speedup": 0.0}
    if not math.isfinite(fl):
        return {"target": fp, "steps_lora": math.inf,
                "steps_plus": steps_to_reach(plus["eval_steps"], plus["val_loss"], fp),
                "speedup": math.inf}
    target = max(fl, fp)
    s_l = steps_to_reach(lora["eval_steps"], lora["val_loss"], target)
    s_p = steps_to_reach(plus["eval_steps"], plus["val_loss"], target)
    return {"target": target, "steps_lora": s_l, "steps_plus": s_p,
            "speedup": s_l / s_p if s_p > 0 else math.inf}


def select(runs: list[dict], **fields) -> list[dict]:
    """The runs whose fields equal `fields` (e.g. width=64, init="zero_B", lr_ratio=16.0)."""
    return [r for r in runs if all(r.get(k) == v for k, v in fields.items())]


def tuning_table(runs: list[dict], seeds, **setting) -> dict | None:
    """One setting's lattice on the tuning `seeds`: {"lr": kept lr, "loss": its mean over the
    seeds, "interior": bracketed, "tried": [(lr, mean loss), ...]}; None if no lr has every seed."""
    by_lr = {}
    for r in select(runs, **setting):
        if r["seed"] in seeds:
            by_lr.setdefault(r["lr"], {})[r["seed"]] = r["final_loss"]
    tried = {lr: sum(v.values()) / len(v) for lr, v in by_lr.items() if len(v) == len(seeds)}
    if not tried:
        return None
    lr0 = min(tried)
    ks = {tuning.lattice_index(lr0, lr): lr for lr in tried}
    best = tuning.lowest({k: tried[lr] for k, lr in ks.items()})
    return {"lr": ks[best], "loss": tried[ks[best]], "interior": tuning.is_interior(ks, best),
            "tried": sorted(tried.items())}


def method(runs: list[dict], table: dict, cfg: dict, label: str, **setting) -> dict:
    """One tuned setting on the evaluation seeds: losses, curves, and its tuning-seed loss."""
    seed_runs = [r for r in select(runs, lr=table["lr"], **setting) if r["seed"] in
                 cfg["eval_seeds"]]
    seed_runs.sort(key=lambda r: cfg["eval_seeds"].index(r["seed"]))
    curves = np.asarray([r["val_loss"] for r in seed_runs], float)
    return {"label": label, "lr": table["lr"], "interior": table["interior"],
            "final": mean_interval([r["final_loss"] for r in seed_runs]),
            "final_tuning": table["loss"], "diverged": sum(r["diverged"] for r in seed_runs),
            "eval_steps": seed_runs[0]["eval_steps"] if seed_runs else [],
            "curve_mean": curves.mean(axis=0).tolist() if seed_runs else [],
            "curve_min": curves.min(axis=0).tolist() if seed_runs else [],
            "curve_max": curves.max(axis=0).tolist() if seed_runs else [], "runs": seed_runs,
            **setting}


def compare(lora: dict, other: dict) -> None:
    """Adds to `other` its paired speed-up over `lora` and its loss gain (evaluation seeds)."""
    pairs = [paired_speedup(a, b) for a, b in zip(lora["runs"], other["runs"])]
    other["speedup_per_seed"] = [pair["speedup"] for pair in pairs]
    other["speedup"] = ratio_interval(other["speedup_per_seed"])
    other["steps_per_seed"] = [(pair["steps_lora"], pair["steps_plus"]) for pair in pairs]
    other["loss_gain"] = mean_interval([a["final_loss"] - b["final_loss"]
                                        for a, b in zip(lora["runs"], other["runs"])])


def method_label(lr_ratio: float) -> str:
    return "LoRA (ratio 1)" if lr_ratio == 1 else f"LoRA+ (ratio {lr_ratio:g})"


def width_details(records: dict, width: int, init: str, rng) -> dict:
    """Everything the study reports at one (width, init), from the run records."""
    cfg, runs = records["config"], records["runs"]
    main = {"width": width, "init": init, "rule": "lora", "r": cfg["r"], "alpha": None}
    lr_ratios = sorted({r["lr_ratio"] for r in select(runs, **main)})  # the grid, grown or not
    table = {lr_ratio: tuning_table(runs, cfg["tune_seeds"], lr_ratio=lr_ratio, **main)
             for lr_ratio in lr_ratios}
    tuned = min(sorted(table), key=lambda lr_ratio: table[lr_ratio]["loss"])
    every = {lr_ratio: method(runs, table[lr_ratio], cfg, method_label(lr_ratio),
                              lr_ratio=lr_ratio, **main) for lr_ratio in lr_ratios}
    profile = np.array([[r["final_loss"] for r in every[x]["runs"]] for x in lr_ratios])
    kept = [table[x]["lr"] for x in lr_ratios]
    per_ratio = [rechoose.ratio_runs(runs, cfg, table[x]["lr"], lr_ratio=x, **main)
                 for x in lr_ratios]
    located = optimum.locate_profile(np.log10(lr_ratios), profile, rng, PROFILE_BOOT,
                                     name="lr_ratio", draw=rechoose.draw(per_ratio, cfg, kept))
    methods = {lr_ratio: every[lr_ratio] for lr_ratio in dict.fromkeys([1.0, 16.0, tuned])}
    for m in methods.values():
        compare(methods[1.0], m)
    means = [every[lr_ratio]["final"][0] for lr_ratio in lr_ratios]
    lowest = lr_ratios[int(np.argmin(means))]
    note = None if located["lr_ratio"] is not None else (
        f"lowest at ratio {lowest:g}, an end of the grid" if lowest in (lr_ratios[0],
                                                                         lr_ratios[-1])
        else f"lowest at ratio {lowest:g}, but no bowl around it")
    return {"width": width, "init": init, "base": records["bases"][str(width)], "note": note,
            "tuning": {lr_ratio: (t["lr"], t["loss"]) for lr_ratio, t in table.items()},
            "lattice": table, "profile": {x: every[x]["final"] for x in every},
            "located": located, "tuned_lr_ratio": tuned, "methods": methods}


def baseline_rows(records: dict) -> list[dict]:
    """Full fine-tuning and the rank baseline, each tuned like the study's methods."""
    cfg, runs = records["config"], records["runs"]
    if not cfg["baselines"]:
        return []
    width = cfg["baseline_width"] or cfg["widths"][0]
    rows, seeds = [], cfg["tune_seeds"]
    full = {"width": width, "rule": "full"}
    if (t := tuning_table(runs, seeds, **full)) is not None:
        rows.append(method(runs, t, cfg, "full fine-tuning", **full) | {"scale": None, "r": 0})
    for r in sorted(set(cfg["ranks"]) | {cfg["r"]}):
        for rule, alpha in (("lora", float(cfg["r"])), ("rslora", math.sqrt(cfg["r"]))):
            scale = alpha / (r if rule == "lora" else math.sqrt(r))
            setting = {"width": width, "init": "zero_B", "lr_ratio": 1.0, "r": r, "rule": rule,
                       "alpha": alpha}
            if r == cfg["r"]:  # scale 1: the main study's plain-LoRA runs
                setting.update(rule="lora", alpha=None)
            if (t := tuning_table(runs, seeds, **setting)) is not None:
                name = f"{'rsLoRA' if rule == 'rslora' else 'LoRA'} rank {r}"
                rows.append(method(runs, t, cfg, name, **setting) | {"scale": scale,
                                                                    "rule": rule})
    return rows


def summarize(records: dict) -> tuple[dict, list[dict]]:
    """-> (summary.json's dict, the details). One row per (init, width), init-major:

    widths, init                  the row's d_model and init ("zero_B": Init[1], "zero_A": Init[2])
    loss_lora, loss_loraplus      mean final validation loss (evaluation seeds) of LoRA and of
                                  LoRA+ at ratio 16, each at its tuned lr; *_interval: 95 %
    speedup, speedup_interval     LoRA+ at ratio 16 against LoRA (geometric mean over seeds)
    tuned_lr_ratio                the lr_ratio chosen on the tuning seeds; loss_tuned_lr_ratio,
                                  speedup_tuned_lr_ratio (+ _interval) its evaluation-seed numbers
    best_lr_ratio, best_lr_ratio_interval   the continuous estimate from the evaluation-seed
                                  profile (None: not located, and best_lr_ratio_note says why),
                                  best_lr_ratio_identifiable
    lr_ratio_exponent, lr_ratio_exponent_interval, lr_ratio_exponent_widths (the widths where
                                  the best lr_ratio was located),
                                  predicted_lr_ratio_exponent   {init: None} (no prediction:
                                  prediction_note says why)
    tuning_seeds, eval_seeds      which seeds chose and which measured
    overstatement                 per row, how much the tuning seeds flatter: the mean final
                                  loss on the evaluation seeds minus on the tuning seeds, for
                                  LoRA and LoRA+ 16 (> 0: the rate looked better where it was
                                  chosen), and the LoRA - LoRA+ 16 gap on each set of seeds
    baselines                     full fine-tuning and the rank baseline at one width
    """
    cfg = records["config"]
    details, by_init = [], {}
    for init in cfg["inits"]:
        rng = np.random.default_rng(PROFILE_SEED)
        rows = [width_details(records, w, init, rng) for w in cfg["widths"]]
        details += rows
        by_init[init] = optimum.exponent(cfg["widths"], [d["located"] for d in rows], "lr_ratio",
                                         len(cfg["eval_seeds"]))
    plus = [d["methods"][16.0] for d in details]
    lora = [d["methods"][1.0] for d in details]
    tuned = [d["methods"][d["tuned_lr_ratio"]] for d in details]
    summary = {
        "widths": [d["width"] for d in details], "init": [d["init"] for d in details],
        "speedup": [m["speedup"][0] for m in plus],
        "speedup_interval": [[m["speedup"][1], m["speedup"][2]] for m in plus],
        "loss_lora": [m["final"][0] for m in lora],
        "loss_lora_interval": [list(m["final"][1:]) for m in lora],
        "loss_loraplus": [m["final"][0] for m in plus],
        "loss_loraplus_interval": [list(m["final"][1:]) for m in plus],
        "tuned_lr_ratio": [d["tuned_lr_ratio"] for d in details],
        "loss_tuned_lr_ratio": [m["final"][0] for m in tuned],
        "speedup_tuned_lr_ratio": [m["speedup"][0] for m in tuned],
        "speedup_tuned_lr_ratio_interval": [[m["speedup"][1], m["speedup"][2]] for m in tuned],
        "best_lr_ratio": [d["located"]["lr_ratio"] for d in details],
        "best_lr_ratio_interval": [d["located"]["lr_ratio_interval"] for d in details],
        "best_lr_ratio_identifiable": [d["located"]["identifiable"] for d in details],
        "best_lr_ratio_note": [d["note"] for d in details],
        "lr_ratio_exponent": {i: e and e["slope"] for i, e in by_init.items()},
        "lr_ratio_exponent_interval": {i: e and e["interval"] for i, e in by_init.items()},
        "lr_ratio_exponent_widths": {i: [d["width"] for d in details if d["init"] == i
                                         and d["located"]["lr_ratio"] is not None]
                                     for i in by_init},
        "predicted_lr_ratio_exponent": {i: None for i in cfg["inits"]},
        "prediction_note": PREDICTION,
        "tuning_seeds": list(cfg["tune_seeds"]), "eval_seeds": list(cfg["eval_seeds"]),
        "overstatement": [{"lora": a["final"][0] - a["final_tuning"],
                           "loraplus": b["final"][0] - b["final_tuning"],
                           "gap_tuning_seeds": a["final_tuning"] - b["final_tuning"],
                           "gap_eval_seeds": a["final"][0] - b["final"][0]}
                          for a, b in zip(lora, plus)],
        "baselines": [{"label": m["label"], "r": m["r"], "rule": m["rule"], "scale": m["scale"],
                       "lr": m["lr"], "interior": m["interior"], "loss": m["final"][0],
                       "loss_interval": list(m["final"][1:]), "loss_tuning": m["final_tuning"]}
                      for m in baseline_rows(records)],
    }
    return summary, details
