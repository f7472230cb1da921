"""Real text for the fine-tuning study: the shipped texts, a character tokenizer, batches.

    tok = shipped_tokenizer()                       # one vocabulary over both texts
    ids = tok.encode(load_text("areopagitica"))     # int64 (n_chars,)
    train, val = train_val_split(ids)               # the last 10 % is validation
    batch = BatchSampler(train, batch_size=16, context=64, seed=0).sample()   # (16, 65)
    x, y = batch[:, :-1], batch[:, 1:]              # inputs and next-character targets

Two public-domain texts ship inside the package (see ``tinylora/text/data/SOURCES.md``):
Shakespeare's plays, the *pretraining* text, and Milton's prose *Areopagitica*, the *fine-tuning*
text. Nothing is downloaded. Everything here lives on the host; a batch moves to the GPU with
``xp.asarray``.
"""

from __future__ import annotations

from importlib import resources

import numpy as np  # host-only module: token ids and batches are built on the host

TEXTS = {"shakespeare": "shakespeare.txt", "areopagitica": "areopagitica.txt"}
PRETRAIN_TEXT = "shakespeare"  # dramatic verse: what the base model learns
FINETUNE_TEXT = "areopagitica"  # argumentative prose: what LoRA adapts it to


def load_text(name: str) -> str:
    """The shipped text `name` ('shakespeare' or 'areopagitica') as one string."""
    if name not in TEXTS:
        raise ValueError(f"text: expected one of {sorted(TEXTS)}, got {name!r}")
    data = resources.files("tinylora.text").joinpath("data")
    return data.joinpath(TEXTS[name]).read_text(encoding="ascii")


class CharTokenizer:
    """Characters <-> integer ids. The vocabulary is the sorted set of characters it was built on.

    ``encode`` refuses a character outside the vocabulary (a clear ValueError naming it), so a
    model can never be fed an id it has no embedding for.
    """

    def __init__(self, texts):
        if isinstance(texts, str):
            texts = [texts]
        self.chars = "".join(sorted(set("".join(texts))))
        if not self.chars:
            raise ValueError("texts: expected at least one non-empty text to build a vocabulary")
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """str (n,) -> int64 ids (n,)."""
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"text: characters {unknown} are not in the vocabulary {self.chars!r}")
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        """int ids (n,) -> str (n,). Accepts a list or a host array."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"ids: expected integers in [0, {self.vocab_size}), got "
                             f"min {ids.min()} max {ids.max()}")
        return "".join(self.chars[i] for i in ids.tolist())

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, chars={self.chars!r})"


def shipped_tokenizer() -> CharTokenizer:
    """The tokenizer over both shipped texts: the vocabulary every base and adapter shares."""
    return CharTokenizer([load_text(name) for name in TEXTS])


def train_val_split(ids, val_fraction: float = 0.1):
    """-> (train, val): the first (1 - val_fraction) of the ids, then the rest, in order.

    A contiguous tail, not random windows, so no validation character is ever seen in training.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
    cut = round(len(ids) * (1.0 - val_fraction))
    return ids[:cut], ids[cut:]


def _check_windows(ids, context: int, what: str) -> None:
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise ValueError(f"context: expected a positive integer, got {context!r}")
    if len(ids) < context + 1:
        raise ValueError(
            f"{what}: expected at least context + 1 = {context + 1} ids, got {len(ids)}")


class BatchSampler:
    """Random windows of ``context + 1`` ids from one split, reproducible from a seed.

    ``sample()`` -> int64 (batch_size, context + 1); the model reads ``[:, :-1]`` and predicts
    ``[:, 1:]``. Two samplers with the same ids, sizes and seed give the same sequence of batches,
    so runs that differ only in their learning rates see exactly the same data.
    """

    def __init__(self, ids, batch_size: int, context: int, seed: int = 0):
        _check_windows(ids, context, "ids")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        self.ids = np.asarray(ids, dtype=np.int64)
        self.batch_size, self.context, self.seed = batch_size, context, seed
        self.rng = np.random.default_rng(seed)

    def sample(self) -> np.ndarray:
        starts = self.rng.integers(0, len(self.ids) - self.context, size=self.batch_size)
        return self.ids[starts[:, None] + np.arange(self.context + 1)]  # (N, context + 1)

    def __repr__(self) -> str:
        return (f"BatchSampler({len(self.ids)} ids, batch_size={self.batch_size}, "
                f"context={self.context}, seed={self.seed})")


def eval_windows(ids, context: int, n_windows: int) -> np.ndarray:
    """A fixed evaluation set: `n_windows` evenly spaced windows (n_windows, context + 1).

    Always the same windows, so validation curves differ only by what the model learnt.
    """
    _check_windows(ids, context, "ids")
    if isinstance(n_windows, bool) or not isinstance(n_windows, int) or n_windows < 1:
        raise ValueError(f"n_windows: expected a positive integer, got {n_windows!r}")
    starts = np.linspace(0, len(ids) - context - 1, n_windows).round().astype(np.int64)
    return np.asarray(ids, dtype=np.int64)[starts[:, None] + np.arange(context + 1)]
