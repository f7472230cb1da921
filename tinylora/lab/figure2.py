"""`tinylora toy-heatmap`: the paper's Figure 2, the (eta_A, eta_B) landscape of the numerical toy.

Three settings of `tinylora.lab.finetune_toy` (d = 5, n = 100, r = 4, Y = sin(mean(X)), 1000
train and 100 test points, 3 seeds, about 200 steps):

    paper_gd       (a) the printed setup: W_mid = 0, A ~ N(0, 1/n), B ~ N(0, 1), gradient descent
    finetune_gd    (b) a frozen middle weight, Init[1] (B = 0), gradient descent
    finetune_adam  (b) the same with Adam

For each: heatmaps of the training and test loss at t = 10 and at the end, with the best cell,
the cells within 1 % of it and the diagonal eta_A = eta_B, and where the optimum lies relative to
that diagonal (above it: eta_B > eta_A, as LoRA+ says). Every grid cell and seed of a setting is
trained in batched passes (`tinylora.lab.grid`); each finished setting is saved and reused.

Outputs in ``--out``: records.json (a row per setting, width, cell, seed, step, quantity),
summary.json ({"config", "settings": {"<setting>_n<width>": {"<train|test>_t<step>": the
reading of `tinylora.lab.landscape.analyze` (best cell, best ratio and its interval, LoRA's
best, the position against the diagonal) plus "edge": the best cell on the grid's edge}}}),
summary.md and one heatmap figure per setting and width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from tinylora.lab import calibrate, grid, landscape, plots
from tinylora.lab.finetune_toy import seeded_tasks
from tinylora.run.options import (
    CommonOptions,
    ListOf,
    add_common_arguments,
    choice_of,
    options_from_args,
    parse_list,
    positive_int,
)
from tinylora.run.records import ResultsDir, markdown_table

SETTINGS = {  # name: (variant, optimizer, lowest and highest learning rate of the grid)
    "paper_gd": ("paper", "sgd", 1e-4, 1e1),
    "finetune_gd": ("finetune", "sgd", 1e-4, 1e1),
    "finetune_adam": ("finetune", "adam", 1e-5, 1e0),
}
VIEWS = (("train", 0), ("test", 0), ("train", -1), ("test", -1))  # (loss, index of t = 10 / end)


@dataclass(frozen=True)
class HeatmapConfig:
    seeds: int = 3
    steps: int = 200
    n_train: int = 1000
    n_test: int = 100
    per_decade: int = 2
    dtype: str = "float64"
    model_seed: int = 0


FAST = HeatmapConfig(seeds=1, steps=20, n_train=200, n_test=50, per_decade=1)


def record_steps(cfg: HeatmapConfig) -> tuple:
    return tuple(sorted({min(10, cfg.steps), cfg.steps}))


def run_setting(name: str, width: int, cfg: HeatmapConfig, backend_name=None, progress=None):
    """Every cell of one setting's grid, every seed. -> a JSON-able payload of cells."""
    variant, optimizer, lo, hi = SETTINGS[name]
    task = seeded_tasks(cfg.model_seed, width=width, variant=variant, optimizer=optimizer,
                        steps=cfg.steps, record_steps=record_steps(cfg), n_train=cfg.n_train,
                        n_test=cfg.n_test, backend_name=backend_name, dtype=cfg.dtype)
    ks = grid.lattice(lo, hi, cfg.per_decade)
    keys = [(a, b) for b in ks for a in ks]
    etas = [(grid.eta(a, cfg.per_decade), grid.eta(b, cfg.per_decade)) for a, b in keys]
    train, test = grid.train_cells(task, etas, range(cfg.seeds), progress=progress)
    cells = [{"kA": a, "kB": b, "eta_A": ea, "eta_B": eb, "train": tr, "test": te}
             for (a, b), (ea, eb), tr, te in zip(keys, etas, train, test)]
    return {"setting": name, "width": width, "cells": cells}


def analyze(payload: dict, cfg: HeatmapConfig) -> dict:
    """Best cell, best ratio, position against the diagonal, LoRA's best: per view."""
    steps = record_steps(cfg)
    ks = [c["kA"] for c in payload["cells"]] + [c["kB"] for c in payload["cells"]]
    out = {}
    for which, at in VIEWS:
        a = landscape.analyze(payload["cells"], cfg.per_decade, which, at, cfg.seeds)
        a.pop("near", None)
        a["edge"] = a["best"] is not None and bool({a["best"]["kA"], a["best"]["kB"]}
                                                   & {min(ks), max(ks)})
        out[f"{which}_t{steps[at]}"] = a
    return out


@dataclass(frozen=True)
class HeatmapOptions(CommonOptions):
    """The options of `tinylora toy-heatmap` (`add_arguments` is the CLI's definition)."""

    out: str = "toy-heatmap-out"  # results folder
    steps: int | None = None  # steps per cell; None: HeatmapConfig.steps
    settings: tuple | str = tuple(SETTINGS)  # names of SETTINGS
    per_decade: int | None = None  # grid points per decade; None: HeatmapConfig.per_decade


