"""Many models at once: every (eta_A, eta_B) cell of a learning-rate grid, and every seed, in one
batched pass.

A stacked model (``LoRAMLP(..., stack=(S,))``) holds S independent copies of the LoRA factors
that share the frozen weights and the data. The optimizer gets the learning rates of A and of B as
arrays of shape (S, 1, 1), one per copy. Broadcasting does the rest: the loss has shape (S,), one
mean per copy, and each copy's gradient is exactly the one it would get alone, so a grid of
``cells x seeds`` runs trains like one model S times wider in the stack axis
(`tests/test_grid.py` checks it against training the cells one by one).

Learning rates live on a lattice of `PER_DECADE` points per decade, ``eta = 10^(k / 4)``: a cell
is named by its integer pair (kA, kB), so grids of different runs line up and can be extended.

Memory. NumPy makes a fresh array for every intermediate; for arrays of a few MB glibc returns
the memory to the OS when it is freed and page-faults it back in at the next step, which here
can cost more than the arithmetic. The `tinylora` command avoids that with
`tinylora.fast.allocator.keep_freed_memory` (call it yourself in a script or notebook if you like).

Diverged cells. A cell whose training loss stops being finite, or exceeds
`tinylora.diverge.DIVERGED` times its starting loss, has diverged: from then on its loss is
recorded as inf, and it is retired (`tinylora.train.retire`: its factors and its learning rate
set to 0, so the numbers of the other cells in the stack are never touched), and the run goes
on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from tinylora import backend
from tinylora.diverge import diverged, quiet_overflow
from tinylora.groups import loraplus_groups
from tinylora.layers import mse_forward
from tinylora.optim import make_optimizer
from tinylora.train import loss_and_grads, retire

PER_DECADE = 4
CHUNK_ELEMENTS = 2**20  # activations per chunk (S * N * width): 8 MB per array in float64, so
MIN_CHUNK = 16  # that it stays in cache; but at least 16 models share each frozen matmul


def eta(k: int, per_decade: int = PER_DECADE) -> float:
    """The learning rate at lattice point k: 10^(k / per_decade)."""
    return 10.0 ** (k / per_decade)


def lattice(lo: float, hi: float, per_decade: int = PER_DECADE) -> list[int]:
    """The lattice points k with lo <= eta(k) <= hi (inclusive, up to rounding)."""
    if not (0 < lo <= hi):
        raise ValueError(f"lo, hi: expected 0 < lo <= hi, got {lo}, {hi}")
    return list(range(math.ceil(per_decade * math.log10(lo) - 1e-9),
                      math.floor(per_decade * math.log10(hi) + 1e-9) + 1))


@dataclass
class GridTask:
    """What every cell trains on.

    build(stack) -> a fresh model with that stack (same frozen weights every time);
    adapter_init(seed) -> {adapter key: unstacked array}: the factors' starting values of a seed;
    x_train, y_train, x_test, y_test: the data (shared by every cell);
    optimizer: 'sgd' or 'adam'; steps: updates per cell; record_steps: steps t (0..steps) at
    which the losses are kept (the loss "at t" is that of the model after t updates);
    elements: activations per model (batch x widest layer), to size the chunks.
    """

    build: Callable
    adapter_init: Callable
    x_train: object
    y_train: object
    x_test: object
    y_test: object
    optimizer: str
    steps: int
    record_steps: tuple
    elements: int

    def __post_init__(self):
        bad = [t for t in self.record_steps if not 0 <= t <= self.steps]
        if bad:
            raise ValueError(f"record_steps: expected steps in [0, {self.steps}], got {bad}")


def _host_list(value) -> list:
    """A loss (0-d or shape (S,)) as a list of host floats, non-finite values as inf."""
    host = backend.finite_or_inf(value)
    return [host] if isinstance(host, float) else [float(v) for v in host]


class Job(NamedTuple):
    """One model of a batched pass: a cell's two learning rates and a seed."""

    eta_A: float
    eta_B: float
    seed: int


