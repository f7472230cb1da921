"""`tinylora finetune`: the study's protocol (tune on some seeds, report on others), resumable,
in parallel, and the command.

The study is a list of *chains*, each a sequence of runs that depends only on its own results:

    Chain("lr_ratios", width, init)  each lr_ratio in turn: tune lr_A on the tuning seeds
                              (`tinylora.text.tuning`: a half-octave lattice grown until its
                              optimum is interior, starting where the previous optimum
                              predicts); grow the lr_ratio grid by octaves while its best
                              (tuning seeds) is at an end (`tuning.grow_at`); then run every
                              lr_ratio at its tuned lr on every evaluation seed
    Chain("baselines", width)        the same for full fine-tuning and for LoRA at each rank
                              with scale alpha / r and rsLoRA's alpha / sqrt(r)

The tuning reads only the tuning seeds' runs: the lr it keeps (and so every evaluation run)
cannot depend on an evaluation seed. Each run is a part of ``out`` (`tinylora.run.records
.ResultsDir`), saved when it finishes, so chains resume run by run, and ``jobs > 1`` runs
chains in separate processes (each writes only its own parts; the largest chains start first).
"""

from __future__ import annotations

import math
import shutil
import signal
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import tinylora.fast
from tinylora import schedule
from tinylora.run.options import (
    ListOf,
    non_negative_int,
    options_from_args,
    out_folder,
    positive_float,
    positive_int,
)
from tinylora.run.records import ResultsDir, write_json, write_text
from tinylora.text import estimate, plots, tuning
from tinylora.text.finetune import (
    DEFAULT_WIDTHS,
    Data,
    FinetuneConfig,
    Setting,
    base_record,
    finetune_config,
    finetune_run,
)
from tinylora.text.report import summarize
from tinylora.text.tables import markdown, print_table

# Where the baselines' lattices start, in lattice steps from lr0 (a first guess: the growth
# brackets the optimum whatever the start; a good start only saves runs).
FULL_START = -4  # every base array: Adam's rates are smaller than for the factors


def rank_settings(config: FinetuneConfig, width: int) -> list[Setting]:
    """The rank baseline: plain LoRA (Init[1], lr_ratio 1) at each rank with scale alpha / r
    and with rsLoRA's alpha / sqrt(r), alpha chosen so both give scale 1 at the study's rank
    (so that rank's runs are the lr_ratio-1 runs of the main study, not repeated here)."""
    return [s for r in config.ranks if r != config.r
            for s in (Setting(width, "zero_B", 1.0, r, "lora", float(config.r)),
                      Setting(width, "zero_B", 1.0, r, "rslora", math.sqrt(config.r)))]


class Chain(NamedTuple):
    """A sequence of runs that depends only on its own results: the lr_ratios of one (width,
    init), or the baselines at one width (init None)."""

    kind: str  # "lr_ratios" or "baselines"
    width: int
    init: str | None = None


def chains(config: FinetuneConfig) -> list[Chain]:
    """Every chain of the study, the most expensive first."""
    main = [Chain("lr_ratios", w, init) for w in config.widths for init in config.inits]
    if config.baselines:
        main.append(Chain("baselines", config.baseline_width or config.widths[0]))
    return sorted(main, key=lambda c: -c.width)


