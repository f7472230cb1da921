"""Figures of the fine-tuning study (`tinylora pretrain`, `tinylora finetune`).

Same rules as `tinylora.lab.plots`: matplotlib imported lazily, every figure a `Figure` drawn
without pyplot (the user's backend is never touched) and written to a file.
"""

from __future__ import annotations

import math
from pathlib import Path

from tinylora.lab.plots import new_figure, save_figure
from tinylora.lab.predictions import INIT_NAMES


def pretrain_curves(records: list, path):
    """Validation loss of each pretrained base against its step, one line per width."""
    fig, ax = new_figure(figsize=(6, 4))
    for r in records:
        c = r["curve"]
        ax.plot(c["step"], c["val_loss"], marker=".", label=f"d_model = {r['config']['d_model']}")
    ax.set_xlabel("AdamW step")
    ax.set_ylabel("validation loss (nats / char)")
    ax.set_title("Pretraining TinyLM on Shakespeare (all arrays train)")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)




def _panels(details: list, height: float = 3.6):
    """A grid of panels, a row per init and a column per width. -> (fig, {(init, width): ax})."""
    inits = list(dict.fromkeys(d["init"] for d in details))
    widths = list(dict.fromkeys(d["width"] for d in details))
    fig, axes = new_figure(len(inits), len(widths), figsize=(4.2 * len(widths),
                                                            height * len(inits)), squeeze=False)
    return fig, {(i, w): axes[a][b] for a, i in enumerate(inits) for b, w in enumerate(widths)}


def _finish(ax, xlabel: str, title: str, fontsize: int = 7) -> None:
    """A log2 x axis with its label, the title, a light grid and the legend."""
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=fontsize)


def panel_title(d: dict) -> str:
    """'d_model = 64, Init[1]': the (width, init) a panel or section shows."""
    return f"d_model = {d['width']}, {INIT_NAMES[d['init']]}"


def finetune_curves(details: list, path):
    """One panel per (init, width): validation loss against step for LoRA, LoRA+ (16) and the
    tuned ratio, mean over the evaluation seeds with the min-max band; the frozen base dashed."""
    fig, axes = _panels(details, 3.8)
    for d in details:
        ax = axes[d["init"], d["width"]]
        for m in d["methods"].values():
            steps = m["eval_steps"]
            (line,) = ax.plot(steps, m["curve_mean"], label=f"{m['label']}, lr {m['lr']:.3g}")
            ax.fill_between(steps, m["curve_min"], m["curve_max"], alpha=0.2,
                            color=line.get_color())
        base = d["base"]["loss_finetune_text"]
        ax.axhline(base, ls="--", color="gray", label="frozen base")
        finite = [v for m in d["methods"].values() for v in m["curve_max"] if v < float("inf")]
        lows = [v for m in d["methods"].values() for v in m["curve_min"]]
        ax.set_ylim(min(lows) - 0.05, min(max(finite), base) + 0.1)
        ax.set_title(panel_title(d))
        ax.set_xlabel("fine-tuning step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("LoRA vs LoRA+ fine-tuning a Shakespeare TinyLM on Milton "
                 "(evaluation seeds: mean, min-max)")
    return save_figure(fig, path)


def finetune_profiles(details: list, path):
    """One panel per (init, width): each ratio's final loss at its tuned lr (evaluation seeds,
    mean and 95 % interval), the located best ratio and its interval (shaded), and the ratio
    the tuning seeds chose (star)."""
    fig, axes = _panels(details)
    for d in details:
        ax = axes[d["init"], d["width"]]
        lr_ratios = sorted(d["profile"])
        mid = [d["profile"][x][0] for x in lr_ratios]
        err = [[d["profile"][x][0] - d["profile"][x][1] for x in lr_ratios],
               [d["profile"][x][2] - d["profile"][x][0] for x in lr_ratios]]
        ax.errorbar(lr_ratios, mid, yerr=err, marker="o", capsize=3, label="at its tuned lr")
        loc = d["located"]
        if loc["lr_ratio"] is not None:
            ax.axvline(loc["lr_ratio"], color="C3", label=f"best ratio {loc['lr_ratio']:.3g}")
            if loc["lr_ratio_interval"] is not None:
                ax.axvspan(*loc["lr_ratio_interval"], color="C3", alpha=0.15)
        t = d["tuned_lr_ratio"]
        ax.plot(t, d["profile"][t][0], "k*", markersize=11, label=f"tuning seeds chose {t:g}")
        _finish(ax, "ratio lr_B / lr_A", panel_title(d))
    fig.suptitle("The ratio profile on the evaluation seeds (95 % intervals)")
    return save_figure(fig, path)


