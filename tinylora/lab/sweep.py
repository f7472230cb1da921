"""`tinylora width-sweep`: the loss-optimal rates (eta_A*, eta_B*) of LoRA+ as the width grows,
located on a grid and compared with the prediction of the setting that ran.

At each width n the fine-tuning toy (`tinylora.lab.finetune_toy`, variant "finetune": a frozen
middle weight, Adam) trains every cell of a learning-rate grid for several seeds (each seed its
own frozen model, data and init), in batched passes (`tinylora.lab.grid`) with the frozen part
computed once per width (`tinylora.lab.finetune_toy_model`). The task is the planted teacher (target
"teacher": a rank-2 change of the middle layer, scaled so that the target moves by RMS 1 at every
width, or with held="layer" so that the layer moves by its own size), and the loss is read at
step `steps`, early enough that it is far above its floor of 0
(the summary says how far: the loss there over the loss at step 0).

The grid is a window on the lattice eta = 10^(k / per_decade). The first width starts from the
configured window, every later one from the previous width's best cell +- (margin + 1) cells;
while the best cell (mean over seeds) is closer than `margin` cells to an edge, the window grows
by `grow` cells on that side and only the new cells are trained. So nothing of the theory's
answer is put into the search. A width whose best cell still touches an edge after `max_rounds`
is flagged and left out of the fits. Plain LoRA (one shared rate) is searched the same way along
the diagonal eta_A = eta_B.

What is reported (`tinylora.lab.sweep_analysis`): the optimum located by a local cubic fit of
the log-loss around the best cell, with intervals from a bootstrap over seeds
(`tinylora.lab.optimum`); the exponents of eta_A*, eta_B*, their ratio and their product (over
the widths where the optimum is located, and over those from n = 128 on) against the prediction
of `tinylora.lab.predictions` for this optimizer, readout, init and convention (none where the
counting has none); where the grid shows a flat valley, that verdict instead of a ratio; and
LoRA against LoRA+ tuned on half the seeds and scored on the other half (then the other way
round), so that neither wins by construction.

Each width's cells are saved to ``--out/parts/width<n>.json`` as soon as it finishes; a rerun
with the same configuration reuses them (`tinylora.run.records.ResultsDir`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tinylora.lab import grid, landscape
from tinylora.lab.finetune_toy import seeded_tasks
from tinylora.lab.landscape import window_cells
from tinylora.lab.optimum import RADIUS
from tinylora.run.progress import bar

WIDTHS = (64, 128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class SweepConfig:
    """Everything that changes the numbers (the widths and the backend do not)."""

    variant: str = "finetune"
    optimizer: str = "adam"
    readout: str = "sp"  # W_out ~ N(0, 1/n) as printed ("sp"), or N(0, 1/n^2) ("mup")
    init: str = "zero_B"  # Init[1]; "zero_A" is Init[2]
    target: str = "teacher"  # the planted low-rank shift; "sin" is the paper's sin(mean x)
    held: str = "output"  # what the teacher holds fixed at every width: "output" or "layer"
    seeds: int = 16
    steps: int = 20
    n_train: int = 128
    n_test: int = 128
    r: int = 4
    per_decade: int = 4
    window_A: tuple = (-12, -6)  # lattice indices: eta_A from 10^-3 to 10^-1.5
    window_B: tuple = (-8, -2)  # eta_B from 10^-2 to 10^-0.5
    margin: int = RADIUS  # the best cell this many cells inside every edge: room for the fit
    grow: int = 2
    max_rounds: int = 8
    model_seed: int = 0  # seed s draws the frozen model, data and adapter from model_seed + s
    dtype: str = "float64"


FAST = SweepConfig(seeds=8, n_train=64, n_test=64)  # what `--fast` and `tinylora demo` run
FAST_WIDTHS = (64, 128, 256, 512, 1024)


def record_steps(cfg: SweepConfig) -> tuple:
    """The steps at which losses are kept: 0 (where training starts) and the measured step."""
    return (0, cfg.steps)


def _cell(kA, kB, cfg, train, test) -> dict:
    return {"kA": kA, "kB": kB, "eta_A": grid.eta(kA, cfg.per_decade),
            "eta_B": grid.eta(kB, cfg.per_decade), "train": train, "test": test}


def _grow(lo_hi: tuple, k_best: int, step: int, margin: int) -> tuple:
    """Move an edge closer than `margin` to the best index outward by `step`."""
    lo, hi = lo_hi
    return (lo - step if k_best - lo < margin else lo, hi + step if hi - k_best < margin else hi)


def task_for(width: int, cfg: SweepConfig, backend_name=None):
    """seed -> the grid task of one seed at this width (frozen part cached)."""
    return seeded_tasks(cfg.model_seed, width=width, variant=cfg.variant, optimizer=cfg.optimizer,
                        steps=cfg.steps, record_steps=record_steps(cfg), n_train=cfg.n_train,
                        n_test=cfg.n_test, r=cfg.r, readout=cfg.readout, init=cfg.init,
                        target=cfg.target, cached=True, backend_name=backend_name,
                        dtype=cfg.dtype, held=cfg.held)


def sweep_width(width: int, cfg: SweepConfig, backend_name=None, progress=None,
                start=None) -> dict:
    """All the cells trained at one width, and how the search went. -> a JSON-able payload.

    `start`: the lattice cell (kA, kB) the window is centred on at first (the previous width's
    best cell, when the sweep has one), else the configured window."""
    tasks, seeds, cells = task_for(width, cfg, backend_name), list(range(cfg.seeds)), {}
    cache: dict = {}

    def task(seed):  # one task per seed for the whole width: its frozen part is computed once
        cache[seed] = cache.get(seed) or tasks(seed)
        return cache[seed]

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
    if start is not None:  # continue from the previous width: its best cell +- margin + 1
        h = cfg.margin + 1
        wa, wb = (start[0] - h, start[0] + h), (start[1] - h, start[1] + h)
    for _ in range(cfg.max_rounds):  # the 2-D window, grown until its best cell is inside
        train([(a, b) for a in range(wa[0], wa[1] + 1) for b in range(wb[0], wb[1] + 1)])
        window = [cells[(a, b)] for a in range(wa[0], wa[1] + 1) for b in range(wb[0], wb[1] + 1)]
        best = landscape.best_cell(window)
        if best is None:
            break
        new_a = _grow(wa, best["kA"], cfg.grow, cfg.margin)
        new_b = _grow(wb, best["kB"], cfg.grow, cfg.margin)
        if (new_a, new_b) == (wa, wb):
            edge = False
            break
        wa, wb = new_a, new_b
    wd, diagonal_edge = (min(wa[0], wb[0]), max(wa[1], wb[1])), True
    for _ in range(cfg.max_rounds):  # plain LoRA: the diagonal eta_A = eta_B, grown the same way
        train([(k, k) for k in range(wd[0], wd[1] + 1)])
        best = landscape.best_cell([cells[(k, k)] for k in range(wd[0], wd[1] + 1)])
        if best is None or _grow(wd, best["kA"], cfg.grow, 1) == wd:
            diagonal_edge = best is None
            break
        wd = _grow(wd, best["kA"], cfg.grow, 1)
    return {"width": width, "window_A": list(wa), "window_B": list(wb), "diagonal": list(wd),
            "edge": edge, "diagonal_edge": diagonal_edge, "cells": list(cells.values())}


def run(widths, cfg: SweepConfig, out, backend_name=None, show_progress=True,
        on_width_done=None, progress=None) -> list:
    """Every width, reusing the parts `out` (a ResultsDir) already holds. -> list of payloads.

    `progress`: the command's `tinylora.run.progress.Progress` (one unit per width, key
    ``width<n>``), else a bar per width when `show_progress`. `on_width_done(width)` is called
    after each width is saved (tests interrupt a run there).
    """
    def compute(width):
        previous = [landscape.best_cell(window_cells(payload)) for payload in payloads[-1:]]
        start = [(b["kA"], b["kB"]) for b in previous if b is not None]
        with (bar(total=0, desc=f"width {width}", unit="run", show=show_progress)
              if progress is None else progress.part(f"width{width}")) as pb:
            return sweep_width(width, cfg, backend_name, progress=pb,
                               start=start[0] if start else None)

    payloads = []
    for width in widths:
        payloads.append(out.cached(f"width{width}", lambda w=width: compute(w),
                                   what=f"width {width}"))
        if progress is not None:
            progress.done(f"width{width}")
        if on_width_done is not None:
            on_width_done(width)
    return payloads


def records(payloads: list, cfg: SweepConfig) -> list:
    """One row per width, cell, seed, recorded step and quantity."""
    steps = record_steps(cfg)
    return [{"width": payload["width"], "eta_A": c["eta_A"], "eta_B": c["eta_B"], "seed": s,
             "step": t, "quantity": f"{which}_loss", "value": c[which][s][j]}
            for payload in payloads for c in payload["cells"] for which in ("train", "test")
            for s in range(cfg.seeds) for j, t in enumerate(steps)]


def config_from_args(args) -> SweepConfig:
    cfg = FAST if args.fast else SweepConfig()
    changes = {"dtype": args.dtype}
    for name in ("steps", "optimizer", "n_train", "readout", "init", "target", "held"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if getattr(args, "n_seeds", None) is not None:
        changes["seeds"] = args.n_seeds
    if changes.get("optimizer") == "gd":  # the CLI's name (as in toy-analytic) for plain GD
        changes["optimizer"] = "sgd"
    return replace(cfg, **changes)
