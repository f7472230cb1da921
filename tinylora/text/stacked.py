"""Many fine-tunes of one frozen base in one pass: a stacked TinyLM.

Every run of a fine-tuning study at one width adapts the same frozen base, so S runs can train
as one model: ``TinyLM(..., stack=(S,))`` holds S sets of LoRA factors (S, 1, d_in, r) beside one
copy of the frozen weights, each copy reads its own batch (tokens (S, N, T)), and every frozen
product is one matrix product over the S N T rows of all copies at once. Each copy has its own
learning rates (arrays (S, 1, 1, 1) in the LoRA+ groups), its own Adam moments, and its own
divergence: a copy that diverges is retired (`tinylora.train.retire`: factors, moments and rates
set to 0) and recorded as inf from there on, and the others go on untouched.

A copy is exactly the run `tinylora.text.finetune.finetune_run` makes alone with the same
setting, lr and seed: the same LoRA init (`seed_factors`), the same batches (a `BatchSampler`
per seed), the same updates, the same validation windows. `tests/test_ladder_stacked.py` checks
the records against `finetune_run`'s, bit for bit on NumPy float64 (on CuPy, to tolerance: the
GPU's products may sum in another order for another number of rows).

    records = train_stack(config, jobs, data, base_config)    # one record per `Job`

On a GPU the pass costs about what one run costs until the copies fill the device (a TinyLM step
at d_model 128 to 2048 is bound by kernel launches, not arithmetic); on a CPU it costs about the
sum of the runs (the arithmetic is the same) and saves only the Python overhead.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np  # host-side: batches, per-copy rates and losses

from tinylora import backend, schedule
from tinylora.block import BLOCK_TARGETS, add_factors
from tinylora.diverge import diverged, quiet_overflow
from tinylora.groups import loraplus_groups
from tinylora.lora import LoRAConfig, lora_rng
from tinylora.optim import Adam
from tinylora.text.corpus import BatchSampler
from tinylora.text.pretrain import build_model, load_base
from tinylora.train import loss_fn, train_step

PROJECT_AFTER = 4  # steps timed before a pass decides whether it can finish by its deadline


class Job(NamedTuple):
    """One run of a stack: what it trains (all jobs of a stack share width, init and batch
    size: one model, one batch shape) and with which rates and seed."""

    width: int
    init: str  # "zero_B" (Init[1]) or "zero_A" (Init[2])
    lr_ratio: float  # lr_B / lr_A
    lr: float  # lr_A
    seed: int  # the LoRA init and the order of batches
    batch_size: int = 16  # windows of `context` characters per step


class OutOfTime(RuntimeError):
    """A pass would not finish before its deadline; nothing of it was saved."""


def job_lora(config, job: Job) -> LoRAConfig:
    """The LoRA of one run: rank and targets from `config`, the init from `job`."""
    return LoRAConfig(r=config.r, init=job.init, targets=tuple(config.targets))


def seed_factors(arch, lora: LoRAConfig, seed: int, dtype) -> dict:
    """The factors ``TinyLM(arch, lora, seed=seed)`` starts from, as host arrays, drawn alone:
    the same stream (`lora_rng`), the same order (block by block, `add_factors`), no base."""
    short = tuple(t for t in lora.pick_targets(BLOCK_TARGETS) if t != "tok_emb")
    rng, factors = lora_rng(seed), {}
    for i in range(arch.n_layer):
        add_factors(factors, rng, lora, arch.d_model, arch.d_ff, short, f"blocks.{i}.", np, dtype)
    return factors


def stacked_mean_loss(lm, windows, chunk: int = 32) -> np.ndarray:
    """`tinylora.text.pretrain.mean_loss` for each copy of a stack: (S,) host floats, inf where
    the loss is not finite (the same chunks and sums, so a copy's number is the run's own)."""
    forward, _ = loss_fn("cross_entropy")
    total = np.zeros(lm.stack)
    for i in range(0, len(windows), chunk):
        batch = lm.xp.asarray(windows[i:i + chunk])  # shared by every copy
        logits, _ = lm.forward(batch[:, :-1])  # [S, n, T, V]
        value, _ = forward(logits, batch[:, 1:], stack_ndim=1)
        total += backend.finite_or_inf(value) * len(batch)
    return total / len(windows)


def build_stack(config, jobs: list, base_config, cache=None, backend_name=None, load=True):
    """The stacked model over the cached base and its Adam with one rate per copy (`load`
    False: over the base's random weights, for timing a pass before the base exists)."""
    first = jobs[0]
    if any((j.width, j.init, j.batch_size) != (first.width, first.init, first.batch_size)
           for j in jobs):
        raise ValueError(f"jobs: expected one width, init and batch size per stack, got "
                         f"{sorted({(j.width, j.init, j.batch_size) for j in jobs})}")
    lora = job_lora(config, first)
    lm = build_model(base_config, backend_name, lora, trainable="lora", stack=(len(jobs),))
    if load:
        load_base(lm, base_config, cache)
    factors = {}
    for i, job in enumerate(jobs):
        if job.seed not in factors:
            factors[job.seed] = seed_factors(lm.config, lora, job.seed, base_config.dtype)
        for key, value in factors[job.seed].items():
            lm.params[key][i, 0] = lm.xp.asarray(value)
    shape = (len(jobs), 1, 1, 1)  # one rate per copy, against factors (S, 1, d_in, r)
    lr_A = np.array([float(j.lr) for j in jobs]).reshape(shape)
    lr_B = np.array([float(j.lr) * float(j.lr_ratio) for j in jobs]).reshape(shape)  # = times()
    params = lm.trainable_params()
    return lm, Adam(params, groups=loraplus_groups(params, lr=lr_A, lr_B=lr_B))


def train_stack(config, jobs: list, data, base_config, cache=None, backend_name=None,
                deadline: float | None = None, load: bool = True) -> list[dict]:
    """Train `jobs` (a list of `Job`) as one stacked model. -> one record per job, in
    `tinylora.text.finetune.finetune_run`'s form (plus ``batch_size``).

    `config` gives steps, eval_every, r, targets, warmup and decay (the schedule of every
    rate, `tinylora.schedule`); `data` the training ids (``data.train``) and the fixed
    validation windows (``data.val``); `base_config` the frozen base.
    `deadline`: a `time.monotonic()` value; after `PROJECT_AFTER` steps a pass that would end
    after it raises `OutOfTime` (then nothing of it is kept: a rerun redoes it whole).
    `load`: False trains over the base's random weights (`build_stack`; a timing).
    """
    jobs = [Job(*j) for j in jobs]
    S, start = len(jobs), time.monotonic()
    lm, opt = build_stack(config, jobs, base_config, cache, backend_name, load)
    sched = schedule.Schedule(opt, config.steps, config.warmup, config.decay)  # every copy's
    xp, context = lm.xp, base_config.context
    samplers = {s: BatchSampler(data.train, jobs[0].batch_size, context, seed=s)
                for s in dict.fromkeys(j.seed for j in jobs)}
    steps, curves = [], [[] for _ in jobs]
    retired, diverged_at = np.zeros(S, dtype=bool), [None] * S
    val0 = None
    with quiet_overflow(xp):
        for step in range(config.steps + 1):
            if step % config.eval_every == 0 or step == config.steps:
                steps.append(step)
                vals = stacked_mean_loss(lm, data.val)
                val0 = vals.copy() if val0 is None else val0
                for i in range(S):
                    if diverged_at[i] is None and diverged(vals[i], val0[i]):  # tinylora.diverge
                        diverged_at[i], retired[i] = step, True
                    curves[i].append(math.inf if diverged_at[i] is not None else float(vals[i]))
            if step == config.steps or retired.all():
                continue  # after every copy diverged, only inf is recorded at the evaluations
            draws = {s: sampler.sample() for s, sampler in samplers.items()}  # one per seed
            batch = xp.asarray(np.stack([draws[j.seed] for j in jobs]))  # [S, N, T + 1]
            sched.apply(step)  # each copy's rates times one factor: the ratios are kept
            _, gone = train_step(lm, opt, batch[..., :-1], batch[..., 1:], start=val0,
                                 loss="cross_entropy", retired=retired)
            for i in np.flatnonzero(gone):
                diverged_at[i] = step
            if deadline is not None and step + 1 == PROJECT_AFTER:
                per_step = (time.monotonic() - start) / PROJECT_AFTER
                if time.monotonic() + per_step * (config.steps - step) > deadline:
                    raise OutOfTime(f"a pass of {S} runs at d_model {jobs[0].width} needs "
                                    f"about {per_step * config.steps:.0f} s more")
    seconds = round((time.monotonic() - start) / S, 2)  # each run's share of the pass
    return [{"width": j.width, "init": j.init, "lr_ratio": float(j.lr_ratio), "r": config.r,
             "rule": "lora", "alpha": None, "lr": float(j.lr), "seed": j.seed,
             "batch_size": j.batch_size, "eval_steps": steps, "val_loss": curves[i],
             "final_loss": curves[i][-1], "diverged": diverged_at[i] is not None,
             "diverged_at": diverged_at[i], "seconds": seconds} for i, j in enumerate(jobs)]
