"""Figures from records. matplotlib is imported inside each function, so the core library needs
NumPy only; install the `plots` extra for these. Every figure is written to a file (Agg works
without a display) and its title says what it shows."""

from __future__ import annotations

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
