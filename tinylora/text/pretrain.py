"""The base models that `tinylora finetune` adapts: pretrained, and cached (the command, `tinylora
pretrain`, is `tinylora.text.pretrain_report`).

A `TinyLM` with every array trainable (``trainable="all"``) learns the first shipped text
(Shakespeare) with AdamW, one model per width ``d_model``. Each base is saved in a cache folder:

    <cache>/tinylm-d128-L2-T64.npz         the base arrays (lm.base_keys(): embeddings, W, b, norms)
    <cache>/parts/tinylm-d128-L2-T64.json  its record, stored with the configuration that made it
                                           (`tinylora.run.records.ResultsDir`): {"config", "model",
                                           "n_params", "val_loss", "curve", "seconds"}

Rerunning reuses a saved base whose configuration matches exactly; a saved base with another
configuration under the same name is refused (pass ``force=True`` / ``--force`` to retrain it,
or use another cache folder), so a study can never silently fine-tune the wrong base.

"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tinylora import backend
from tinylora.lora import LoRAConfig
from tinylora.optim import AdamW
from tinylora.run.progress import bar as progress_bar
from tinylora.run.records import ResultsDir
from tinylora.schedule import Schedule
from tinylora.text.corpus import (
    PRETRAIN_TEXT,
    BatchSampler,
    eval_windows,
    load_text,
    shipped_tokenizer,
    train_val_split,
)
from tinylora.train import loss_fn, train_step
from tinylora.transformer import LMConfig, TinyLM

DEFAULT_WIDTHS = (64, 128, 256)
FAST_WIDTHS = (32, 64)
CACHE_ENV = "TINYLORA_CACHE"
LR_FLOOR = 0.1  # the cosine ends at lr * LR_FLOOR


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a base model; two bases are interchangeable iff these match.

    The learning rate follows a cosine from `lr` down to `lr / 10` over `steps`
    (`tinylora.schedule.Schedule` with ``floor=LR_FLOOR``).
    """

    d_model: int
    n_head: int = 4
    n_layer: int = 2
    context: int = 64
    steps: int = 600
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    seed: int = 0
    n_eval: int = 64  # fixed validation windows of the first text
    text: str = PRETRAIN_TEXT
    vocab: str = ""  # the tokenizer's characters; filled in by `pretrain_config`
    dtype: str = "float32"

    @property
    def stem(self) -> str:
        return f"tinylm-d{self.d_model}-L{self.n_layer}-T{self.context}"

    def groups(self, params: dict):
        """AdamW's parameter groups: None, `lr` for every array (a width-consistent recipe:
        `tinylora.text.ladder_bases.LadderBaseConfig`)."""
        return None


def pretrain_config(d_model: int, fast: bool = False, **overrides) -> PretrainConfig:
    """The default configuration at width `d_model` (``fast``: tiny, for tests and a quick look)."""
    if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 8:
        raise ValueError(f"d_model: expected an integer >= 8, got {d_model!r}")
    base = {"context": 32, "steps": 40, "batch_size": 16, "n_eval": 16} if fast else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return PretrainConfig(d_model=d_model, vocab=shipped_tokenizer().chars, **base)