def add_arguments(parser) -> None:
    add_common_arguments(parser, "toy-heatmap-out", n_seeds=HeatmapConfig.seeds)
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="steps per cell (default 200)")
    parser.add_argument("--settings", action=ListOf, kind=choice_of(*SETTINGS),
                        default=tuple(SETTINGS), help=f"some of {', '.join(SETTINGS)}")
    parser.add_argument("--per-decade", dest="per_decade", type=positive_int, default=None,
                        help="grid points per decade (default 2)")


def main(args) -> int:
    result = execute(options_from_args(HeatmapOptions, args))
    print(f"Numerical toy (Eq. 3): where is the best (eta_A, eta_B) after {result['steps']} "
          f"steps?")
    print(result["table"])
    print(f"wrote {result['out']}/summary.md, summary.json, records.json and "
          f"{len(result['figures'])} figures")
    return 0


def execute(options: HeatmapOptions) -> dict:
    """Run every setting and width (reusing finished ones), write every output.
    -> {"summary", "table", "steps", "figures", "out"}."""
    cfg = FAST if options.fast else HeatmapConfig()
    changes = {"dtype": options.dtype, **{k: getattr(options, k) for k in ("steps", "per_decade")
                                          if getattr(options, k) is not None}}
    if options.n_seeds is not None:
        changes["seeds"] = options.n_seeds
    cfg = replace(cfg, **changes)
    names = parse_list(options.settings, choice_of(*SETTINGS), "--settings")
    widths = parse_list(options.widths) or (100,)
    out = ResultsDir(options.out, {"command": "toy-heatmap", **asdict(cfg)})
    rows, summary, figures, lines = [], {"settings": {}, "config": asdict(cfg)}, [], []
    steps = record_steps(cfg)
    keys = [f"{name}_n{width}" for name in names for width in widths]
    plan = calibrate.heatmap_plan(names, widths, cfg, SETTINGS, [
        k for k in keys if out.load_part(k) is not None], options.backend)
    plan.announce()
    with plan.bar(show=not options.no_progress) as progress:
        for name in names:
            for width in widths:
                key = f"{name}_n{width}"
                runs = len(grid.lattice(*SETTINGS[name][2:], cfg.per_decade)) ** 2 * cfg.seeds
                part = progress.part(key, runs)
                payload = out.cached(key, lambda name=name, width=width, part=part: run_setting(
                    name, width, cfg, options.backend, part))
                progress.done(key)
                _report(name, width, payload, cfg, out, rows, summary, figures, lines)
    out.write("records.json", rows)
    out.write("summary.json", summary)
    table = markdown_table(["setting", "best (eta_A, eta_B) by train loss", "eta_B / eta_A",
                            "relative to the diagonal", "LoRA+ train loss", "LoRA train loss",
                            "best by test loss"], lines)
    out.write("summary.md", f"# Numerical toy (paper Eq. 3, Figure 2)\n\nLosses at t = {steps[-1]}"
              f", mean of {cfg.seeds} seeds; LoRA = best cell on the diagonal eta_A = eta_B.\n\n"
              f"{table}\n" + "".join(f"![{path.name}]({path.name})\n" for path in figures))
    return {"summary": summary, "table": table, "steps": steps[-1], "figures": figures,
            "out": out.path}


def _report(name, width, payload, cfg, out, rows, summary, figures, lines) -> None:
    """One (setting, width): its records, reading, heatmap figure and table row, appended."""
    steps, key = record_steps(cfg), f"{name}_n{width}"
    rows += [{"setting": name, "width": width, "eta_A": c["eta_A"], "eta_B": c["eta_B"],
              "seed": s, "step": t, "quantity": f"{w}_loss", "value": c[w][s][j]}
             for c in payload["cells"] for w in ("train", "test")
             for s in range(cfg.seeds) for j, t in enumerate(steps)]
    result = analyze(payload, cfg)
    summary["settings"][key] = result
    panels = [landscape.panel(payload["cells"], f"{w} loss, t = {steps[at]}", w, at)
              for w, at in VIEWS]
    variant, optimizer, _, _ = SETTINGS[name]
    figures.append(plots.heatmaps(panels, out / f"toy_heatmap_{key}.png",
                                  f"Numerical toy (Eq. 3), {variant}, "
                                  f"{'GD' if optimizer == 'sgd' else 'Adam'}, n = {width}, "
                                  f"mean of {cfg.seeds} seeds"))
    lines.append(_row(key, result[f"train_t{steps[-1]}"], result[f"test_t{steps[-1]}"]))


def _row(key: str, train: dict, test: dict) -> list:
    b = train["best"]
    if b is None:
        return [key, "every cell diverged", "-", "-", "-", "-", "-"]
    side = "above (eta_B > eta_A)" if b["kB"] > b["kA"] else (
        "on it" if b["kB"] == b["kA"] else "below (eta_B < eta_A)")
    side += ", on the grid's edge" if train["edge"] else ""
    tb = test["best"]
    return [key, f"({b['eta_A']:.3g}, {b['eta_B']:.3g})", train["best_ratio"], side,
            train["loss_loraplus"], train["loss_lora"],
            "-" if tb is None else f"({tb['eta_A']:.3g}, {tb['eta_B']:.3g})"]
