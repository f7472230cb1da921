"""One run of `tinylora finetune` (the study of the best LoRA+ ratio per width and init).

For each width d_model, the base that `tinylora pretrain` trained on Shakespeare is frozen and
LoRA factors (rank 8) are attached to q, k, v, o, fc1 and fc2 of every block, with Init[1]
(``zero_B``: B = 0) or Init[2] (``zero_A``: A = 0). Adam fine-tunes them on Milton's prose with
the LoRA+ groups: B at ``lr * lr_ratio``, A at ``lr``. The protocol (`tinylora.text.study`), per
(width, init):

1. *tune*, on the tuning seeds only: for every lr_ratio (1 = plain LoRA, ..., 64), lr_A on a
   half-octave lattice grown until its optimum is interior (`tinylora.text.tuning`), scored by
   the mean final validation loss over the tuning seeds; while the best ratio on the tuning
   seeds is the grid's first or last, the grid grows by an octave there (at most
   `max_extra_lr_ratios` times), so that the best ratio is bracketed;
2. *evaluate*, on other seeds: every ratio at its tuned lr. Every reported loss, speed-up and
   the best ratio come from these runs (`tinylora.text.report`).

At one width (`baseline_width`) the same protocol tunes the baselines a reader asks for: full
fine-tuning (every base array trainable) and plain LoRA at ranks 1 .. 16 with scale alpha / r
against rsLoRA's alpha / sqrt(r) (alpha set so that both give scale 1 at rank 8, the study's).

A run is one record (its `Setting`, lr, seed, validation curve, final loss), saved as a part of
``--out`` when it finishes (`tinylora.run.records.ResultsDir`): a rerun with the same configuration
skips the runs already there, so a stopped study resumes where it stopped. A run is *diverged*
by the rule of `tinylora.diverge` (the same as `train` and the lab's grids): its curve is inf
from there on and its final loss is inf.

This module holds the study's configuration and one run; `tinylora.text.study` the protocol and
the command, `tinylora.text.report` what is reported (summary.json's keys: its `summarize`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

from tinylora import backend, schedule
from tinylora.block import BLOCK_TARGETS
from tinylora.diverge import diverged
from tinylora.groups import loraplus_groups
from tinylora.lora import LoRAConfig
from tinylora.optim import Adam
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
from tinylora.train import train_step


@dataclass(frozen=True)
class FinetuneConfig:
    """The study's settings (and, with `pretrain_steps`, which bases it uses)."""

    widths: tuple = DEFAULT_WIDTHS
    inits: tuple = ("zero_B", "zero_A")  # the paper's Init[1] and Init[2]
    r: int = 8
    steps: int = 120
    batch_size: int = 16
    eval_every: int = 10
    n_eval: int = 32  # fixed validation windows of the second text
    lr_ratios: tuple = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # lr_B / lr_A
    lr0: float = 3e-3  # lattice point k = 0: lr_A = lr0 * 2^(k / 2)
    max_points: int = 12  # per lattice (`tinylora.text.tuning`)
    max_extra_lr_ratios: int = 3  # octaves the lr_ratios may grow past an end (`study`)
    tune_seeds: tuple = (0, 1)
    eval_seeds: tuple = (2, 3, 4, 5)
    baselines: bool = True
    baseline_width: int | None = None  # None: the first width
    ranks: tuple = (1, 2, 4, 8, 16)
    context: int = 64  # of the base; set by `finetune_config`
    pretrain_steps: int | None = None  # None: the pretrain default
    fast: bool = False
    sample_chars: int = 160
    text: str = FINETUNE_TEXT
    targets: tuple = field(default=BLOCK_TARGETS)  # q, k, v, o, fc1, fc2 in every block
    warmup: int = 0  # linear warm-up steps (`tinylora.schedule`); 0: none
    decay: str = "constant"  # "constant", "cosine" or "linear" after the warm-up
    clip: float | None = None  # global-norm gradient clipping; None: none


FAST = {"widths": FAST_WIDTHS, "steps": 10, "batch_size": 8, "eval_every": 5, "n_eval": 8,
        "lr_ratios": (1.0, 4.0, 16.0), "lr0": 1e-2, "max_points": 4, "max_extra_lr_ratios": 1,
        "eval_seeds": (2, 3),
        "ranks": (2,), "sample_chars": 40}


