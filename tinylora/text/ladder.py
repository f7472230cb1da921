"""The fine-tuning ladder: does LoRA+ help on real text as d_model grows? The protocol.

The protocol is fixed before the runs; `LadderConfig` holds its numbers and `summary.json`
repeats them. Per *chain* (a width, an init, a number of tokens per batch):

1. **Base.** A TinyLM pretrained on Shakespeare with one width-consistent recipe (muP's Adam
   rates, the same token budget at every width: `tinylora.text.ladder_bases`), then frozen.
2. **Tune, on the tuning seeds only.** LoRA r = 8 on q, k, v, o, fc1 and fc2 of both blocks,
   Adam with the LoRA+ groups (B at lr * lr_ratio), `steps` constant-rate steps on Milton's
   *Areopagitica*. For every lr_ratio (1 to 64 in octaves), lr_A on a quarter-octave lattice
   ``lr0 * 2^(k / 4)``, starting at the guess `start` makes and grown a point at a time past
   whichever end holds the lowest tuning-seed mean, until that lowest point is interior (at most
   `max_points` points). While the best lr_ratio (tuning seeds) is an end of the ratio grid, the
   grid grows by an octave there (at most `max_extra_lr_ratios` times).
3. **Evaluate, on seeds the tuning never saw**: every lr_ratio at each lattice point that a
   bootstrap of the tuning seeds can keep (the lowest of each tuning seed alone and of their
   mean: `tinylora.text.ladder_report.choice_set`), so that the report's bootstrap can redo the
   learning-rate choice in every draw.

Every round of a chain (all the new lattice points of all ratios, or all the evaluation runs) is
one batch of jobs, trained `max_stack` at a time as stacked models over the one frozen base
(`tinylora.text.stacked`). Each finished run is a part of ``out`` (`tinylora.run.records
.ResultsDir`): a rerun skips it, so a stopped ladder resumes run by run, and `time_limit` stops
it cleanly between passes (a pass that would not finish in time is not started).

The control chain: the same protocol at `control_width` with `control_batch_size` windows per
step (64 tokens instead of 16 x 64 = 1024), Init[1].
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from tinylora.block import BLOCK_TARGETS
from tinylora.run.progress import Plan
from tinylora.run.records import ResultsDir
from tinylora.text.corpus import FINETUNE_TEXT
from tinylora.text.finetune import Data
from tinylora.text.ladder_bases import MUP_WIDTH, head_scale, ladder_base_config
from tinylora.text.ladder_report import (
    chains_of,
    choice_set,
    choose,
    lattice_lr,
    lowest,
    mean,
)
from tinylora.text.pretrain import build_model, ensure_base, load_base, mean_loss
from tinylora.text.stacked import Job, OutOfTime, train_stack


@dataclass(frozen=True)
class LadderConfig:
    """The ladder's protocol (see the module docstring); `ladder_config` checks and fills it."""

    widths: tuple = (128, 256)
    inits: tuple = ("zero_B",)  # Init[1] (PEFT's default); "zero_A" is Init[2]
    r: int = 8
    targets: tuple = field(default=BLOCK_TARGETS)
    steps: int = 300
    warmup: int = 0
    decay: str = "cosine"  # every rate from its value to 0 over the run (`tinylora.schedule`)
    batch_size: int = 16  # windows of `context` characters: 1024 tokens per step
    eval_every: int = 25
    n_eval: int = 32  # fixed validation windows of Milton's held-out tail
    lr_ratios: tuple = (1.0, 2.0, 4.0, 8.0, 16.0)  # the CPU's cut; the GPU runs 1 .. 64
    max_extra_lr_ratios: int = 1
    lr0: float = 4e-3  # lattice point k = 0 (the pilot's better rate at ratio 1)
    per_octave: int = 4  # lattice points per octave of lr_A
    start_k: int = 3  # where ratio 1's lattice starts: lr0 * 2^(3/4), 6.7e-3 (see `start`)
    ratio_slope: float = 0.6  # the start guess: lr_A ~ lr_ratio^-0.6 (see `start`)
    width_slope: float = 0.0  # the start guess: lr_A ~ (d_model / mup_width)^-width_slope
    max_points: int = 12  # per lattice (8 in the first pass of the CPU run: see its README)
    tune_seeds: tuple = (0, 1)
    eval_seeds: tuple = (2, 3, 4, 5)  # the CPU's cut; the GPU runs 2 .. 9
    control_width: int = 128  # 0: no control chain
    control_batch_size: int = 1  # the control's windows per step (64 tokens)
    base_steps: int | None = None  # pretraining steps; None: the recipe's (600)
    base_lr: float | None = None  # pretraining lr at mup_width; None: the recipe's (3e-3)
    mup_width: int = MUP_WIDTH
    context: int = 64  # of the bases; set by `ladder_config`
    text: str = FINETUNE_TEXT
    fast: bool = False


