"""How long the lab's long commands will take here: a piece of each one's own work, timed just
before it starts, scaled to the whole (the `tinylora.run.progress.Plan` each command prints).

    toy-heatmap   a run is one cell and one seed of a setting's grid: one chunk of cells of
                  each setting trained for a tenth of the steps, timed, scaled to the steps
    width-sweep   the same at every width (a run costs more the wider the model); the count is
                  the first window of every width, a lower bound (a window grows while its best
                  cell is near an edge)
    balance       a root search at one width: the search at the smallest width is run first and
                  timed (it is kept: it is the run's own first unit), and one batch of rate pairs
                  is timed at every width to scale it

No constant goes in: a slower machine, a busier one or a GPU gives its own numbers. A width
whose timing runs out of memory is left untimed (counted as nothing, and said): the run itself
then stops there with its one-line out-of-memory error, keeping the widths before it.
"""

from __future__ import annotations

from dataclasses import replace

from tinylora.lab import balance, grid, sweep
from tinylora.lab.finetune_toy import seeded_tasks
from tinylora.run.progress import Plan, duration, timed

MAX_CHUNK = 64  # models in the timed chunk (a real chunk is at least grid.MIN_CHUNK)


def grid_run_seconds(make_task, steps: int) -> float:
    """Seconds per run (one cell, one seed, `steps` updates) of a batched grid: one chunk of
    models trained for a tenth of the steps (at least 2), timed, scaled to `steps`.
    `make_task(steps)` -> a `grid.GridTask` of seed 0 with that many steps."""
    short = min(steps, max(2, steps // 10))
    task = make_task(short)
    size = min(MAX_CHUNK, max(grid.MIN_CHUNK, grid.CHUNK_ELEMENTS // max(1, task.elements)))
    jobs = [grid.Job(1e-3, 1e-2, 0)] * size  # rates that neither stall nor diverge
    return timed(lambda: grid.train_chunk(task, jobs)) / size * steps / short


def fits(seconds):
    """Call `seconds()`; None when it runs out of memory (`MemoryError`, CuPy's included)."""
    try:
        return seconds()
    except MemoryError:
        return None


def untimed(per_run: dict) -> str:
    """'; not timed (out of memory): a, b' for the keys whose timing did not fit, else ''."""
    keys = [str(k) for k, v in per_run.items() if v is None]
    return f"; not timed (out of memory): {', '.join(keys)}" if keys else ""


def heatmap_plan(names, widths, cfg, settings: dict, done=(), backend_name=None) -> Plan:
    """`tinylora toy-heatmap`: one unit per (setting, width), its runs = cells x seeds."""
    costs, per_run = {}, {}
    for name in names:
        variant, optimizer, lo, hi = settings[name]
        runs = len(grid.lattice(lo, hi, cfg.per_decade)) ** 2 * cfg.seeds
        for width in widths:
            key = f"{name}_n{width}"
            if key not in done:
                per_run[key] = fits(lambda v=variant, o=optimizer, w=width: grid_run_seconds(
                    lambda s: seeded_tasks(
                        cfg.model_seed, width=w, variant=v, optimizer=o, steps=s,
                        record_steps=(s,), n_train=cfg.n_train, n_test=cfg.n_test,
                        backend_name=backend_name, dtype=cfg.dtype)(0), cfg.steps))
            costs[key] = runs * (per_run.get(key) or 0.0)
    first = next((k for k, v in per_run.items() if v is not None), None)
    basis = ("nothing left to run" if first is None else
             f"a run of {first} timed: {per_run[first]:.3g} s") + untimed(per_run)
    return Plan("toy-heatmap", "grids", costs, basis, done=done)


def sweep_window_runs(cfg, first: bool) -> int:
    """The runs of a width's first window: the configured one for the first width, else the
    previous best cell +- (margin + 1) (`tinylora.lab.sweep.sweep_width`)."""
    if first:
        side_a = cfg.window_A[1] - cfg.window_A[0] + 1
        side_b = cfg.window_B[1] - cfg.window_B[0] + 1
        return side_a * side_b * cfg.seeds
    return (2 * (cfg.margin + 1) + 1) ** 2 * cfg.seeds


def sweep_plan(widths, cfg, done=(), backend_name=None) -> Plan:
    """`tinylora width-sweep`: one unit per width; each costs its first window's runs (a lower
    bound: a window grows while its best cell is near an edge) at its own timed rate."""
    costs, per_run = {}, {}
    for i, width in enumerate(widths):
        key = f"width{width}"
        if key not in done:
            per_run[width] = fits(lambda w=width: grid_run_seconds(lambda s: sweep.task_for(
                w, replace(cfg, steps=s), backend_name)(0), cfg.steps))
        costs[key] = sweep_window_runs(cfg, i == 0) * (per_run.get(width) or 0.0)
    timed_widths = sorted(w for w, v in per_run.items() if v is not None)
    basis = "; ".join(f"a run at n = {w} timed: {per_run[w]:.2g} s" for w in
                      dict.fromkeys(timed_widths[:1] + timed_widths[-1:]))
    basis = (basis or "nothing left to run") + untimed({f"n = {w}": v for w, v in per_run.items()})
    return Plan("width-sweep", "widths", costs, basis, done=done,
                at_least=True)


def balance_plan(cfgs, widths, out, backend_name=None) -> Plan:
    """`tinylora balance`: one unit per (setting, width). The first setting's search at the
    smallest width runs now (kept as that unit's part), timed with its evaluations; one batch of
    rate pairs is timed at each width with work left; a unit costs that many evaluations at its
    width's rate. (Resumed, the saved search's own time stands in for the first.)"""
    keys = {(cfg.name, w): f"{cfg.name}-width{w}" for cfg in cfgs for w in widths}
    done = [k for k in keys.values() if out.load_part(k) is not None]
    first, width = cfgs[0], widths[0]
    found, said = out.load_part(keys[(first.name, width)]), "the saved search"
    if found is None:
        out.save_part(keys[(first.name, width)], balance.solve_width(first, width, [],
                                                                     backend_name))
        found, said = out.load_part(keys[(first.name, width)]), "a search"
        done.append(keys[(first.name, width)])
    evaluations = max(1, found["evaluations"])
    todo = {w for (_, w), k in keys.items() if k not in done} | {width}
    per_eval = {w: fits(lambda w=w: _evaluation_seconds(first, w, backend_name))
                for w in sorted(todo)}
    scale = found["seconds"] / evaluations / per_eval[width]  # a batch's rate -> a search's
    costs = {k: evaluations * (per_eval.get(w) or 0.0) * scale for (_, w), k in keys.items()}
    basis = (f"{said} at n = {width} took {duration(found['seconds'])}, {evaluations} rate "
             f"pairs; a batch timed at each width"
             + untimed({f"n = {w}": v for w, v in per_eval.items()}))
    return Plan("balance", "root searches", costs, basis, done=done)


def _evaluation_seconds(cfg, width: int, backend_name=None) -> float:
    """Seconds per rate pair of one `balance.Evaluator` batch at `width` (every seed)."""
    evaluate = balance.Evaluator(cfg, width, backend_name)
    size = max(1, min(evaluate.chunk(), 16))
    points = [(1e-4 * (1 + i / size), 1e-2) for i in range(size)]
    evaluate(points[:1])  # the frozen parts, built once per width in a search, are not timed
    return timed(lambda: evaluate(points)) / size
