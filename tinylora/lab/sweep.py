"""`tinylora width-sweep`: measure the best ratio eta_B* / eta_A* of LoRA+ as the width grows.

At each width n the fine-tuning toy (`tinylora.lab.toy_problem`, variant "finetune": a frozen middle
weight, Init[1], Adam) trains every cell of a learning-rate grid, for several seeds, in batched
passes (`tinylora.lab.grid`). The paper predicts eta_A* ~ 1/n and eta_B* ~ 1, so the best ratio
should grow like n^1; we fit log(best ratio) against log(n) and report the exponent with its
95 % interval, whatever it is.

The grid is a window on the quarter-decade lattice (eta = 10^(k/4)). Every width starts from the
same window; while the best cell (mean over seeds of the final training loss) sits on an edge,
the window grows by half a decade on that side and only the new cells are trained. So nothing
about the theory's answer is put into the search, and the optimum reported is interior (a width
whose optimum is still on an edge after `max_rounds` is flagged and left out of the fit).
Plain LoRA (one shared rate) is searched the same way along the diagonal eta_A = eta_B.

Each width's cells are saved to ``--out/parts/width<n>.json`` as soon as it finishes; a rerun
with the same configuration reuses them (`tinylora.records.ResultsDir`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from tinylora.lab import grid, landscape
from tinylora.lab.fit import loglog_slope
from tinylora.lab.toy_problem import seeded_tasks

WIDTHS = (64, 128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class SweepConfig:
    """Everything that changes the numbers (the widths and the backend do not)."""

    variant: str = "finetune"
    optimizer: str = "adam"
    seeds: int = 3
    steps: int = 100
    n_train: int = 128
    n_test: int = 128
    r: int = 4
    per_decade: int = 4
    window_A: tuple = (-13, -7)  # lattice indices: eta_A from 10^-3.25 to 10^-1.75
    window_B: tuple = (-9, -3)  # eta_B from 10^-2.25 to 10^-0.75
    grow: int = 2
    max_rounds: int = 6
    readout: str = "sp"  # W_out ~ N(0, 1/n) as printed ("sp"), or N(0, 1/n^2) ("mup")
    model_seed: int = 0  # seed s draws the frozen model, data and adapter from model_seed + s
    dtype: str = "float64"


FAST = SweepConfig(seeds=2, steps=50, n_train=64, n_test=64, window_A=(-12, -8),
                   window_B=(-8, -4), max_rounds=4)  # what `--fast` and `tinylora demo` run
FAST_WIDTHS = (64, 128, 256, 512, 1024)


def record_steps(cfg: SweepConfig) -> tuple:
    """The steps at which losses are kept: t = 10 (early, as in the paper's figure) and the end."""
    return tuple(sorted({min(10, cfg.steps), cfg.steps}))


def _cell(kA, kB, cfg, train, test) -> dict:
    return {"kA": kA, "kB": kB, "eta_A": grid.eta(kA, cfg.per_decade),
            "eta_B": grid.eta(kB, cfg.per_decade), "train": train, "test": test}


def _grow(lo_hi: tuple, k_best: int, step: int) -> tuple:
    """Move the edge on which the best index sits outward by `step` (unchanged if interior)."""
    lo, hi = lo_hi
    return (lo - step, hi) if k_best == lo else ((lo, hi + step) if k_best == hi else (lo, hi))


def sweep_width(width: int, cfg: SweepConfig, backend_name=None, progress=None) -> dict:
    """All the cells trained at one width, and how the search went. -> a JSON-able payload."""
    task = seeded_tasks(cfg.model_seed, width=width, variant=cfg.variant, optimizer=cfg.optimizer,
                        steps=cfg.steps, record_steps=record_steps(cfg), n_train=cfg.n_train,
                        n_test=cfg.n_test, r=cfg.r, readout=cfg.readout,
                        backend_name=backend_name, dtype=cfg.dtype)
    seeds = list(range(cfg.seeds))
    cells: dict = {}

    def train(keys):
        new = [k for k in dict.fromkeys(keys) if k not in cells]
        if not new:
            return
        if progress is not None:
            progress.total = (progress.total or 0) + len(new) * len(seeds)
            progress.refresh()
        etas = [(grid.eta(a, cfg.per_decade), grid.eta(b, cfg.per_decade)) for a, b in new]
        tr, te = grid.train_cells(task, etas, seeds, progress=progress)
        for (a, b), t1, t2 in zip(new, tr, te):
            cells[(a, b)] = _cell(a, b, cfg, t1, t2)

    wa, wb, edge = tuple(cfg.window_A), tuple(cfg.window_B), True
    for _ in range(cfg.max_rounds):  # the 2-D window, grown until its best cell is interior
        train([(a, b) for a in range(wa[0], wa[1] + 1) for b in range(wb[0], wb[1] + 1)])
        window = [cells[(a, b)] for a in range(wa[0], wa[1] + 1) for b in range(wb[0], wb[1] + 1)]
        best = landscape.best_cell(window)
        if best is None:
            break
        new_a, new_b = _grow(wa, best["kA"], cfg.grow), _grow(wb, best["kB"], cfg.grow)
        if (new_a, new_b) == (wa, wb):
            edge = False
            break
        wa, wb = new_a, new_b
    wd, diagonal_edge = wb, True
    for _ in range(cfg.max_rounds):  # plain LoRA: the diagonal eta_A = eta_B, grown the same way
        train([(k, k) for k in range(wd[0], wd[1] + 1)])
        best = landscape.best_cell([cells[(k, k)] for k in range(wd[0], wd[1] + 1)])
        if best is None or _grow(wd, best["kA"], cfg.grow) == wd:
            diagonal_edge = best is None
            break
        wd = _grow(wd, best["kA"], cfg.grow)
    return {"width": width, "window_A": list(wa), "window_B": list(wb), "diagonal": list(wd),
            "edge": edge, "diagonal_edge": diagonal_edge, "cells": list(cells.values())}


def window_cells(payload: dict) -> list:
    """The cells of the final 2-D window (the heatmap), without the diagonal's extra cells."""
    (a0, a1), (b0, b1) = payload["window_A"], payload["window_B"]
    return [c for c in payload["cells"] if a0 <= c["kA"] <= a1 and b0 <= c["kB"] <= b1]


def analyze_width(payload: dict, cfg: SweepConfig) -> dict:
    """Best ratio (from the window) and the best losses of LoRA and LoRA+ (from every cell)."""
    a = landscape.analyze(window_cells(payload), cfg.per_decade, n_seeds=cfg.seeds)
    every = landscape.analyze(payload["cells"], cfg.per_decade, n_seeds=cfg.seeds)
    a["loss_lora"], a["lora_eta"] = every["loss_lora"], every["lora_eta"]
    a["loss_loraplus"] = min(a["loss_loraplus"], every["loss_loraplus"])
    a["edge"], a["diagonal_edge"] = payload["edge"], payload["diagonal_edge"]
    return a


def run(widths, cfg: SweepConfig, out, backend_name=None, show_progress=True,
        on_width_done=None) -> list:
    """Every width, reusing the parts `out` (a ResultsDir) already holds. -> list of payloads.

    `on_width_done(width)` is called after each width is saved (tests interrupt a run there).
    """
    from tinylora.progress import bar

    payloads = []
    for width in widths:
        key = f"width{width}"
        payload = out.load_part(key)
        if payload is None:
            with bar(total=0, desc=f"width {width}", unit="run", show=show_progress) as pb:
                payload = sweep_width(width, cfg, backend_name, progress=pb)
            out.save_part(key, payload)
            payload = out.load_part(key)  # the same numbers as a rerun would read
        payloads.append(payload)
        if on_width_done is not None:
            on_width_done(width)
    return payloads


def summarize(payloads: list, cfg: SweepConfig) -> dict:
    """summary.json (the keys are documented in the issue and pinned by a test)."""
    rows = [analyze_width(p, cfg) for p in payloads]
    widths = [p["width"] for p in payloads]
    usable = [(w, r["best_ratio"]) for w, r in zip(widths, rows)
              if r["best_ratio"] is not None and not r["edge"]]
    fit = loglog_slope([w for w, _ in usable], [x for _, x in usable]) if len(usable) >= 2 else None
    interval = None if fit is None or fit.interval is None else list(fit.interval)
    parts = {}  # the ratio's exponent split into its two rates: eta_A* ~ n^a, eta_B* ~ n^b
    for name in ("eta_A", "eta_B"):
        pts = [(w, r["best"][name]) for w, r in zip(widths, rows) if r["best"] and not r["edge"]]
        f = loglog_slope(*zip(*pts)) if len(pts) >= 2 else None
        parts[f"exponent_{name}"] = None if f is None else f.slope
        ci = None if f is None or f.interval is None else list(f.interval)
        parts[f"exponent_{name}_interval"] = ci
    return {
        "widths": widths,
        "best_ratio": [r["best_ratio"] for r in rows],
        "ratio_interval": [r["ratio_interval"] for r in rows],
        "loss_lora": [r["loss_lora"] for r in rows],
        "loss_loraplus": [r["loss_loraplus"] for r in rows],
        "exponent": None if fit is None else fit.slope,
        "exponent_interval": interval,
        "theory_exponent": 1.0,
        "interval_contains_theory": None if interval is None else interval[0] <= 1.0 <= interval[1],
        "fit_widths": [w for w, _ in usable],
        **parts,
        "best_eta_A": [r["best"] and r["best"]["eta_A"] for r in rows],
        "best_eta_B": [r["best"] and r["best"]["eta_B"] for r in rows],
        "seed_best_ratios": [r["seed_best_ratios"] for r in rows],
        "lora_eta": [r["lora_eta"] for r in rows],
        "edge": [r["edge"] for r in rows],
        "loss": f"mean squared error on the training set after {cfg.steps} steps, mean of "
                f"{cfg.seeds} seeds",
        "config": asdict(cfg),
    }


def records(payloads: list, cfg: SweepConfig) -> list:
    """One row per width, cell, seed, recorded step and quantity."""
    steps = record_steps(cfg)
    return [{"width": p["width"], "eta_A": c["eta_A"], "eta_B": c["eta_B"], "seed": s,
             "step": t, "quantity": f"{which}_loss", "value": c[which][s][j]}
            for p in payloads for c in p["cells"] for which in ("train", "test")
            for s in range(cfg.seeds) for j, t in enumerate(steps)]


def config_from_args(args) -> SweepConfig:
    cfg = FAST if args.fast else SweepConfig()
    changes = {"dtype": args.dtype}
    for name in ("seeds", "steps", "optimizer", "n_train", "readout"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    return replace(cfg, **changes)
