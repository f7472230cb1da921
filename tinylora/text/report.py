"""What the fine-tuning study reports: tuned learning rates, the speed-up, intervals, summary.md.

Host-only arithmetic on the run records of `tinylora.text.finetune` (lists of floats), no model
here.

The speed-up, per seed, paired (LoRA and LoRA+ with the same seed share the init of A and the
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

from tinylora.lab.fit import t975
from tinylora.records import markdown_table


def lr_grid(lrs, ratio: float) -> list[float]:
    """The lr_A values tried at `ratio`: ``lr / sqrt(ratio)`` for each lr of the base grid.

    Centred halfway (geometrically) between keeping lr_A fixed (lr_B grows x ratio) and keeping
    lr_B fixed (lr_A shrinks / ratio): every ratio gets the same number of tries around where
    its optimum is likely, and ratio 1 (plain LoRA) gets the base grid itself.
    """
    return [float(lr) / math.sqrt(ratio) for lr in lrs]


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


def tuned(runs: list[dict], width: int, seed: int) -> dict:
    """From the tuning runs of one width: {ratio: (best lr, its final loss)}, ties to smaller lr."""
    best = {}
    for r in sorted((r for r in runs if r["width"] == width and r["seed"] == seed),
                    key=lambda r: (r["ratio"], r["lr"])):
        if r["ratio"] not in best or r["final_loss"] < best[r["ratio"]][1]:
            best[r["ratio"]] = (r["lr"], r["final_loss"])
    return best


def best_ratio(table: dict) -> float:
    """The ratio whose tuned final loss is lowest (ties: the smaller ratio)."""
    return min(sorted(table), key=lambda ratio: table[ratio][1])


def method_label(ratio: float) -> str:
    return "LoRA (ratio 1)" if ratio == 1 else f"LoRA+ (ratio {ratio:g})"


def _find(runs, width, ratio, lr, seed):
    for r in runs:
        if (r["width"], r["ratio"], r["lr"], r["seed"]) == (width, ratio, lr, seed):
            return r
    return None


def width_details(records: dict, width: int) -> dict:
    """Everything the study reports at one width, from the run records (see `summarize`)."""
    cfg, runs = records["config"], records["runs"]
    table = tuned(runs, width, cfg["tune_seed"])
    best = best_ratio(table)
    methods = {}
    for ratio in dict.fromkeys([1.0, 16.0, best]):  # unique, in this order
        lr = table[ratio][0]
        seed_runs = [_find(runs, width, ratio, lr, s) for s in cfg["seeds"]]
        seed_runs = [r for r in seed_runs if r is not None]
        curves = np.asarray([r["val_loss"] for r in seed_runs], float)
        methods[ratio] = {
            "label": method_label(ratio), "ratio": ratio, "lr": lr,
            "lr_at_grid_edge": lr in _ends(cfg["lrs"], ratio),
            "final": mean_interval([r["final_loss"] for r in seed_runs]),
            "diverged": sum(r["diverged"] for r in seed_runs),
            "eval_steps": seed_runs[0]["eval_steps"],
            "curve_mean": curves.mean(axis=0).tolist(), "curve_min": curves.min(axis=0).tolist(),
            "curve_max": curves.max(axis=0).tolist(), "runs": seed_runs,
        }
    lora = methods[1.0]
    for m in methods.values():
        pairs = [paired_speedup(a, b) for a, b in zip(lora["runs"], m["runs"])]
        m["speedup_per_seed"] = [p["speedup"] for p in pairs]
        m["speedup"] = ratio_interval(m["speedup_per_seed"])
        m["steps_per_seed"] = [(p["steps_lora"], p["steps_plus"]) for p in pairs]
        m["loss_gain"] = mean_interval([a["final_loss"] - b["final_loss"]
                                        for a, b in zip(lora["runs"], m["runs"])])
    return {"width": width, "base": records["bases"][str(width)], "tuning": table,
            "best_ratio": best, "methods": methods}


def summarize(records: dict) -> tuple[dict, list[dict]]:
    """-> (summary.json's dict, keys as in `tinylora.text.finetune`'s docstring, the details).

    ``loss_loraplus`` and ``speedup`` are those of LoRA+ at ratio 16 (the paper's suggestion);
    the best ratio of the grid is reported beside them (``best_ratio``, and in summary.md).
    """
    details = [width_details(records, w) for w in records["config"]["widths"]]
    plus = [d["methods"][16.0] for d in details]
    summary = {
        "widths": [d["width"] for d in details],
        "speedup": [m["speedup"][0] for m in plus],
        "speedup_interval": [[m["speedup"][1], m["speedup"][2]] for m in plus],
        "loss_lora": [d["methods"][1.0]["final"][0] for d in details],
        "loss_loraplus": [m["final"][0] for m in plus],
        "best_ratio": [d["best_ratio"] for d in details],
    }
    return summary, details


def _ends(lrs, ratio) -> tuple[float, float]:
    grid = lr_grid(lrs, ratio)
    return min(grid), max(grid)


def _ci(m_lo_hi, fmt="{:.4f}") -> str:
    m, lo, hi = m_lo_hi
    if not math.isfinite(m) or lo == hi:
        return fmt.format(m)
    return f"{fmt.format(m)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def _tuned_cell(d: dict, ratio, cfg: dict) -> str:
    """'2.0712 (lr 0.003*)': a ratio's tuned loss and lr (* = at an end of its grid)."""
    lr, loss = d["tuning"][ratio]
    return f"{loss:.4f} (lr {lr:g}{'*' if lr in _ends(cfg['lrs'], ratio) else ''})"


def markdown(records: dict, details: list[dict]) -> str:
    """summary.md: the setup, one table row per width and method, samples before and after."""
    cfg = records["config"]
    n_seeds = len(cfg["seeds"])
    lines = [
        "# Fine-tuning a pretrained TinyLM: LoRA against LoRA+, across widths", "",
        (f"Base: TinyLM (2 layers, context {cfg['context']}) pretrained on Shakespeare; frozen. "
        f"Fine-tuned on Milton's *Areopagitica* with LoRA rank {cfg['r']} ({cfg['init']}, "
        f"Init[1]) on q, k, v, o, fc1, fc2, Adam, {cfg['steps']} steps of {cfg['batch_size']} "
        f"windows. lr_A tuned per ratio on the grid {list(cfg['lrs'])} / sqrt(ratio) (seed "
        f"{cfg['tune_seed']}); ratios tried {list(cfg['ratios'])}; then {n_seeds} seeds "
        f"{list(cfg['seeds'])} per method at its tuned rate. Losses: validation cross-entropy "
        "(nats per character) on fixed windows of the held-out last 10 % of the text. "
        "Brackets: 95 % t-intervals over seeds "
        "(speed-ups: geometric mean, interval of the log)."), "",
        ("Speed-up: steps plain LoRA needs to reach its own final loss, divided by the steps LoRA+ "
        "needs to reach it (paired by seed; if LoRA+ ends worse, both are measured at LoRA+'s "
        "final loss, giving < 1). Gain: LoRA final loss minus LoRA+ final loss (> 0: LoRA+ "
        "better)."), "",
        markdown_table(["d_model", "base: Shakespeare val loss",
                        "base: Areopagitica val loss (frozen)"],
                       [[d["width"], f"{d['base']['pretrain_val_loss']:.4f}",
                         f"{d['base']['loss_finetune_text']:.4f}"] for d in details]),
    ]
    rows = []
    for d in details:
        for ratio, m in d["methods"].items():
            edge = " (grid edge)" if m["lr_at_grid_edge"] else ""
            div = f", {m['diverged']} diverged" if m["diverged"] else ""
            best = " = best" if ratio == d["best_ratio"] and ratio != 1 else ""
            gain = "" if ratio == 1 else _ci(m["loss_gain"])
            speed = "1" if ratio == 1 else _ci(m["speedup"], "{:.2f}")
            rows.append([d["width"], f"{d['base']['loss_finetune_text']:.4f}",
                         f"{m['label']}{best}", f"{m['lr']:g}{edge}",
                         f"{_ci(m['final'])}{div}", gain, speed])
    lines += [markdown_table(["d_model", "frozen base", "method", "lr (A)", "final val loss",
                              "gain vs LoRA", "speed-up"], rows),
              (f"Tuning (seed {cfg['tune_seed']}): final validation loss at the best lr of "
               "each ratio (* = that lr is at an end of the ratio's grid)."), "",
              markdown_table(["d_model", *(f"ratio {r:g}" for r in cfg["ratios"]), "best ratio"],
                             [[d["width"], *(_tuned_cell(d, r, cfg) for r in cfg["ratios"]),
                               f"{d['best_ratio']:g}"] for d in details])]
    lines += ["", "## Samples (temperature 0.8), prompted with the start of the validation text",
              ""]
    for d in details:
        lines.append(f"### d_model = {d['width']}")
        lines.append("")
        lines.append("Frozen base (before fine-tuning):")
        lines += ["", "```", d["base"]["sample"], "```", ""]
        for m in d["methods"].values():
            sample = next((r.get("sample") for r in m["runs"] if r.get("sample")), None)
            if sample:
                lines += [f"After {m['label']}:", "", "```", sample, "```", ""]
    runs = records["runs"]
    minutes = sum(r["seconds"] for r in runs) / 60
    lines.append(f"The {len(runs)} fine-tuning runs took {minutes:.1f} "
                 "minutes in all (the sum of their own times; pretraining not included).")
    return "\n".join(lines) + "\n"