def finetune_config(fast: bool = False, **overrides) -> FinetuneConfig:
    """The default study, or with ``fast`` a tiny one (seconds). None overrides are ignored."""
    base = dict(FAST) if fast else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    for k in ("widths", "inits", "lr_ratios", "tune_seeds", "eval_seeds", "ranks"):
        base[k] = tuple(base.get(k, getattr(FinetuneConfig, k)))
    base["lr_ratios"] = tuple(sorted(float(x) for x in base["lr_ratios"]))
    if not {1.0, 16.0} <= set(base["lr_ratios"]):
        raise ValueError(f"lr_ratios: expected a grid containing 1 (LoRA) and 16 (LoRA+), got "
                         f"{list(base['lr_ratios'])}")
    if not base["inits"] or not set(base["inits"]) <= {"zero_B", "zero_A"}:
        raise ValueError(f"inits: expected some of ['zero_B', 'zero_A'], got "
                         f"{list(base['inits'])}")
    if len(base["tune_seeds"]) < 2 or len(base["eval_seeds"]) < 2:
        raise ValueError(f"tune_seeds, eval_seeds: expected at least 2 of each, got "
                         f"{list(base['tune_seeds'])} and {list(base['eval_seeds'])}")
    if set(base["tune_seeds"]) & set(base["eval_seeds"]):
        raise ValueError(f"eval_seeds: expected seeds the tuning never saw, got "
                         f"{sorted(set(base['tune_seeds']) & set(base['eval_seeds']))} in both")
    config = FinetuneConfig(fast=fast, **base)
    schedule.check(config.steps, config.warmup, config.decay, config.clip)
    ctx = _base_config(config, config.widths[0]).context
    return FinetuneConfig(**{**asdict(config), "context": ctx})


def _base_config(config: FinetuneConfig, width: int):
    return pretrain_config(width, config.fast, steps=config.pretrain_steps)


@dataclass(frozen=True)
class Setting:
    """What one run trains, besides its lr and seed.

    rule "lora": LoRA of rank `r` with scale alpha / r, alpha None meaning r (scale 1, the
    study's); "rslora": scale alpha / sqrt(r); "full": no LoRA, every base array trainable
    (init, lr_ratio, r and alpha unused: written as "-", 1, 0, None).
    """

    width: int
    init: str = "zero_B"
    lr_ratio: float = 1.0  # lr_B / lr_A: 1 is plain LoRA
    r: int = 8
    rule: str = "lora"
    alpha: float | None = None

    @classmethod
    def full(cls, width: int) -> Setting:
        return cls(width, "-", 1.0, 0, "full", None)

    def key(self) -> str:
        alpha = "" if self.alpha is None else f"_alpha{float(self.alpha)!r}"
        return (f"d{self.width}_{self.init}_lr_ratio{float(self.lr_ratio)!r}_{self.rule}{self.r}"
                f"{alpha}")


def run_fields(setting: Setting) -> dict:
    """The setting as a run record's fields."""
    return {"width": setting.width, "init": setting.init, "lr_ratio": float(setting.lr_ratio),
            "r": setting.r, "rule": setting.rule, "alpha": setting.alpha}


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
    lm = build_model(pcfg, backend_name, LoRAConfig(targets=()), trainable="all")
    load_base(lm, pcfg, cache)
    return {"width": width, "path": pre["path"], "pretrain_val_loss": pre["val_loss"],
            "loss_pretrain_text": mean_loss(lm, data.val_pretrain),
            "loss_finetune_text": mean_loss(lm, data.val),
            "sample": sample_text(lm, data, config.sample_chars)}


def build(config: FinetuneConfig, setting: Setting, seed: int, cache=None, backend_name=None):
    """The model of one run over its frozen base, and its optimizer's parameter groups."""
    pcfg = _base_config(config, setting.width)
    if setting.rule == "full":
        lm = build_model(pcfg, backend_name, LoRAConfig(targets=()), trainable="all", seed=seed)
    else:
        lora = LoRAConfig(r=setting.r, alpha=setting.alpha, rslora=setting.rule == "rslora",
                          init=setting.init, targets=config.targets)
        lm = build_model(pcfg, backend_name, lora, trainable="lora", seed=seed)  # seed: LoRA init
    load_base(lm, pcfg, cache)
    params = lm.trainable_params()
    return lm, (lambda lr: [{"params": list(params), "lr": lr}] if setting.rule == "full"
                else loraplus_groups(params, lr=lr, lr_ratio=setting.lr_ratio))


def finetune_run(config: FinetuneConfig, setting: Setting, lr: float, seed: int, data: Data,
                 cache=None, backend_name=None, sample=False) -> dict:
    """One fine-tuning run (LoRA at lr_ratio 1, LoRA+ above, or a baseline). -> its record."""
    lm, groups = build(config, setting, seed, cache, backend_name)
    opt = Adam(lm.trainable_params(), groups=groups(lr))
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
        sched.apply(step)  # every group's rate times one factor: the LoRA+ ratio is kept
        _, gone = train_step(lm, opt, batch[:, :-1], batch[:, 1:], start=losses[0],
                             loss="cross_entropy", clip=config.clip)  # None: no clipping
        if gone:  # by the rule `train` uses too: not updated, inf from here on
            diverged_at = step
    record = {**run_fields(setting), "lr": float(lr), "seed": seed, "eval_steps": steps,
              "val_loss": losses, "final_loss": losses[-1], "diverged": diverged_at is not None,
              "diverged_at": diverged_at, "seconds": round(time.perf_counter() - start, 2)}
    if sample and diverged_at is None:
        record["sample"] = sample_text(lm, data, config.sample_chars)
    return record
