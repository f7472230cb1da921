"""Figures from records. matplotlib is imported inside each function, so the core library needs
NumPy only; install the `plots` extra for these. Every figure is a `matplotlib.figure.Figure`
drawn and saved without pyplot: no backend is chosen, switched or registered, so a notebook's
inline backend (or any user's choice) is left as it was. Each function writes its figure to a
file and returns the path; its title says what it shows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize, **kw):
    """A new Figure (not registered with pyplot) and its axes, as `plt.subplots` returns them."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RuntimeError("plots need matplotlib: pip install 'tinylora[plots]'") from err
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kw)


def save_figure(fig, path, dpi: int = 110) -> Path:
    """Lay the figure out and write it (the format from the suffix); nothing global changes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def log2_width_axis(ax, widths):
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(widths))
    ax.set_xticklabels([f"$2^{{{round(math.log2(w))}}}$" for w in widths], fontsize=7)
    ax.set_xlabel("width n")


def toy_deltas(rows, path, optimizer: str, step: int, init: int, theory: dict):
    """Analytic toy: |delta1|, |delta2|, |delta3| at `step` against the width, one panel per
    schedule, with the theory's slope drawn dashed through the widest point. -> the path."""
    schedules = list(dict.fromkeys(r["schedule"] for r in rows))
    fig, axes = new_figure(1, len(schedules), figsize=(3.2 * len(schedules), 3.2), sharey=True)
    axes = [axes] if len(schedules) == 1 else list(axes)
    for ax, sched in zip(axes, schedules):
        for i, q in enumerate(("delta1", "delta2", "delta3")):
            pts = {}
            for r in rows:
                if (r["optimizer"], r["schedule"], r["step"], r["quantity"]) == (optimizer, sched,
                                                                                 step, q):
                    pts.setdefault(r["width"], []).append(abs(r["value"]))
            w = sorted(n for n in pts if 0 < min(pts[n]) < math.inf)
            if not w:
                continue
            v = [sum(pts[n]) / len(pts[n]) for n in w]
            line, = ax.plot(w, v, "o-", ms=3, label=q, color=f"C{i}")
            s = theory.get(f"{sched}/{q}")
            if s is not None:
                ax.plot(w, [v[-1] * (n / w[-1]) ** s for n in w], "--", color=line.get_color(),
                        lw=1, alpha=0.7)
        ax.set_yscale("log")
        log2_width_axis(ax, sorted({r["width"] for r in rows}))
        ax.set_title(sched, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"|delta| at step {step}")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Analytic toy, Init[{init}], {optimizer.upper()}: |delta_i| vs width "
                 f"(dashed: theory slope)", fontsize=10)
    return save_figure(fig, path)