def finetune_best_ratio(summary: dict, path):
    """The located best ratio against d_model per init, with 95 % intervals, and a line of the
    predicted slope through the points' geometric centre (where a prediction is attached)."""
    fig, ax = new_figure(figsize=(6, 4.2))
    for n, init in enumerate(dict.fromkeys(summary["init"])):
        rows = [i for i, x in enumerate(summary["init"]) if x == init
                and summary["best_lr_ratio"][i] is not None]
        if not rows:
            continue
        w = [summary["widths"][i] * (1.04 ** n) for i in rows]
        b = [summary["best_lr_ratio"][i] for i in rows]
        lo = [b[j] - (summary["best_lr_ratio_interval"][i] or [b[j]] * 2)[0] for j, i in
              enumerate(rows)]
        hi = [(summary["best_lr_ratio_interval"][i] or [b[j]] * 2)[1] - b[j] for j, i in
              enumerate(rows)]
        slope = summary["lr_ratio_exponent"].get(init)
        text = "" if slope is None else f", fitted slope {slope:+.2f}"
        ax.errorbar(w, b, yerr=[lo, hi], marker="o", capsize=4, color=f"C{n}",
                    label=f"{INIT_NAMES[init]}{text}")
        pred = summary["predicted_lr_ratio_exponent"][init]
        if pred is None:
            continue
        cx = math.exp(sum(map(math.log, w)) / len(w))
        cy = math.exp(sum(map(math.log, b)) / len(b))
        ax.plot(w, [cy * (x / cx) ** pred for x in w], ls=":", color=f"C{n}",
                label=f"{INIT_NAMES[init]}: predicted slope {pred:+g}")
    ax.set_yscale("log", base=2)
    ax.set_ylabel("best ratio lr_B / lr_A")
    _finish(ax, "d_model", "Best LoRA+ ratio against width (evaluation seeds, 95 %)", 8)
    return save_figure(fig, path)


def finetune_by_width(details: list, path):
    """Left: speed-up of LoRA+ over LoRA against width; right: final-loss gain (LoRA - LoRA+),
    with 95 % intervals over the evaluation seeds, for ratio 16 and the tuned ratio, per init."""
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 4))
    widths = sorted({d["width"] for d in details})
    n = 0
    for init in dict.fromkeys(d["init"] for d in details):
        rows = [d for d in details if d["init"] == init]
        for key, name in ((16.0, "ratio 16"), ("tuned", "tuned ratio")):
            ms = [d["methods"][16.0 if key == 16.0 else d["tuned_lr_ratio"]] for d in rows]
            xs = [d["width"] * 1.04 ** n for d in rows]  # offsets keep coinciding bars visible
            for ax, what in ((ax1, "speedup"), (ax2, "loss_gain")):
                mid = [m[what][0] for m in ms]
                err = [[m[what][0] - m[what][1] for m in ms],
                       [m[what][2] - m[what][0] for m in ms]]
                ax.errorbar(xs, mid, yerr=err, marker="o", capsize=4,
                            label=f"{INIT_NAMES[init]}, LoRA+ {name}")
            n += 1
    ax1.set_yscale("log", base=2)  # a ratio: 2x faster and 2x slower are equally far from 1
    ax1.axhline(1.0, ls="--", color="gray")
    ax2.axhline(0.0, ls="--", color="gray")
    for ax, ylabel in ((ax1, "speed-up (LoRA steps / LoRA+ steps)"),
                       (ax2, "final loss: LoRA - LoRA+")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.set_xlabel("d_model")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    fig.suptitle("Does LoRA+ help? (evaluation seeds, 95 % intervals)")
    return save_figure(fig, path)


def finetune_lr_grid(details: list, path):
    """One panel per (init, width): the tuning lattice of each ratio (mean final loss over the
    tuning seeds against lr_A; diverged points left out), the kept lr marked."""
    fig, axes = _panels(details)
    for d in details:
        ax = axes[d["init"], d["width"]]
        for lr_ratio, t in d["lattice"].items():
            lrs = [lr for lr, _ in t["tried"]]
            loss = [v if v < float("inf") else float("nan") for _, v in t["tried"]]
            (line,) = ax.plot(lrs, loss, marker=".", label=f"ratio {lr_ratio:g}")
            ax.plot(t["lr"], t["loss"], "o", mfc="none", color=line.get_color())
        ax.axhline(d["base"]["loss_finetune_text"], ls="--", color="gray", label="frozen base")
        ax.set_xscale("log")
        ax.set_xlabel("lr of A (B: lr x ratio)")
        ax.set_title(panel_title(d))
        ax.grid(alpha=0.3)
    next(iter(axes.values())).legend(fontsize=7)
    fig.suptitle("Tuning: each ratio's half-octave lattice on the tuning seeds (circle: kept)")
    return save_figure(fig, path)


def finetune_figures(records: dict, summary: dict, details: list, out) -> list:
    """Every figure of `tinylora finetune`, written into `out`. -> their paths."""
    out = Path(out)
    return [finetune_curves(details, out / "finetune_val_loss_curves.png"),
            finetune_profiles(details, out / "finetune_ratio_profiles.png"),
            finetune_best_ratio(summary, out / "finetune_best_ratio_by_width.png"),
            finetune_by_width(details, out / "finetune_speedup_and_gain_by_width.png"),
            finetune_lr_grid(details, out / "finetune_lr_tuning.png")]