class Runner:
    """Runs (or reads back) single runs of one study: `run(setting, lr, seed)` -> record."""

    def __init__(self, config: FinetuneConfig, out, cache=None, backend_name=None):
        self.config, self.cache, self.backend_name = config, cache, backend_name
        self.parts = ResultsDir(out, config_key(config), strict=True)
        self.data, self.bar, self.runs = Data(config), None, []  # bar: told of every run

    def run(self, setting: Setting, lr: float, seed: int) -> dict:
        key = f"run_{setting.key()}_lr{float(lr)!r}_seed{seed}"
        sample = seed == self.config.eval_seeds[0]
        record = self.parts.cached(key, lambda: finetune_run(
            self.config, setting, lr, seed, self.data, self.cache, self.backend_name, sample))
        self.runs.append(record)
        if self.bar is not None:
            self.bar.update(1)
        return record

    def tune(self, setting: Setting, start: int) -> tuning.Tuned:
        """The lattice for `setting`, scored on the tuning seeds only."""
        cfg = self.config

        def objective(k):
            lr = tuning.lattice_lr(cfg.lr0, k)
            losses = [self.run(setting, lr, s)["final_loss"] for s in cfg.tune_seeds]
            return sum(losses) / len(losses)

        return tuning.tune(objective, start, cfg.max_points)

    def evaluate(self, setting: Setting, tuned: tuning.Tuned) -> None:
        for seed in self.config.eval_seeds:
            self.run(setting, tuned.lr(self.config.lr0), seed)

    def chain(self, chain: Chain) -> list[dict]:
        """Run one chain (see the module docstring). -> its run records."""
        cfg, width, init = self.config, chain.width, chain.init
        if chain.kind == "lr_ratios":
            found, prev = {}, None
            for lr_ratio in cfg.lr_ratios:
                start = 0 if prev is None else tuning.next_start(found[prev].best, prev,
                                                                 lr_ratio)
                found[lr_ratio] = self.tune(Setting(width, init, lr_ratio, cfg.r), start)
                prev = lr_ratio
            for _ in range(cfg.max_extra_lr_ratios):
                end = tuning.grow_at(found)
                if end is None:
                    break
                lr_ratio = end * 2.0 if end == max(found) else end / 2.0
                start = tuning.next_start(found[end].best, end, lr_ratio)
                found[lr_ratio] = self.tune(Setting(width, init, lr_ratio, cfg.r), start)
            found = [(Setting(width, init, lr_ratio, cfg.r), t) for lr_ratio, t in found.items()]
        else:
            found = [(Setting.full(width), self.tune(Setting.full(width), FULL_START))]
            found += [(s, self.tune(s, 0)) for s in rank_settings(cfg, width)]
        for setting, tuned in found:
            self.evaluate(setting, tuned)
        return self.runs


def config_key(config: FinetuneConfig) -> dict:
    """What a part is stored with: everything that changes a run's numbers."""
    keep = asdict(config)
    for k in ("widths", "inits", "lr_ratios", "baselines", "baseline_width", "ranks",
              "max_points", "max_extra_lr_ratios"):
        keep.pop(k)  # which runs the study makes, not what one run computes
    return keep


