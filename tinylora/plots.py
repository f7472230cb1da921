"""Figures from records. matplotlib is imported inside each function, so the core library needs
NumPy only; install the `plots` extra for these. Every figure is written to a file (Agg works
without a display) and its title says what it shows."""

from __future__ import annotations

import math
from pathlib import Path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RuntimeError("plots need matplotlib: pip install 'tinylora[plots]'") from err
    return plt


def loss_curves(curves: dict, path, title: str, ylabel: str = "training loss (MSE)"):
    """One line per label: {label: [loss at step 0, 1, ...]} on a log y axis. -> the path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, losses in curves.items():
        ax.plot(range(len(losses)), losses, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _log2_width_axis(ax, widths):
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(widths))
    ax.set_xticklabels([f"$2^{{{int(round(math.log2(w)))}}}$" for w in widths], fontsize=7)
    ax.set_xlabel("width n")


def toy_deltas(rows, path, optimizer: str, step: int, init: int, theory: dict):
    """Analytic toy: |delta1|, |delta2|, |delta3| at `step` against the width, one panel per
    schedule, with the theory's slope drawn dashed through the widest point. -> the path."""
    plt = _pyplot()
    schedules = list(dict.fromkeys(r["schedule"] for r in rows))
    fig, axes = plt.subplots(1, len(schedules), figsize=(3.2 * len(schedules), 3.2), sharey=True)
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
        _log2_width_axis(ax, sorted({r["width"] for r in rows}))
        ax.set_title(sched, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"|delta| at step {step}")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Analytic toy, Init[{init}], {optimizer.upper()}: |delta_i| vs width "
                 f"(dashed: theory slope)", fontsize=10)
    return _save(fig, path)
