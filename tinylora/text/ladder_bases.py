"""The ladder's bases: one pretraining recipe for every width, with muP's Adam learning rates.

`tinylora pretrain` trains every width with one learning rate (3e-3), which suits d_model 64 to
256 and no wider: with Adam an update of a d x d matrix moves each output by about lr * d, so the
same rate at d_model 1024 moves the features sixteen times as far as at 64, and base quality
stops changing smoothly with width. The ladder's bases follow muP's rule for Adam instead
(Yang et al., Tensor Programs V, table 3): every weight matrix of the blocks (q, k, v, o, fc1,
fc2) and the head learns at

    lr * mup_width / d_model        (= lr at d_model = mup_width, half of it at twice the width)

while the embeddings, biases and layer norms keep `lr`. Everything else is `tinylora pretrain`'s
recipe (AdamW, weight decay 0.01, cosine to lr / 10, 600 steps of 32 x 64 characters of
Shakespeare: the same token budget at every width), and the initialisation is unchanged
(standard: every W ~ N(0, 1/d_in), the head too). So this is muP's learning rates on a standard
initialisation, not muP itself: the head stays standard-parametrised at init, which is what the
width law's readout "sp" describes (`docs/width_law.md`); `head_scale` measures whether it still
is after pretraining.

The bases are cached like `tinylora pretrain`'s (`tinylora.text.pretrain.ensure_base`), under
their own names (``tinylm-mup128-d256-L2-T64``), so the two recipes never mix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinylora import backend
from tinylora.text.corpus import shipped_tokenizer
from tinylora.text.pretrain import PretrainConfig

MUP_WIDTH = 128  # the width at which every array learns at `lr` (the recorded recipe's rate)


@dataclass(frozen=True)
class LadderBaseConfig(PretrainConfig):
    """`PretrainConfig` with muP's Adam rates for the weight matrices (see the module doc)."""

    mup_width: int = MUP_WIDTH

    @property
    def stem(self) -> str:
        return f"tinylm-mup{self.mup_width}-d{self.d_model}-L{self.n_layer}-T{self.context}"

    @property
    def matrix_lr(self) -> float:
        """The rate of the blocks' weight matrices and the head: lr * mup_width / d_model."""
        return self.lr * self.mup_width / self.d_model

    def groups(self, params: dict) -> list:
        """Two AdamW groups: the matrices (``blocks.*.W``, ``head.W``) at `matrix_lr`, every
        other array (embeddings, biases, layer norms) at `lr`."""
        matrices = [k for k in params if k == "head.W" or (k.startswith("blocks.")
                                                            and k.endswith(".W"))]
        others = [k for k in params if k not in matrices]
        return [{"params": others, "lr": self.lr, "name": "embeddings, biases, norms"},
                {"params": matrices, "lr": self.matrix_lr, "name": "weight matrices"}]


def ladder_base_config(d_model: int, fast: bool = False, **overrides) -> LadderBaseConfig:
    """The ladder's base at width `d_model` (``fast``: tiny, for tests and a rehearsal)."""
    if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 8:
        raise ValueError(f"d_model: expected an integer >= 8, got {d_model!r}")
    base = {"context": 32, "steps": 40, "batch_size": 16, "n_eval": 16, "mup_width": 32} \
        if fast else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return LadderBaseConfig(d_model=d_model, vocab=shipped_tokenizer().chars, **base)


def head_scale(head) -> float:
    """RMS of the head's entries times sqrt(d_model): about 1 for N(0, 1/d_model) (the standard
    readout, "sp"), and falling like d_model^-1/2 for muP's N(0, 1/d_model^2)."""
    host = backend.to_numpy(head).astype("float64")
    return float(math.sqrt((host**2).mean()) * math.sqrt(host.shape[0]))
