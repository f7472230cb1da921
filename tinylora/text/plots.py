"""Figures of the fine-tuning study (`tinylora pretrain`, `tinylora finetune`).

Same rules as `tinylora.lab.plots`: matplotlib imported lazily, every figure a `Figure` drawn
without pyplot (the user's backend is never touched) and written to a file.
"""

from __future__ import annotations

from tinylora.lab.plots import _save, _subplots


def pretrain_curves(records: list, path):
    """Validation loss of each pretrained base against its step, one line per width."""
    fig, ax = _subplots(figsize=(6, 4))
    for r in records:
        c = r["curve"]
        ax.plot(c["step"], c["val_loss"], marker=".", label=f"d_model = {r['config']['d_model']}")
    ax.set_xlabel("AdamW step")
    ax.set_ylabel("validation loss (nats / char)")
    ax.set_title("Pretraining TinyLM on Shakespeare (all arrays train)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def finetune_curves(details: list, path):
    """One panel per width: validation loss against step for LoRA, LoRA+ (16) and the best
    ratio, mean over seeds with the min-max band; the frozen base's loss as a dashed line."""
    fig, axes = _subplots(1, len(details), figsize=(4.2 * len(details), 3.8), squeeze=False)
    for ax, d in zip(axes[0], details):
        for m in d["methods"].values():
            steps = m["eval_steps"]
            (line,) = ax.plot(steps, m["curve_mean"], label=f"{m['label']}, lr {m['lr']:g}")
            ax.fill_between(steps, m["curve_min"], m["curve_max"], alpha=0.2,
                            color=line.get_color())
        ax.axhline(d["base"]["loss_finetune_text"], ls="--", color="gray", label="frozen base")
        finite = [v for m in d["methods"].values() for v in m["curve_max"] if v < float("inf")]
        lows = [v for m in d["methods"].values() for v in m["curve_min"]]
        ax.set_ylim(min(lows) - 0.05, min(max(finite), d["base"]["loss_finetune_text"]) + 0.1)
        ax.set_title(f"d_model = {d['width']}")
        ax.set_xlabel("fine-tuning step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)  # per panel: the tuned learning rates differ by width
    axes[0][0].set_ylabel("validation loss on Areopagitica")
    fig.suptitle("LoRA vs LoRA+ fine-tuning a Shakespeare TinyLM on Milton "
                 "(mean, min-max of seeds)")
    return _save(fig, path)


def finetune_by_width(details: list, path):
    """Left: speed-up of LoRA+ over LoRA against width; right: final-loss gain (LoRA - LoRA+),
    both with 95 % intervals over seeds, for ratio 16 and the best ratio of the grid."""
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(9, 3.8))
    widths = [d["width"] for d in details]
    for shift, key, label in ((1.0, 16.0, "LoRA+ ratio 16"),
                              (1.05, "best", "LoRA+ best ratio of the grid")):
        ms = [d["methods"][16.0 if key == 16.0 else d["best_ratio"]] for d in details]
        xs = [w * shift for w in widths]  # a small offset so that coinciding bars stay visible
        for ax, what in ((ax1, "speedup"), (ax2, "loss_gain")):
            mid = [m[what][0] for m in ms]
            err = [[m[what][0] - m[what][1] for m in ms], [m[what][2] - m[what][0] for m in ms]]
            ax.errorbar(xs, mid, yerr=err, marker="o", capsize=4, label=label)
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
    ax1.legend(fontsize=8)
    fig.suptitle("Does LoRA+ help, and how does it move with width? (95 % intervals over seeds)")
    return _save(fig, path)


def finetune_lr_grid(records: dict, details: list, path):
    """One panel per width: final validation loss against lr_A for each ratio (tuning seed)."""
    cfg = records["config"]
    fig, axes = _subplots(1, len(details), figsize=(4.2 * len(details), 3.6), squeeze=False)
    for ax, d in zip(axes[0], details):
        for ratio in cfg["ratios"]:
            runs = sorted((r for r in records["runs"] if r["width"] == d["width"]
                           and r["ratio"] == ratio and r["seed"] == cfg["tune_seed"]),
                          key=lambda r: r["lr"])
            lrs = [r["lr"] for r in runs]
            loss = [r["final_loss"] if r["final_loss"] < float("inf") else float("nan")
                    for r in runs]
            ax.plot(lrs, loss, marker="o", label=f"ratio {ratio:g}")
        ax.axhline(d["base"]["loss_finetune_text"], ls="--", color="gray", label="frozen base")
        ax.set_xscale("log")
        ax.set_xlabel("lr of A (B: lr x ratio)")
        ax.set_title(f"d_model = {d['width']}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("final validation loss (tuning seed)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Learning-rate tuning per ratio (diverged runs left out)")
    return _save(fig, path)