def train_chunk(task: GridTask, jobs: list, stacked: bool = True):
    """Train `jobs` = [Job(eta_A, eta_B, seed), ...] together. -> (train, test): one list per
    job of the losses at task.record_steps. ``stacked=False`` trains a single job the plain way
    (no stack axis, float learning rates): the reference the batched run must reproduce."""
    if not stacked and len(jobs) != 1:
        raise ValueError(f"jobs: unstacked training takes exactly one job, got {len(jobs)}")
    jobs = [Job(*j) for j in jobs]
    S = len(jobs)
    model = task.build((S,) if stacked else ())
    xp, params = model.xp, model.params
    inits = {seed: task.adapter_init(seed) for seed in {j.seed for j in jobs}}
    for key in model.adapter_keys():
        for i, job in enumerate(jobs):
            target = params[key][i] if stacked else params[key]
            target[...] = inits[job.seed][key]

    def rates(values):  # a float unstacked, else one rate per model, shaped (S, 1, 1)
        if not stacked:
            return float(values[0])
        return xp.asarray(values, dtype=params[model.adapter_keys()[0]].dtype).reshape(S, 1, 1)

    trainable = model.trainable_params()
    if not all(k.endswith((".A", ".B")) for k in trainable):
        raise ValueError(f"model: a grid trains LoRA factors only, got trainable {list(trainable)}")
    groups = loraplus_groups(trainable, lr=rates([j.eta_A for j in jobs]),
                             lr_B=rates([j.eta_B for j in jobs]))
    opt = make_optimizer(task.optimizer, trainable, groups=groups)
    record = set(task.record_steps)
    train, test = [[] for _ in jobs], [[] for _ in jobs]
    alive, start = [True] * S, None
    with quiet_overflow(xp):  # numpy warns on overflow in a diverging cell
        for t in range(task.steps + 1):
            value, grads = loss_and_grads(model, task.x_train, task.y_train)
            losses = _host_list(value)
            start = losses if start is None else start
            dead = [i for i in range(S) if alive[i] and diverged(losses[i], start[i])]
            if dead:
                retire(opt, grads, [i in dead for i in range(S)] if stacked else True)
                for i in dead:
                    alive[i] = False
            if t in record:
                test_losses = _test_losses(model, task)
                for i in range(S):
                    train[i].append(losses[i] if alive[i] else math.inf)
                    test[i].append(test_losses[i] if alive[i] else math.inf)
            if t < task.steps:
                opt.step(grads)
    return train, test


def _test_losses(model, task) -> list:
    out, _ = model.forward(task.x_test)
    value, _ = mse_forward(out, task.y_test, stack_ndim=len(model.stack))
    return _host_list(value)


def train_cells(task, cells: list, seeds, chunk: int | None = None, progress=None):
    """Every cell (eta_A, eta_B) with every seed, in chunks of `chunk` models per batched pass
    (default: as many as fit `CHUNK_ELEMENTS` activations, at least `MIN_CHUNK`).
    -> (train, test), each a nested list [cell][seed][record step] of host floats (inf for a
    diverged cell).

    `task` is a `GridTask` that every seed shares (the seeds then differ in the adapter's init
    only, and cells and seeds share the stack), or a function ``seed -> GridTask`` that gives
    each seed its own frozen model and data (each seed's cells are then batched together).
    """
    seeds = list(seeds)
    per_seed = not isinstance(task, GridTask)
    groups = [(task(s), [s]) for s in seeds] if per_seed else [(task, seeds)]
    results: dict = {}
    for group_task, group_seeds in groups:
        jobs = [Job(ea, eb, s) for ea, eb in cells for s in group_seeds]
        fit = CHUNK_ELEMENTS // max(1, group_task.elements)
        size = chunk or min(len(jobs), max(MIN_CHUNK, fit))
        for lo in range(0, len(jobs), size):
            tr, te = train_chunk(group_task, jobs[lo:lo + size])
            for job, a, b in zip(jobs[lo:lo + size], tr, te):
                results[job] = (a, b)
            if progress is not None:
                progress.update(len(tr))
    return ([[results[Job(ea, eb, s)][0] for s in seeds] for ea, eb in cells],
            [[results[Job(ea, eb, s)][1] for s in seeds] for ea, eb in cells])


def train_one_by_one(task, cells: list, seeds, progress=None):
    """The same as `train_cells`, one plain (unstacked) model at a time: the slow reference."""
    seeds = list(seeds)
    tasks = {s: (task if isinstance(task, GridTask) else task(s)) for s in seeds}
    train, test = [], []
    for ea, eb in cells:
        row_tr, row_te = [], []
        for s in seeds:
            (tr,), (te,) = train_chunk(tasks[s], [Job(ea, eb, s)], stacked=False)
            row_tr.append(tr)
            row_te.append(te)
            if progress is not None:
                progress.update(1)
        train.append(row_tr)
        test.append(row_te)
    return train, test
