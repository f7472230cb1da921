"""Figures of the fine-tuning ladder (`tinylora finetune-ladder`), drawn from summary.json and
the run records alone (matplotlib imported lazily, no pyplot: `tinylora.lab.plots`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np  # host-only: means of recorded curves

from tinylora.lab.plots import new_figure, save_figure
from tinylora.lab.predictions import INIT_NAMES


def chain_label(c: dict) -> str:
    """'d_model 256, Init[1]' (and the tokens per batch when they are not the main number)."""
    extra = f", {c['tokens_per_batch']} tokens/batch" if c.get("control") else ""
    return f"d_model {c['width']}, {INIT_NAMES[c['init']]}{extra}"


def _finished(summary: dict) -> list[dict]:
    main = summary["config"]["batch_size"] * summary["config"]["context"]
    return [{**c, "control": c["tokens_per_batch"] != main} for c in summary["chains"]
            if c["finished"]]


def gain_by_ratio(summary: dict, path):
    """Each chain's paired final-loss gain over ratio 1 against lr_ratio, 95 % bars from the
    bootstrap that redoes every lr choice; the tuned ratio circled. > 0: LoRA+ ends lower."""
    fig, ax = new_figure(figsize=(7, 4.4))
    for c in _finished(summary):
        mid, lo, hi = (np.array([v[i] if v[i] is not None else v[0] for v in
                                 c["gain_by_lr_ratio"]], float) for i in range(3))
        line = ax.errorbar(c["lr_ratios"], mid, yerr=[mid - lo, hi - mid], marker="o", ms=3,
                           capsize=2, ls="--" if c["control"] else "-", label=chain_label(c))
        ax.plot([c["tuned_lr_ratio"]], [c["gain_tuned"]], "o", ms=10, mfc="none",
                color=line[0].get_color())
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("lr_ratio = lr_B / lr_A (each at its tuned lr_A)")
    ax.set_ylabel("final loss of ratio 1 minus this ratio (nats/char)")
    ax.set_title("LoRA+ against plain LoRA on held-out seeds (circle: the tuned ratio)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def best_ratio_by_width(summary: dict, path):
    """The located best ratio (95 % interval) and the tuned ratio against d_model, with a line
    of the predicted slope through the located points' geometric centre."""
    fig, ax = new_figure(figsize=(6, 4.2))
    for init, e in summary["lr_ratio_exponent"].items():
        rows = [c for c in _finished(summary) if c["init"] == init and not c["control"]]
        loc = [c for c in rows if c["best_lr_ratio"] is not None]
        if loc:
            w = np.array([c["width"] for c in loc], float)
            b = np.array([c["best_lr_ratio"] for c in loc], float)
            lo = np.array([c["best_lr_ratio_interval"][0] for c in loc])
            hi = np.array([c["best_lr_ratio_interval"][1] for c in loc])
            ax.errorbar(w, b, yerr=[b - lo, hi - b], marker="o", capsize=3,
                        label=f"{INIT_NAMES[init]}: located best ratio")
            cw, cb = math.exp(np.log(w).mean()), math.exp(np.log(b).mean())
            xs = np.array([min(w) / 1.5, max(w) * 1.5])
            ax.plot(xs, cb * (xs / cw) ** e["predicted"], ":", color="gray",
                    label=f"slope {e['predicted']:+g} (width law, sp readout)")
        ax.plot([c["width"] for c in rows], [c["tuned_lr_ratio"] for c in rows], "*", ms=10,
                label=f"{INIT_NAMES[init]}: tuned ratio (tuning seeds)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("d_model")
    ax.set_ylabel("lr_ratio")
    ax.set_title("The best LoRA+ ratio against width (real text)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def lr_lattices(records: dict, summary: dict, path):
    """One panel per chain: the tuning seeds' mean final loss against lr_A, a line per ratio."""
    rows = _finished(summary)
    if not rows:
        return None
    fig, axes = new_figure(1, len(rows), figsize=(4.2 * len(rows), 3.6), squeeze=False)
    seeds = set(summary["config"]["tune_seeds"])
    for ax, c in zip(axes[0], rows):
        runs = [r for r in records["runs"] if r["width"] == c["width"] and r["init"] == c["init"]
                and r["batch_size"] * summary["config"]["context"] == c["tokens_per_batch"]
                and r["seed"] in seeds]
        for x in c["lr_ratios"]:
            by_lr: dict = {}
            for r in runs:
                if r["lr_ratio"] == float(x):
                    by_lr.setdefault(r["lr"], []).append(r["final_loss"])
            pts = sorted((lr, sum(v) / len(v)) for lr, v in by_lr.items() if len(v) == len(seeds))
            if pts:
                ax.plot(*zip(*pts), marker=".", label=f"ratio {float(x):g}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lr_A")
        ax.set_title(chain_label(c), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("tuning seeds' mean final loss")
    return save_figure(fig, path)


def curves(records: dict, summary: dict, path):
    """Validation loss against step on the evaluation seeds (mean) for ratio 1 and the tuned
    ratio at their kept lrs, one line each per chain: how flat the curves are at the end."""
    fig, ax = new_figure(figsize=(7, 4.4))
    seeds = set(summary["config"]["eval_seeds"])
    for c in _finished(summary):
        for x in dict.fromkeys([1.0, float(c["tuned_lr_ratio"])]):
            lr = c["kept_lr"][c["lr_ratios"].index(x)]
            runs = [r for r in records["runs"] if r["width"] == c["width"] and r["init"] ==
                    c["init"] and r["batch_size"] * summary["config"]["context"] ==
                    c["tokens_per_batch"] and r["lr_ratio"] == x and r["lr"] == lr
                    and r["seed"] in seeds]
            if runs:
                ax.plot(runs[0]["eval_steps"], np.mean([r["val_loss"] for r in runs], axis=0),
                        ls="-" if x == 1.0 else "--", label=f"{chain_label(c)}, ratio {x:g}")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("validation loss (nats/char)")
    ax.set_title("Fine-tuning curves at the kept rates (mean of the evaluation seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return save_figure(fig, path)


def ladder_figures(records: dict, summary: dict, out) -> list:
    """Every figure of the ladder into `out` (none before a chain has finished). -> the paths
    written."""
    out = Path(out)
    if not _finished(summary):
        return []
    made = [gain_by_ratio(summary, out / "ladder_gain_by_ratio.png"),
            best_ratio_by_width(summary, out / "ladder_best_ratio_by_width.png"),
            lr_lattices(records, summary, out / "ladder_lr_lattices.png"),
            curves(records, summary, out / "ladder_curves.png")]
    return [p for p in made if p is not None]