FAST = {"widths": (32, 64), "steps": 6, "batch_size": 4, "eval_every": 3, "n_eval": 4,
        "lr_ratios": (1.0, 4.0, 16.0), "max_extra_lr_ratios": 1, "lr0": 1e-2, "max_points": 4,
        "eval_seeds": (2, 3), "control_width": 32, "mup_width": 32, "start_k": 0}


def ladder_config(fast: bool = False, **overrides) -> LadderConfig:
    """The default ladder, or with `fast` a tiny one (seconds). None overrides are ignored."""
    base = dict(FAST) if fast else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    for k in ("widths", "inits", "lr_ratios", "tune_seeds", "eval_seeds"):
        base[k] = tuple(base.get(k, getattr(LadderConfig, k)))
    base["lr_ratios"] = tuple(sorted(float(x) for x in base["lr_ratios"]))
    if 1.0 not in base["lr_ratios"] or len(base["lr_ratios"]) < 3:
        raise ValueError(f"lr_ratios: expected at least 3 ratios including 1 (plain LoRA), got "
                         f"{list(base['lr_ratios'])}")
    if not base["inits"] or not set(base["inits"]) <= {"zero_B", "zero_A"}:
        raise ValueError(f"inits: expected some of ['zero_B', 'zero_A'], got "
                         f"{list(base['inits'])}")
    if len(base["tune_seeds"]) != 2 or len(base["eval_seeds"]) < 2 \
            or set(base["tune_seeds"]) & set(base["eval_seeds"]):
        raise ValueError(f"tune_seeds, eval_seeds: expected 2 tuning seeds and at least 2 other "
                         f"evaluation seeds, got {list(base['tune_seeds'])} and "
                         f"{list(base['eval_seeds'])}")
    config = LadderConfig(fast=fast, **base)
    context = base_config(config, config.widths[0]).context
    return LadderConfig(**{**asdict(config), "context": context})


def base_config(config: LadderConfig, width: int):
    """The frozen base of `width` (`tinylora.text.ladder_bases`)."""
    return ladder_base_config(width, config.fast, steps=config.base_steps, lr=config.base_lr,
                              mup_width=config.mup_width)


def chains(config: LadderConfig) -> list[tuple]:
    """Every chain (width, init, batch_size), in the order they run (`chains_of`)."""
    return chains_of(asdict(config))


def start(config: LadderConfig, width: int, lr_ratio: float) -> int:
    """The first lattice point tried: lattice point `start_k` at ratio 1, lower by
    lr_ratio^-ratio_slope (and (width / mup_width)^-width_slope) at the others. The recorded
    study's kept lr_A fell like lr_ratio^-0.5 to -0.8 (`docs/results/finetune/summary.md`),
    the pilot's like about ^-0.6 from ratio 1 to 8; the first runs of the CPU ladder, started at
    k = 0, fell all the way to their lattices' top (the cosine schedule wants larger rates than
    the pilot's constant ones), hence k = 3. The lattice grows from the guess whatever it is,
    so a poor guess costs runs, never results."""
    octaves = config.ratio_slope * math.log2(lr_ratio) + config.width_slope * math.log2(
        width / config.mup_width)
    return config.start_k - round(config.per_octave * octaves)


