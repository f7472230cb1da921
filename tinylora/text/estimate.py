"""How long `tinylora pretrain` and `tinylora finetune` will take here, said before they start.

The calibration is their own work, shortened: at each width, the model a unit trains takes a
few training steps and one evaluation of the validation windows, timed (random weights: the
time does not depend on their values). A unit's estimate is its steps and evaluations at those
rates (`tinylora.run.progress.Plan`):

    pretrain   a base per width: `steps` AdamW steps and an evaluation every steps / 10
    finetune   the bases it must pretrain first, then a chain of runs per (width, init) and one
               of baselines; a run is `steps` Adam steps and an evaluation every `eval_every`.
               A chain's runs are counted at their fewest (every lattice bracketed by its first
               three points); the tuning adds points until each optimum is bracketed, and the
               bar grows with them.
    finetune-ladder  the bases to pretrain, then each chain's runs at their fewest (the same
               count: every ratio's lattice at its three starting points on the tuning seeds, one
               kept point on the evaluation seeds); a run is its share of a stacked pass: a pass
               of a few runs at each (width, batch size) with runs left, timed for a tenth of the
               steps (the base's random weights: the time does not depend on them).
"""

from __future__ import annotations

from dataclasses import replace

from tinylora.lora import LoRAConfig
from tinylora.optim import Adam, AdamW
from tinylora.run.progress import Plan, timed
from tinylora.text import ladder
from tinylora.text.corpus import (
    BatchSampler,
    eval_windows,
    load_text,
    shipped_tokenizer,
    train_val_split,
)
from tinylora.text.pretrain import base_exists, build_model, mean_loss, pretrain_config
from tinylora.text.stacked import Job, train_stack
from tinylora.train import train_step

TIMED_STACK = 4  # runs in the timed pass of the ladder (at most --max-stack)
TIMED_STEPS = 3  # after two untimed ones; the median is kept (a busy machine's outlier is not)