def default_cache() -> Path:
    """$TINYLORA_CACHE, else ~/.cache/tinylora/bases."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "tinylora" / "bases"


def build_model(config: PretrainConfig, backend_name=None, lora=None, **kwargs):
    """A TinyLM with the base's architecture and the LoRA of `lora` (a LoRAConfig; None:
    LoRAConfig()); `kwargs` (trainable, seed) go to its constructor."""
    kwargs.setdefault("seed", config.seed)
    arch = LMConfig(len(config.vocab), d_model=config.d_model, n_head=config.n_head,
                    n_layer=config.n_layer, context=config.context)
    return TinyLM(arch, lora, backend=backend_name, dtype=config.dtype, **kwargs)


def mean_loss(lm, windows, chunk: int = 32) -> float:
    """Mean next-character cross-entropy of `lm` over fixed windows (n, context + 1), on the host.

    Forward only, in chunks of `chunk` windows; a non-finite loss comes back as inf.
    """
    forward, _ = loss_fn("cross_entropy")
    xp, total = lm.xp, 0.0
    for i in range(0, len(windows), chunk):
        batch = xp.asarray(windows[i:i + chunk])
        logits, _ = lm.forward(batch[:, :-1])
        value, _ = forward(logits, batch[:, 1:])
        total += backend.finite_or_inf(value) * len(batch)
    return total / len(windows)


def train_base(config: PretrainConfig, backend_name=None, show_progress=True, progress=None):
    """Pretrain one base from scratch. -> (lm, record) with the validation curve in `record`.
    `progress`: a counter told of every step (the command's bar), else a bar of its own."""
    tok = shipped_tokenizer()
    if tok.chars != config.vocab:
        raise ValueError("config.vocab: does not match the shipped tokenizer's characters")
    train_ids, val_ids = train_val_split(tok.encode(load_text(config.text)))
    windows = eval_windows(val_ids, config.context, config.n_eval)
    lm = build_model(config, backend_name, LoRAConfig(targets=()), trainable="all")
    opt = AdamW(lm.trainable_params(), lr=config.lr, weight_decay=config.weight_decay,
                groups=config.groups(lm.trainable_params()))
    sched = Schedule(opt, config.steps, decay="cosine", floor=LR_FLOOR)
    sampler = BatchSampler(train_ids, config.batch_size, config.context, seed=config.seed)
    xp, start = lm.xp, time.perf_counter()
    eval_every = max(1, config.steps // 10)
    curve = {"step": [], "val_loss": [], "train_loss": []}
    bar = progress_bar(range(config.steps), desc=f"pretrain d={config.d_model}",
                       show=show_progress and progress is None, leave=False)
    train_loss = None  # no step taken yet (JSON null)
    for step in bar:
        if step % eval_every == 0:
            curve["step"].append(step)
            curve["val_loss"].append(mean_loss(lm, windows))
            curve["train_loss"].append(train_loss)
        batch = xp.asarray(sampler.sample())
        sched.apply(step)
        train_loss, gone = train_step(lm, opt, batch[:, :-1], batch[:, 1:],
                                      start=curve["val_loss"][0], loss="cross_entropy")
        if gone:  # by the rule of tinylora.diverge: a base is never saved from a diverged run
            raise RuntimeError(f"pretraining d_model={config.d_model} diverged at step {step} "
                               f"(lr={config.lr:g}); try a smaller --lr")
        if step % 10 == 0:
            bar.set_postfix_str(f"loss {train_loss:.3f}")
        if progress is not None:
            progress.update(1)
    val = mean_loss(lm, windows)
    curve["step"].append(config.steps)
    curve["val_loss"].append(val)
    curve["train_loss"].append(train_loss)
    record = {"config": asdict(config), "model": asdict(lm.config), "n_params": lm.n_params(),
              "val_loss": val, "curve": curve,
              "seconds": round(time.perf_counter() - start, 2)}
    return lm, record


def _bases(config: PretrainConfig, cache=None, strict: bool = True) -> ResultsDir:
    """The cache folder as a ResultsDir keyed by this base's configuration (the vocabulary by a
    fingerprint, so that a difference reads as one short line)."""
    key = {**asdict(config), "vocab": hashlib.sha256(config.vocab.encode()).hexdigest()[:12]}
    return ResultsDir(default_cache() if cache is None else cache, key, strict=strict)


def base_paths(config: PretrainConfig, cache=None) -> tuple[Path, Path]:
    """(the base's arrays .npz, its record .json) in the cache folder."""
    bases = _bases(config, cache)
    return bases / f"{config.stem}.npz", bases / "parts" / f"{config.stem}.json"


def ensure_base(config: PretrainConfig, cache=None, force=False, backend_name=None,
                show_progress=True, progress=None) -> dict:
    """The cached base for `config`: reused when its saved configuration matches, trained and
    saved when absent. -> its record (``record["reused"]`` says which, ``record["path"]`` where).

    A saved base with another configuration is refused with the differences listed, unless
    `force` (then it is retrained and overwritten).
    """
    bases = _bases(config, cache, strict=not force)
    npz, meta = base_paths(config, cache)
    if not npz.exists():
        meta.unlink(missing_ok=True)  # a record without its arrays is no base
    trained = []

    def train() -> dict:
        lm, record = train_base(config, backend_name, show_progress, progress)
        lm.save(npz, keys=lm.base_keys())
        trained.append(True)
        return record

    record = bases.cached(config.stem, train)
    return {**record, "reused": not trained, "path": str(npz)}


def base_exists(config: PretrainConfig, cache=None) -> bool:
    """Whether the cache holds this base: its arrays, and a record of the same configuration."""
    npz, _ = base_paths(config, cache)
    return npz.exists() and _bases(config, cache, strict=False).load_part(config.stem) is not None


def load_base(lm, config: PretrainConfig, cache=None) -> None:
    """Copy the cached base arrays of `config` into `lm` (which must have its architecture)."""
    npz, _ = base_paths(config, cache)
    if _bases(config, cache).load_part(config.stem) is None or not npz.exists():
        raise ValueError(f"cache: no base {config.stem} in {npz.parent}; run tinylora pretrain")
    lm.load(npz, keys=lm.base_keys())