def _start_worker(fast: bool) -> None:
    """A worker ignores Ctrl-C (its parent stops it) and runs its parent's implementations."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if fast:  # a spawned worker starts with the reference, as after `import tinylora`
        tinylora.fast.enable()


def _chain_in_process(job) -> tuple:
    """One chain in a worker process: (config, chain, out, cache, backend_name) -> (the chain,
    its runs)."""
    config, chain, out, cache, backend_name = job
    return chain, Runner(config, out, cache, backend_name).chain(chain)


def run_study(config: FinetuneConfig, out, cache=None, backend_name=None, show_progress=True,
              restart=False, jobs: int = 1) -> dict:
    """Run (or resume) the whole study. -> records (also written to ``out/records.json``).

    Parts of a study whose runs compute differently (another number of steps, other seeds'
    data, ...) are refused, naming the difference, unless `restart`, which discards them.
    """
    if restart:
        shutil.rmtree(Path(out) / "parts", ignore_errors=True)
    todo, runner = chains(config), Runner(config, out, cache, backend_name)
    plan = estimate.finetune_plan(config, todo, cache, backend_name,
                                  len(list(runner.parts.path.glob("parts/run_*.json"))))
    plan.announce()
    progress, bases = plan.bar(show_progress), {}
    for w in sorted({c.width for c in todo}):  # a base is pretrained here when it is missing
        bases[str(w)] = runner.parts.cached(f"base_d{w}", lambda w=w: base_record(
            config, w, runner.data, cache, backend_name, False))
        progress.done(f"base_d{w}")
    if jobs == 1:
        for chain in todo:
            key = estimate.chain_key(chain)
            runner.bar = progress.part(key, estimate.chain_runs(config, chain))
            runner.chain(chain)
            progress.done(key)
        runs = runner.runs
    else:
        runs, pool = [], get_context("spawn").Pool(jobs, _start_worker,
                                                    (tinylora.fast.is_enabled(),))
        try:
            done = pool.imap_unordered(_chain_in_process,
                                       [(config, c, out, cache, backend_name) for c in todo])
            for chain, chain_runs in done:
                progress.done(estimate.chain_key(chain))
                runs += chain_runs
        finally:  # on Ctrl-C or an error too: stop the workers (their finished runs are saved)
            pool.terminate()
            pool.join()
    progress.close()
    unique = {(r["width"], r["init"], r["lr_ratio"], r["r"], r["rule"], r["alpha"], r["lr"],
               r["seed"]): r for r in runs}  # a run read twice (a tuning revisit) counts once
    records = {"config": asdict(config), "bases": bases, "runs": list(unique.values())}
    write_json(Path(out) / "records.json", records)
    return records


@dataclass(frozen=True)
class FinetuneOptions:
    """The options of `tinylora finetune` (`add_arguments` is the CLI's definition); None: the
    study's default (`FinetuneConfig`, or `FAST` with fast)."""

    widths: tuple | None = None  # d_model values
    init: str | None = None  # "zero_B" (Init[1]), "zero_A" (Init[2]) or None / "both"
    lr_ratios: tuple | None = None  # lr_B / lr_A values; must contain 1 and 16
    tune_seeds: tuple | None = None  # seeds that choose the rates
    eval_seeds: tuple | None = None  # seeds every reported number comes from
    ranks: tuple | None = None  # ranks of the rank baseline
    steps: int | None = None  # steps per run
    lr0: float | None = None  # the lattice's centre
    no_baselines: bool = False  # skip full fine-tuning and the rank baseline
    jobs: int = 1  # processes running chains at once
    warmup: int | None = None  # warm-up steps
    decay: str | None = None  # "constant", "cosine" or "linear" after the warm-up
    clip: float | None = None  # max global gradient norm
    pretrain_steps: int | None = None  # which cached bases (pretrained with this many steps)
    cache: str | None = None  # folder of saved bases
    out: str = "finetune-out"  # folder for records, summary, figures
    fast: bool = False  # a tiny study (seconds)
    restart: bool = False  # discard the parts in out
    backend: str | None = None  # "numpy" or "cupy"; None: the default backend
    no_progress: bool = False  # no progress bars


def add_arguments(parser) -> None:
    def many(flag, kind, help_text):
        parser.add_argument(flag, action=ListOf, kind=kind, default=None, help=help_text)

    many("--widths", positive_int, f"d_model values ({','.join(map(str, DEFAULT_WIDTHS))})")
    parser.add_argument("--init", choices=["zero_B", "zero_A", "both"], default=None,
                        help="zero_B (Init[1]), zero_A (Init[2]) or both (the default)")
    many("--lr-ratios", positive_float, "lr_B / lr_A values, with 1 and 16 (1,2,4,8,16,32,64)")
    many("--tune-seeds", non_negative_int, "seeds that choose the rates (0,1)")
    many("--eval-seeds", non_negative_int, "seeds every reported number comes from (2,3,4,5)")
    many("--ranks", positive_int, "ranks of the rank baseline (1,2,4,8,16)")
    parser.add_argument("--steps", type=positive_int, help="steps per run (default 120)")
    parser.add_argument("--lr0", type=positive_float, help="lattice centre (3e-3)")
    parser.add_argument("--no-baselines", action="store_true", help="no full FT, no rank sweep")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="processes running (width, init) chains at once (1); with as many "
                             "jobs as cores, set OPENBLAS_NUM_THREADS=1")
    parser.add_argument("--warmup", type=non_negative_int, help="warm-up steps (0)")
    parser.add_argument("--decay", choices=schedule.DECAYS, help="after the warm-up (constant)")
    parser.add_argument("--clip", type=positive_float, help="max gradient norm (none)")
    parser.add_argument("--pretrain-steps", type=positive_int, default=None,
                        help="which cached bases to use (pretrained with this many steps)")
    parser.add_argument("--cache", default=None, help="folder of saved bases (tinylora pretrain)")
    parser.add_argument("--out", type=out_folder, default="finetune-out",
                        help="folder for records, summary, figures")
    parser.add_argument("--fast", action="store_true", help="a tiny study (seconds)")
    parser.add_argument("--restart", action="store_true", help="discard the parts in --out")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args) -> int:
    result = execute(options_from_args(FinetuneOptions, args))
    print_table(result["records"], result["summary"], result["details"])
    print(f"wrote {result['out'] / 'records.json'}, summary.json, summary.md, "
          + ", ".join(Path(f).name for f in result["figures"]))
    return 0


def execute(options: FinetuneOptions) -> dict:
    """Run (or resume) the study, write every output.
    -> {"records", "summary", "details", "figures", "out"}."""
    config = finetune_config(
        options.fast, widths=options.widths, steps=options.steps,
        inits=None if options.init in (None, "both") else (options.init,),
        lr_ratios=options.lr_ratios, lr0=options.lr0, tune_seeds=options.tune_seeds,
        eval_seeds=options.eval_seeds, ranks=options.ranks,
        baselines=False if options.no_baselines else None,
        pretrain_steps=options.pretrain_steps, warmup=options.warmup, decay=options.decay,
        clip=options.clip)
    records = run_study(config, options.out, options.cache, options.backend,
                        not options.no_progress, options.restart, jobs=options.jobs)
    summary, details = summarize(records)
    out = Path(options.out)
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", markdown(records, summary, details))
    figures = plots.finetune_figures(records, summary, details, out)
    return {"records": records, "summary": summary, "details": details, "figures": figures,
            "out": out}
