"""`tinylora finetune`: LoRA against LoRA+ on real text, across widths.

For each width d_model, the base that `tinylora pretrain` trained on Shakespeare is frozen and
LoRA factors (rank 8, Init[1]: B = 0) are attached to q, k, v, o, fc1 and fc2 of every block.
Adam fine-tunes them on Milton's prose with the LoRA+ groups: B at ``lr * ratio``, A at ``lr``.

The protocol, per width:
1. *tune*: every ratio in `ratios` (1 = plain LoRA, 16 = the paper's LoRA+) at every lr_A in
   ``lrs / sqrt(ratio)`` (`tinylora.text.report.lr_grid`: the grid moves with the ratio, halfway
   between a fixed lr_A and a fixed lr_B), on the tuning seed; each ratio keeps the lr with the
   lowest final validation loss;
2. *best ratio*: the ratio whose tuned run ends lowest;
3. *compare*: ratio 1, ratio 16 and the best ratio, each at its tuned lr, on every seed in `seeds`.

Every run is one record (width, ratio, lr, seed, validation curve, final loss), saved as a part
of ``--out`` when it finishes (`tinylora.records.ResultsDir`): a rerun with the same
configuration skips the runs already there, so a stopped study resumes where it stopped.
A run is *diverged* by the rule of `tinylora.diverge`
(its loss not finite, or above DIVERGED times the starting loss, the same rule as `train` and the
lab's grids): its curve is inf from there on, its final loss is inf, and the record says where.

Outputs in ``--out``:

    records.json   {"config", "bases": {width: base record}, "runs": [run record, ...]}
    summary.json   widths, speedup (LoRA+ at ratio 16 against LoRA, geometric mean over seeds),
                   speedup_interval (95 %), loss_lora, loss_loraplus (mean final validation
                   loss), best_ratio (of the tuning grid), one entry per width
    summary.md     the tables, the tuning grid and samples before and after
    *.png          validation curves, the tuning, the speed-up and gain per width
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tinylora import backend, schedule
from tinylora.diverge import diverged
from tinylora.progress import bar as progress_bar
from tinylora.records import ResultsDir, write_json
from tinylora.text.corpus import (
    FINETUNE_TEXT,
    PRETRAIN_TEXT,
    BatchSampler,
    eval_windows,
    load_text,
    shipped_tokenizer,
    train_val_split,
)
from tinylora.text.pretrain import (
    DEFAULT_WIDTHS,
    FAST_WIDTHS,
    build_model,
    ensure_base,
    load_base,
    mean_loss,
    pretrain_config,
)
from tinylora.train import loss_and_grads
from tinylora.transformer import BLOCK_TARGETS


@dataclass(frozen=True)
class FinetuneConfig:
    """The study's settings (and, with `pretrain_steps`, which bases it uses)."""

    widths: tuple = DEFAULT_WIDTHS
    r: int = 8
    init: str = "zero_B"  # the paper's Init[1]
    steps: int = 120
    batch_size: int = 16
    eval_every: int = 10
    n_eval: int = 32  # fixed validation windows of the second text
    ratios: tuple = (1.0, 4.0, 16.0, 64.0)
    lrs: tuple = (1e-3, 3e-3, 1e-2)
    tune_seed: int = 0
    seeds: tuple = (1, 2, 3)
    context: int = 64  # of the base; set by `finetune_config`
    pretrain_steps: int | None = None  # None: the pretrain default
    fast: bool = False
    sample_chars: int = 160
    text: str = FINETUNE_TEXT
    targets: tuple = field(default=BLOCK_TARGETS)  # q, k, v, o, fc1, fc2 in every block
    warmup: int = 0  # linear warm-up steps (`tinylora.schedule`); 0: none
    decay: str = "constant"  # "constant", "cosine" or "linear" after the warm-up
    clip: float | None = None  # global-norm gradient clipping; None: none


def finetune_config(fast: bool = False, **overrides) -> FinetuneConfig:
    """The default study, or with ``fast`` a tiny one (seconds). None overrides are ignored."""
    fast_settings = {"widths": FAST_WIDTHS, "steps": 30, "eval_every": 5, "n_eval": 8,
                     "ratios": (1.0, 16.0), "lrs": (3e-3, 1e-2), "seeds": (1, 2),
                     "sample_chars": 40}
    base = dict(fast_settings) if fast else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    for k in ("widths", "ratios", "lrs", "seeds"):
        base[k] = tuple(base.get(k, getattr(FinetuneConfig, k)))
    base["ratios"] = tuple(float(x) for x in base["ratios"])
    base["lrs"] = tuple(float(x) for x in base["lrs"])
    if not {1.0, 16.0} <= set(base["ratios"]):
        raise ValueError(f"ratios: expected a grid containing 1 (LoRA) and 16 (LoRA+), got "
                         f"{list(base['ratios'])}")
    if not base["seeds"]:
        raise ValueError("seeds: expected at least one seed")
    config = FinetuneConfig(fast=fast, **base)
    schedule.check(config.steps, config.warmup, config.decay, config.clip)
    ctx = _base_config(config, config.widths[0]).context
    return FinetuneConfig(**{**asdict(config), "context": ctx})