def config_key(config: LadderConfig) -> dict:
    """What a run's part is stored with: everything that changes a run's numbers (not which
    runs the protocol makes: widths, ratios, seeds, the lattice's start and budget)."""
    keep = asdict(config)
    for k in ("widths", "inits", "lr_ratios", "max_extra_lr_ratios", "lr0", "per_octave",
              "start_k", "ratio_slope", "width_slope", "max_points", "tune_seeds", "eval_seeds",
              "control_width", "control_batch_size", "batch_size"):
        keep.pop(k)  # a run's own batch size is part of its key
    return keep


def run_slot(chain: tuple, i: int) -> str:
    """The plan's unit for the `i`-th run of `chain` (width, init, batch size) to finish."""
    return f"d{chain[0]}_{chain[1]}_n{chain[2]}_run{i}"


def run_key(job: Job) -> str:
    return (f"run_d{job.width}_{job.init}_n{job.batch_size}_lr_ratio{float(job.lr_ratio)!r}"
            f"_lr{float(job.lr)!r}_seed{job.seed}")


class Runner:
    """Runs (or reads back) the ladder's runs: `run(jobs)` trains the missing ones in stacks.
    The bar is `plan`'s (`tinylora.text.estimate.ladder_plan`; none: an empty one): its units
    are the bases and each chain's runs counted ``run_slot(chain, i)`` in the order they finish,
    the saved ones first (`saved`: how many per chain)."""

    def __init__(self, config: LadderConfig, out, cache=None, backend_name=None,
                 max_stack: int = 16, deadline: float | None = None, show_progress=True,
                 plan: Plan | None = None):
        self.config, self.cache, self.backend_name = config, cache, backend_name
        self.parts = ResultsDir(out, config_key(config), strict=True)
        self.data, self.max_stack, self.deadline = Data(config), max_stack, deadline
        self.records: dict = {}
        self.saved = Counter((r["width"], r["init"], r["batch_size"]) for r in self.saved_runs())
        self.counted = Counter(self.saved)
        self.bar = (plan or Plan("finetune-ladder", "runs", {}, "")).bar(show_progress)

    def count(self, job: Job) -> None:
        """One more run of `job`'s chain finished: its next unit on the bar. A lattice that
        grows past the plan's count adds a unit at the chain's cost: the bar's total grows."""
        chain = (job.width, job.init, job.batch_size)
        key, self.counted[chain] = run_slot(chain, self.counted[chain]), self.counted[chain] + 1
        self.bar.add(key, self.bar.plan.costs.get(run_slot(chain, 0), 0.0))
        self.bar.done(key)

    def record(self, job: Job):
        if job not in self.records:
            self.records[job] = self.parts.load_part(run_key(job))
        return self.records[job]

    def run(self, jobs: list) -> None:
        """Train every job without a saved record, `max_stack` per stacked pass."""
        todo = [j for j in dict.fromkeys(jobs) if self.record(j) is None]
        for lo in range(0, len(todo), self.max_stack):
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise OutOfTime("the time limit was reached between passes")
            chunk = todo[lo:lo + self.max_stack]
            width = chunk[0].width
            for job, rec in zip(chunk, train_stack(self.config, chunk, self.data,
                                                   base_config(self.config, width), self.cache,
                                                   self.backend_name, self.deadline)):
                self.parts.save_part(run_key(job), rec)
                self.records[job] = rec
                self.count(job)

    def base(self, width: int) -> dict:
        """Pretrain (or reuse) the base of `width`; its losses and the head's scale."""
        def compute():
            pcfg = base_config(self.config, width)
            pre = ensure_base(pcfg, self.cache, backend_name=self.backend_name,
                              show_progress=False)
            lm = build_model(pcfg, self.backend_name, trainable="all")
            load_base(lm, pcfg, self.cache)
            return {"width": width, "pretrain_val_loss": pre["val_loss"],
                    "loss_finetune_text": mean_loss(lm, self.data.val),
                    "head_scale": head_scale(lm.params["head.W"]),
                    "pretrain_seconds": pre.get("seconds"), "matrix_lr": pcfg.matrix_lr}
        base = self.parts.cached(f"base_d{width}", compute)
        self.bar.done(f"base_d{width}")
        return base

    def saved_runs(self) -> list[dict]:
        """Every run saved in ``out`` with this configuration, in a fixed order."""
        found = (self.parts.load_part(p.stem) for p in sorted((self.parts / "parts").glob(
            "run_*.json")))
        return [r for r in found if r is not None]

    # ----------------------------------------------------------------------------------------
    # One chain: tuning rounds, then the evaluation runs

    def job(self, chain: tuple, lr_ratio: float, k: int, seed: int) -> Job:
        width, init, batch_size = chain
        cfg = self.config
        return Job(width, init, lr_ratio, lattice_lr(cfg.lr0, k, cfg.per_octave), seed,
                   batch_size)

    def table(self, chain: tuple, lr_ratio: float, ks, seeds) -> dict:
        """{k: {seed: final loss}} of the saved runs of `chain` at `lr_ratio`, points `ks`."""
        out: dict = {}
        for k in ks:
            for s in seeds:
                rec = self.record(self.job(chain, lr_ratio, k, s))
                if rec is not None:
                    out.setdefault(k, {})[s] = rec["final_loss"]
        return out

    def chain(self, chain: tuple) -> dict:
        """Run one chain's protocol (the module docstring). -> {lr_ratio: lattice points}."""
        cfg, seeds = self.config, list(self.config.tune_seeds)
        new = {x: {start(cfg, chain[0], x) + d for d in (-1, 0, 1)} for x in cfg.lr_ratios}
        lattice: dict = {}
        extra = 0
        while new:
            for x, ks in new.items():
                lattice.setdefault(x, set()).update(ks)
            self.run([self.job(chain, x, k, s) for x, ks in new.items() for k in sorted(ks)
                      for s in seeds])
            table = {x: self.table(chain, x, ks, seeds) for x, ks in lattice.items()}
            kept = {x: choose(points, seeds) for x, points in table.items()}
            new = {x: {k - 1 if k - 1 not in table[x] else k + 1} for x, k in kept.items()
                   if not (k - 1 in table[x] and k + 1 in table[x])
                   and len(table[x]) < cfg.max_points}  # grow past the end holding the lowest
            best = lowest({x: mean(table[x][k][s] for s in seeds) for x, k in kept.items()})
            if not new and extra < cfg.max_extra_lr_ratios and best in (min(kept), max(kept)):
                grown = best * 2.0 if best == max(kept) else best / 2.0  # an octave past it
                k0 = kept[best] - round(cfg.per_octave * cfg.ratio_slope * math.log2(grown / best))
                new, extra = {grown: {k0 - 1, k0, k0 + 1}}, extra + 1
        self.run([self.job(chain, x, k, s) for x in sorted(lattice)
                  for k in choice_set(table[x], seeds) for s in cfg.eval_seeds])
        return lattice


def run_ladder(config: LadderConfig, out, cache=None, backend_name=None, max_stack: int = 16,
               time_limit: float | None = None, show_progress=True, plan=None) -> dict:
    """Run (or resume) the ladder, its bar `plan`'s (`Runner`). -> records {"config", "bases",
    "runs", "stopped"}: every saved run of the ladder's chains (finished or not), and why it
    stopped early (None if not)."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    runner = Runner(config, out, cache, backend_name, max_stack, deadline, show_progress, plan)
    stopped, bases = None, {}
    try:
        for width in dict.fromkeys(c[0] for c in chains(config)):
            bases[str(width)] = runner.base(width)
        for chain in chains(config):
            runner.chain(chain)
    except OutOfTime as err:
        stopped = f"stopped at the time limit ({err}); the same command resumes"
    runner.bar.close()
    wanted = set(chains(config))
    runs = [r for r in runner.saved_runs() if (r["width"], r["init"], r["batch_size"]) in wanted]
    return {"config": asdict(config), "bases": bases, "runs": runs, "stopped": stopped}