def heatmaps(panels: list, path, title: str, ncols: int | None = None):
    """Learning-rate heatmaps, one panel per dict of `panels`:

        {"title": str, "eta_A": [..], "eta_B": [..],   # the axes (increasing)
         "loss": rows over eta_B of columns over eta_A (nan = not trained, inf = diverged),
         "best": (i_B, i_A) or None, "near": [(i_B, i_A), ...] (within 1 % of the best),
         optional "optimum": {"u", "v"} (log10 rates) and "draws": [{"eta_A", "eta_B"}, ...]
         (log10 rates): a located optimum and its bootstrap draws}

    Colour: log10 of the loss. Diverged cells are black with a white x; untrained cells are
    blank. The best cell is a red star, the cells within 1 % of it are circled, and the
    eta_A = eta_B diagonal (plain LoRA) is a dashed line. -> the path.
    """
    ncols = ncols or min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(3.6 * ncols, 3.3 * nrows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, panel in zip(axes.ravel(), panels):
        loss = np.asarray(panel["loss"], dtype=float)
        la, lb = np.log10(panel["eta_A"]), np.log10(panel["eta_B"])
        step_a = la[1] - la[0] if len(la) > 1 else 0.25
        step_b = lb[1] - lb[0] if len(lb) > 1 else 0.25
        extent = [la[0] - step_a / 2, la[-1] + step_a / 2, lb[0] - step_b / 2, lb[-1] + step_b / 2]
        finite = np.isfinite(loss)
        shown = np.where(finite, np.log10(np.where(finite & (loss > 0), loss, 1.0)), np.nan)
        im = ax.imshow(shown, origin="lower", extent=extent, aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="log10 loss")
        dead = np.isinf(loss)
        if dead.any():
            ax.imshow(np.where(dead, 1.0, np.nan), origin="lower", extent=extent, aspect="auto",
                      cmap="gray_r", vmin=0, vmax=1)
            ib, ia = np.nonzero(dead)
            ax.plot(la[ia], lb[ib], "x", color="white", ms=3, mew=0.8)
        lo, hi = max(extent[0], extent[2]), min(extent[1], extent[3])
        if lo < hi:
            ax.plot([lo, hi], [lo, hi], "--", color="white", lw=1, label="eta_A = eta_B")
        for ib, ia in panel.get("near") or []:
            ax.plot(la[ia], lb[ib], "o", mfc="none", mec="orange", ms=8, mew=1.2)
        if panel.get("best") is not None:
            ib, ia = panel["best"]
            ax.plot(la[ia], lb[ib], "*", color="red", ms=12, mec="white", mew=0.6)
        if panel.get("draws"):  # bootstrap draws of a located optimum (tinylora.lab.optimum)
            ax.plot([d["eta_A"] for d in panel["draws"]], [d["eta_B"] for d in panel["draws"]], ".",
                    color="white", ms=1.5, alpha=0.5)
        if panel.get("optimum"):
            ax.plot(panel["optimum"]["u"], panel["optimum"]["v"], "P", color="magenta", ms=8,
                    mec="white", mew=0.6)
        ax.set_xlabel("log10 eta_A")
        ax.set_ylabel("log10 eta_B")
        ax.set_title(panel["title"], fontsize=9)
    located = any(panel.get("optimum") for panel in panels)
    marks = ("red star: best cell; magenta cross: located optimum, white dots: its bootstrap "
             "draws" if located else "red star: best; orange circles: within 1 %")
    fig.suptitle(title + f"\n({marks}; dashed: eta_A = eta_B; black x: diverged)", fontsize=9)
    return save_figure(fig, path)


def ratio_vs_width(summary: dict, path):
    """Best ratio eta_B*/eta_A* against the width (log-log), with its interval, each seed's
    best ratio (where the summary has them), the fitted power law (solid) and the prediction of
    the setting that ran (dashed, ``summary["theory_exponent"]``, when given). -> the path."""
    fig, ax = new_figure(figsize=(5.2, 4))
    pts = [(w, b, iv) for w, b, iv in zip(summary["widths"], summary["best_ratio"],
                                          summary["ratio_interval"]) if b is not None]
    if pts:
        for w, b, iv in pts:
            if iv is not None:
                ax.errorbar([w], [b], yerr=[[b - iv[0]], [iv[1] - b]], fmt="none", capsize=3,
                            color="C0")
        ax.plot([w for w, _, _ in pts], [b for _, b, _ in pts], "o", color="C0",
                label="best ratio (interval)")
        for wi, seeds in zip(summary["widths"], summary.get("seed_best_ratios", [])):
            ax.plot([wi] * len(seeds), seeds, ".", color="gray", alpha=0.6, ms=4)
        ws = [w for w, _, _ in pts]
        mw = math.exp(sum(math.log(w) for w, _, _ in pts) / len(pts))
        mb = math.exp(sum(math.log(b) for _, b, _ in pts) / len(pts))
        x, ci, pred = (summary.get(k) for k in ("exponent", "exponent_interval",
                                                  "theory_exponent"))
        if x is not None:
            ci_txt = "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
            ax.plot(ws, [mb * (v / mw) ** x for v in ws], "-", color="C0", alpha=0.7,
                    label=f"fit: width^{x:.2f}{ci_txt}")
        if pred is not None:
            ax.plot(ws, [mb * (v / mw) ** pred for v in ws], "--", color="C3", alpha=0.7,
                    label=f"predicted for this setting: slope {pred:g}")
        log2_width_axis(ax, summary["widths"])
    finish_log_axes(ax, "best ratio eta_B* / eta_A*",
            "LoRA+: the best learning-rate ratio against the width")
    return save_figure(fig, path)


def finish_log_axes(ax, ylabel: str, title: str) -> None:
    """A log y axis with its label, the title, a grid and the legend."""
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def lora_vs_loraplus(summary: dict, path):
    """Best final loss of LoRA (one shared rate) and LoRA+ (best pair) against the width."""
    fig, ax = new_figure(figsize=(5.2, 4))
    widths = summary["widths"]
    for key, label, style in (("loss_lora", "LoRA (best shared rate)", "o-"),
                              ("loss_loraplus", "LoRA+ (best eta_A, eta_B)", "s-")):
        pts = [(w, v) for w, v in zip(widths, summary[key]) if v is not None and math.isfinite(v)]
        if pts:
            ax.plot(*zip(*pts), style, label=label)
    log2_width_axis(ax, widths)
    finish_log_axes(ax, "best training loss (MSE)", "Best loss after tuning: LoRA vs LoRA+")
    return save_figure(fig, path)


def coordcheck(rows, path, schedule: str):
    """mup-style coordinate check: one row of panels per LoRA layer, one panel per step; RMS of
    each quantity against log2(width), mean over seeds with a min-max band. -> the path."""
    rows = [r for r in rows if r["schedule"] == schedule]
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    steps = sorted({r["step"] for r in rows})
    quantities = list(dict.fromkeys(r["quantity"] for r in rows))
    widths = sorted({r["width"] for r in rows})
    fig, axes = new_figure(len(layers), len(steps), figsize=(3 * len(steps), 2.8 * len(layers)),
                             squeeze=False, sharey="row")
    data: dict = {}
    for r in rows:
        data.setdefault((r["layer"], r["step"], r["quantity"], r["width"]), []).append(r["value"])
    for i, layer in enumerate(layers):
        for j, t in enumerate(steps):
            ax = axes[i][j]
            for k, q in enumerate(quantities):
                pts = [(w, data[(layer, t, q, w)]) for w in widths if (layer, t, q, w) in data]
                pts = [(w, v) for w, v in pts if all(0 < x < math.inf for x in v)]
                if not pts:
                    continue
                w = [width for width, _ in pts]
                ax.plot(w, [sum(v) / len(v) for _, v in pts], "o-", ms=3, color=f"C{k}", label=q)
                ax.fill_between(w, [min(v) for _, v in pts], [max(v) for _, v in pts],
                                color=f"C{k}", alpha=0.2)
            ax.set_yscale("log")
            log2_width_axis(ax, widths)
            ax.set_title(f"{layer}, step {t}", fontsize=9)
            ax.grid(alpha=0.3)
        axes[i][0].set_ylabel("RMS")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"Coordinate check, schedule {schedule}: RMS against width, mean of seeds with "
                 f"their min-max band (flat = width-independent)", fontsize=10)
    return save_figure(fig, path)