def _base_config(config: FinetuneConfig, width: int):
    return pretrain_config(width, config.fast, steps=config.pretrain_steps)


class Data:
    """The token ids the study needs, built once: the second text's train split and the fixed
    validation windows of both texts (the first one shows what the base still knows)."""

    def __init__(self, config: FinetuneConfig):
        tok = shipped_tokenizer()
        self.tokenizer = tok
        self.train, val = train_val_split(tok.encode(load_text(config.text)))
        self.val = eval_windows(val, config.context, config.n_eval)
        _, val1 = train_val_split(tok.encode(load_text(PRETRAIN_TEXT)))
        self.val_pretrain = eval_windows(val1, config.context, config.n_eval)
        self.prompt = val[: config.context // 2]


def sample_text(lm, data: Data, n_chars: int, seed: int = 0) -> str:
    """Prompt + `n_chars` characters generated at temperature 0.8, as text."""
    out = lm.generate(lm.xp.asarray(data.prompt), n_chars, temperature=0.8, seed=seed)
    return data.tokenizer.decode(backend.to_numpy(out))


def base_record(config: FinetuneConfig, width: int, data: Data, cache, backend_name, show):
    """Pretrain (or reuse) the base of `width`; its losses on both texts and a sample."""
    pcfg = _base_config(config, width)
    pre = ensure_base(pcfg, cache, backend_name=backend_name, show_progress=show)
    lm = build_model(pcfg, backend_name, targets=(), trainable="all")
    load_base(lm, pcfg, cache)
    return {"width": width, "path": pre["path"], "pretrain_val_loss": pre["val_loss"],
            "loss_pretrain_text": mean_loss(lm, data.val_pretrain),
            "loss_finetune_text": mean_loss(lm, data.val),
            "sample": sample_text(lm, data, config.sample_chars)}


def finetune_run(config: FinetuneConfig, width: int, ratio: float, lr: float, seed: int,
                 data: Data, cache=None, backend_name=None, sample=False) -> dict:
    """One fine-tuning run of LoRA (ratio 1) or LoRA+ (ratio > 1). -> its record."""
    from tinylora.optim import Adam, loraplus_groups

    pcfg = _base_config(config, width)
    lm = build_model(pcfg, backend_name, targets=config.targets, r=config.r, init=config.init,
                     trainable="lora", seed=seed)  # seed: the init of A
    load_base(lm, pcfg, cache)
    params = lm.trainable_params()
    opt = Adam(params, groups=loraplus_groups(params, lr=lr, lr_ratio=ratio))
    sched = schedule.Schedule(opt, config.steps, config.warmup, config.decay)
    sampler = BatchSampler(data.train, config.batch_size, config.context, seed=seed)
    xp, start = lm.xp, time.perf_counter()
    steps, losses, diverged_at = [], [], None
    for step in range(config.steps + 1):
        if step % config.eval_every == 0 or step == config.steps:
            steps.append(step)
            losses.append(math.inf if diverged_at is not None else mean_loss(lm, data.val))
            if diverged_at is None and diverged(losses[-1], losses[0]):  # tinylora.diverge
                diverged_at, losses[-1] = step, math.inf
        if step == config.steps or diverged_at is not None:
            continue  # after a divergence the loop only records inf at the evaluation steps
        batch = xp.asarray(sampler.sample())
        loss, grads = loss_and_grads(lm, batch[:, :-1], batch[:, 1:], loss="cross_entropy")
        if diverged(backend.finite_or_inf(loss), losses[0]):  # the rule `train` uses too
            diverged_at = step
            continue
        sched.apply(step)  # every group's rate times one factor: the LoRA+ ratio is kept
        schedule.clip_grad_norm(grads, config.clip)  # None: no clipping
        opt.step(grads)
    record = {"width": width, "ratio": float(ratio), "lr": float(lr), "seed": seed,
              "eval_steps": steps, "val_loss": losses, "final_loss": losses[-1],
              "diverged": diverged_at is not None, "diverged_at": diverged_at,
              "seconds": round(time.perf_counter() - start, 2)}
    if sample and diverged_at is None:
        record["sample"] = sample_text(lm, data, config.sample_chars)
    return record


# --------------------------------------------------------------------------------------------
# The study: resumable records, the protocol, the command


def run_study(config: FinetuneConfig, out, cache=None, backend_name=None, show_progress=True,
              restart=False) -> dict:
    """Run (or resume) the whole protocol. -> records (also written to ``out/records.json``).

    Each base and each run is a part of ``out`` (`ResultsDir`), saved when it finishes: a rerun
    with the same configuration trains nothing it already has. Parts of a study with another
    configuration are refused (mixing two studies would make every number meaningless) unless
    `restart`, which discards them.
    """
    from tinylora.text.report import best_ratio, lr_grid, tuned

    if restart:
        shutil.rmtree(Path(out) / "parts", ignore_errors=True)
    parts = ResultsDir(out, schedule.unless_plain(asdict(config)), strict=True)
    records = {"config": parts.config, "bases": {}, "runs": []}
    runs = {}
    data = Data(config)
    per_width = len(config.ratios) * len(config.lrs) + 3 * len(config.seeds)
    bar = progress_bar(total=len(config.widths) * per_width, desc="finetune runs",
                       show=show_progress, leave=True)

    def run(width, ratio, lr, seed, sample=False):
        key = f"run_d{width}_ratio{float(ratio)!r}_lr{float(lr)!r}_seed{seed}"
        bar.set_postfix_str(f"d={width} ratio={ratio:g} lr={lr:g} seed={seed}")
        runs[key] = parts.cached(key, lambda: finetune_run(config, width, ratio, lr, seed, data,
                                                           cache, backend_name, sample))
        records["runs"] = list(runs.values())
        bar.update(1)

    for width in config.widths:
        records["bases"][str(width)] = parts.cached(
            f"base_d{width}", lambda w=width: base_record(config, w, data, cache, backend_name,
                                                          show_progress))
        for ratio in config.ratios:
            for lr in lr_grid(config.lrs, ratio):
                run(width, ratio, lr, config.tune_seed)
        table = tuned(records["runs"], width, config.tune_seed)
        methods = list(dict.fromkeys([1.0, 16.0, best_ratio(table)]))
        bar.total -= (3 - len(methods)) * len(config.seeds)
        for ratio in methods:
            for seed in config.seeds:
                run(width, ratio, table[ratio][0], seed, sample=seed == config.seeds[0])
    bar.close()
    write_json(Path(out) / "records.json", records)
    return records


def add_arguments(p) -> None:
    from tinylora import options

    p.add_argument("--widths", type=options.positive_int, nargs="+", default=None,
                   action=options.Distinct,
                   help=f"d_model values (default {list(DEFAULT_WIDTHS)})")
    p.add_argument("--steps", type=options.positive_int, default=None,
                   help="fine-tuning steps per run (default 120)")
    p.add_argument("--ratios", type=options.positive_float, nargs="+", default=None,
                   action=options.Distinct,
                   help="lr_B / lr_A grid, must contain 1 and 16 (default 1 4 16 64)")
    p.add_argument("--lrs", type=options.positive_float, nargs="+", default=None,
                   action=options.Distinct,
                   help="lr grid; at ratio R, lr_A runs over these / sqrt(R) "
                        "(default 1e-3 3e-3 1e-2)")
    p.add_argument("--seeds", type=options.non_negative_int, nargs="+", default=None,
                   action=options.Distinct, help="comparison seeds (1 2 3)")
    p.add_argument("--warmup", type=options.non_negative_int, help="warm-up steps (0)")
    p.add_argument("--decay", choices=schedule.DECAYS, help="after the warm-up (constant)")
    p.add_argument("--clip", type=options.positive_float, help="max gradient norm (none)")
    p.add_argument("--pretrain-steps", type=options.positive_int, default=None,
                   help="which cached bases to use (pretrained with this many steps)")
    p.add_argument("--cache", default=None, help="folder of saved bases (see tinylora pretrain)")
    p.add_argument("--out", type=options.out_folder, default="finetune-out",
                   help="folder for records, summary, figures")
    p.add_argument("--fast", action="store_true",
                   help="a tiny study (seconds): tests, a first look")
    p.add_argument("--restart", action="store_true", help="discard records.json in --out")
    p.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args) -> int:
    from tinylora.text import plots
    from tinylora.text.report import markdown, summarize

    config = finetune_config(args.fast, widths=args.widths, steps=args.steps, ratios=args.ratios,
                             lrs=args.lrs, seeds=args.seeds, pretrain_steps=args.pretrain_steps,
                             warmup=args.warmup, decay=args.decay, clip=args.clip)
    records = run_study(config, args.out, args.cache, args.backend, not args.no_progress,
                        args.restart)
    summary, details = summarize(records)
    out = Path(args.out)
    write_json(out / "summary.json", summary)
    seconds = sum(r["seconds"] for r in records["runs"])  # this study's runs, resumed or not
    (out / "summary.md").write_text(markdown(records, details))
    figures = [plots.finetune_curves(details, out / "finetune_val_loss_curves_by_width.png"),
               plots.finetune_by_width(details, out / "finetune_speedup_and_gain_by_width.png"),
               plots.finetune_lr_grid(records, details, out / "finetune_lr_tuning_by_width.png")]
    print(f"{'d_model':>7}  {'base':>7}  {'LoRA':>7}  {'LoRA+16':>7}  {'speed-up (95% CI)':>22}  "
          f"best ratio   ({seconds:.0f} s of fine-tuning runs in records)")
    for i, w in enumerate(summary["widths"]):
        lo, hi = summary["speedup_interval"][i]
        print(f"{w:7d}  {details[i]['base']['loss_finetune_text']:7.4f}  "
              f"{summary['loss_lora'][i]:7.4f}  {summary['loss_loraplus'][i]:7.4f}  "
              f"{summary['speedup'][i]:6.2f} [{lo:5.2f}, {hi:5.2f}]  {summary['best_ratio'][i]:g}")
    print(f"wrote {out / 'records.json'}, summary.json, summary.md, "
          + ", ".join(Path(f).name for f in figures))
    return 0