def rates(lm, opt, ids, batch_size: int, context: int, windows) -> tuple[float, float]:
    """(seconds per training step, seconds per evaluation) of `lm` here."""
    sampler = BatchSampler(ids, batch_size, context, seed=0)

    def step():
        batch = lm.xp.asarray(sampler.sample())
        train_step(lm, opt, batch[:, :-1], batch[:, 1:], loss="cross_entropy")

    step(), step()  # the first steps allocate the optimizer's state and warm the caches
    times = sorted(timed(step) for _ in range(TIMED_STEPS))
    mean_loss(lm, windows)
    return times[TIMED_STEPS // 2], timed(lambda: mean_loss(lm, windows))  # the median step


def pretrain_rates(config, backend_name=None) -> tuple[float, float]:
    """(step, evaluation) seconds of the base `config` describes, here."""
    ids, val = train_val_split(shipped_tokenizer().encode(load_text(config.text)))
    lm = build_model(config, backend_name, LoRAConfig(targets=()), trainable="all")
    opt = AdamW(lm.trainable_params(), lr=config.lr, weight_decay=config.weight_decay)
    return rates(lm, opt, ids, config.batch_size, config.context,
                 eval_windows(val, config.context, config.n_eval))


def pretrain_seconds(config, backend_name=None) -> float:
    """The estimated seconds of pretraining the base `config` describes."""
    step, evaluation = pretrain_rates(config, backend_name)
    evaluations = len(range(0, config.steps, max(1, config.steps // 10))) + 1
    return config.steps * step + evaluations * evaluation


def pretrain_plan(configs, cache=None, backend_name=None, force=False) -> Plan:
    """`tinylora pretrain`: one unit per base (key: its stem); a cached one is done."""
    done = [] if force else [c.stem for c in configs if base_exists(c, cache)]
    costs = {c.stem: 0.0 if c.stem in done else pretrain_seconds(c, backend_name)
             for c in configs}
    return Plan("pretrain", "bases", costs, f"{TIMED_STEPS} steps and an evaluation timed at "
                "each width", done=done)


def finetune_run_seconds(config, width: int, backend_name=None) -> float:
    """The estimated seconds of one fine-tuning run (LoRA on a base of `width`) here."""
    pcfg = pretrain_config(width, config.fast, steps=config.pretrain_steps)
    lora = LoRAConfig(r=config.r, targets=config.targets)
    lm = build_model(pcfg, backend_name, lora, trainable="lora")
    tok = shipped_tokenizer()
    ids, val = train_val_split(tok.encode(load_text(config.text)))
    step, evaluation = rates(lm, Adam(lm.trainable_params(), lr=1e-3), ids, config.batch_size,
                             config.context, eval_windows(val, config.context, config.n_eval))
    evaluations = len(range(0, config.steps, config.eval_every)) + 1
    return config.steps * step + evaluations * evaluation


def chain_runs(config, chain) -> int:
    """The fewest runs a chain makes: every lattice bracketed by its first three points, on the
    tuning seeds, then each setting on the evaluation seeds."""
    per_setting = 3 * len(config.tune_seeds) + len(config.eval_seeds)
    if chain.kind == "lr_ratios":
        return len(config.lr_ratios) * per_setting
    return (1 + 2 * len([r for r in config.ranks if r != config.r])) * per_setting


def finetune_plan(config, todo, cache=None, backend_name=None, finished_runs: int = 0) -> Plan:
    """`tinylora finetune`: the bases to pretrain (keys ``base_d<w>``), then every chain of
    `todo` (keys ``<kind>_d<w>_<init>``) at its fewest runs; `finished_runs` already in --out
    are read back, not run (they shorten the estimate)."""
    costs, per_run = {}, {}
    for w in sorted({c.width for c in todo}):
        pcfg = pretrain_config(w, config.fast, steps=config.pretrain_steps)
        if not base_exists(pcfg, cache):
            costs[f"base_d{w}"] = pretrain_seconds(pcfg, backend_name)
        per_run[w] = finetune_run_seconds(config, w, backend_name)
    runs = {chain_key(c): chain_runs(config, c) for c in todo}
    left = max(0.0, 1 - finished_runs / max(1, sum(runs.values())))
    costs.update({chain_key(c): runs[chain_key(c)] * per_run[c.width] * left for c in todo})
    widths = sorted(per_run)
    basis = f"at least {sum(runs.values())} runs; steps timed: a run " + ", ".join(
        f"{per_run[w]:.2g} s at d_model {w}" for w in dict.fromkeys(widths[:1] + widths[-1:]))
    return Plan("finetune", "bases and chains", costs, basis, at_least=True)


def chain_key(chain) -> str:
    """A chain's unit in the plan: ``lr_ratios_d64_zero_B``, ``baselines_d64``."""
    return f"{chain.kind}_d{chain.width}" + (f"_{chain.init}" if chain.init else "")


def ladder_run_seconds(config, geometry: tuple, data, max_stack: int, backend_name=None):
    """Seconds per run of a stacked pass of the ladder at `geometry` (width, batch size) here:
    a pass of a few runs over the base's random weights, a tenth of the steps, timed, scaled."""
    width, batch_size = geometry
    short, size = min(config.steps, max(2, config.steps // 10)), min(max_stack, TIMED_STACK)
    jobs = [Job(width, "zero_B", 1.0, config.lr0, config.tune_seeds[i % 2], batch_size)
            for i in range(size)]
    seconds = timed(lambda: train_stack(replace(config, steps=short, eval_every=short), jobs,
                                        data, ladder.base_config(config, width),
                                        backend_name=backend_name, load=False))
    return seconds / size * config.steps / short


def ladder_plan(config, out, cache=None, backend_name=None, max_stack: int = 16) -> Plan:
    """`tinylora finetune-ladder`: the bases (keys ``base_d<w>``), then each chain's runs at
    their fewest (keys `ladder.run_slot`); a base already made and the runs saved in `out` are
    done (a chain's saved runs fill its first units)."""
    runner = ladder.Runner(config, out, cache, backend_name, max_stack, show_progress=False)
    fewest = len(config.lr_ratios) * (3 * len(config.tune_seeds) + len(config.eval_seeds))
    chains = ladder.chains(config)
    costs, done = {}, []
    for w in dict.fromkeys(c[0] for c in chains):
        pcfg = ladder.base_config(config, w)
        if base_exists(pcfg, cache) or runner.parts.load_part(f"base_d{w}") is not None:
            costs[f"base_d{w}"] = 0.0
            done.append(f"base_d{w}")
        else:
            costs[f"base_d{w}"] = pretrain_seconds(pcfg, backend_name)
    left = {(c[0], c[2]) for c in chains if runner.saved[c] < fewest}
    per_run = {g: ladder_run_seconds(config, g, runner.data, max_stack, backend_name)
               for g in sorted(left)}
    for c in chains:
        for i in range(fewest):
            costs[ladder.run_slot(c, i)] = per_run.get((c[0], c[2]), 0.0)
        done += [ladder.run_slot(c, i) for i in range(min(fewest, runner.saved[c]))]
    ends = sorted((s, f"{s:.2g} s at d_model {w}") for (w, _), s in per_run.items())
    basis = f"at least {fewest * len(chains)} runs; {min(max_stack, TIMED_STACK)} stacked " \
        "runs timed: a run " + " to ".join(dict.fromkeys(t for _, t in ends[:1] + ends[-1:]))
    return Plan("finetune-ladder", "bases and runs", costs, basis if per_run else
                f"at least {fewest * len(chains)} runs, all saved: none timed", done=done,
                at_least=True)
