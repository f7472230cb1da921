"""LoRA bookkeeping shared by every model: the configuration, the factors' init, which arrays train.

A model keeps all its arrays in one dict with dotted keys (``fc1.W``, ``fc1.A``,
``blocks.0.attn.q.B``). LoRA adds ``<layer>.A`` (d_in, r) and ``<layer>.B`` (r, d_out) beside a
frozen ``<layer>.W`` (d_in, d_out). `LoRAModel` is the base class that turns those keys into the
things every model needs: the trainable subset, merged weights, and saving/loading with their
settings (the files themselves: `tinylora.checkpoint`).

Every model is built from two dataclasses (nanoGPT's ``GPT(config)``): its own settings (sizes,
activation) and a `LoRAConfig` (rank, alpha, init, which layers):

    LoRAMLP(MLPConfig(16, [64, 64], 1), LoRAConfig(r=4, targets=["fc2"]))
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from tinylora import backend, checkpoint, validate
from tinylora.dropout import LoRADropout

INITS = ("zero_B", "zero_A")


@dataclass(frozen=True)
class LoRAConfig:
    """Rank `r`, `alpha`, the scale rule, the init of the LoRA factors and the layers they go on.

    scale = alpha / r (LoRA), or alpha / sqrt(r) with ``rslora=True`` (rsLoRA).
    alpha = None (the default) means alpha = r: scale 1 (every model's default, set here only).
    init  = "zero_B": the paper's Init[1] (and LoRA's, PEFT's): A ~ N(0, 1/d_in), B = 0.
            "zero_A": the paper's Init[2]: A = 0, B ~ N(0, 1) (variance Theta(1) in the width).
    Both start exactly at the frozen model; both zero would be a saddle where nothing learns.
    dropout = p: dropout on the input of A while training (PEFT's ``lora_dropout``), in [0, 1).
    targets = the layers that get factors (PEFT's ``target_modules``), by the model's names:
            None (the default) means every linear layer of the model (an MLP's fc1..fcK; a
            block's q, k, v, o, fc1, fc2; never TinyLM's token table unless "tok_emb" is named);
            () means none (the frozen model alone); one name, or a list, stored as a tuple.
    """

    r: int = 8
    alpha: float | None = None
    rslora: bool = False
    init: str = "zero_B"
    dropout: float = 0.0
    targets: tuple | None = None

    def __post_init__(self):
        r = validate.positive_int(self.r, "r", "a positive integer rank")  # NumPy ints too
        object.__setattr__(self, "r", r)  # frozen: set once, here
        if self.alpha is None:
            object.__setattr__(self, "alpha", float(r))  # frozen: set once, here
        object.__setattr__(self, "alpha", validate.positive(self.alpha, "alpha"))
        if not isinstance(self.rslora, bool):
            validate.fail("rslora", "True or False", self.rslora)
        validate.choice(self.init, "init", INITS)
        object.__setattr__(self, "dropout", validate.probability(self.dropout, "dropout"))
        if self.targets is not None:  # the names are checked by the model, which knows its layers
            targets = (self.targets,) if isinstance(self.targets, str) else self.targets
            if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str)
                                                                  for t in targets):
                validate.fail("targets", "None (every linear layer), a layer name or a list of "
                              "them", self.targets)
            object.__setattr__(self, "targets", tuple(targets))  # frozen, hashable: a tuple

    @property
    def scale(self) -> float:
        """alpha / r, or alpha / sqrt(r) for rsLoRA (a Python float: no dtype promotion)."""
        return float(self.alpha / (math.sqrt(self.r) if self.rslora else self.r))

    def pick_targets(self, layers: tuple, named_only: tuple = (), what: str = "layers") -> tuple:
        """The model's layers that get factors, in the model's order: all of `layers` when
        `targets` is None; the names given otherwise, each one of `layers` or `named_only`
        (layers that take LoRA only when named, like TinyLM's "tok_emb")."""
        if self.targets is None:
            return tuple(layers)
        return validate.names(self.targets, "targets", (*named_only, *layers), what=what)

    def check_rank(self, layer: str, d_in: int, d_out: int) -> None:
        if self.r > min(d_in, d_out):
            raise ValueError(
                f"r: expected 1 <= r <= min(d_in, d_out) = {min(d_in, d_out)} for layer "
                f"{layer!r} (d_in={d_in}, d_out={d_out}), got {self.r}"
            )


def lora_rng(seed):
    """The random stream of the LoRA factors, apart from the frozen weights' `host_rng(seed)`:
    the base arrays never depend on the LoRA settings (any targets, any r, the same base)."""
    return backend.host_rng([seed, 1])


def init_factors(rng, d_in: int, d_out: int, config: LoRAConfig, xp, dtype, stack=()):
    """(A, B) for one layer: A (*stack, d_in, r), B (*stack, r, d_out), per `config.init`."""
    a_shape, b_shape = (*stack, d_in, config.r), (*stack, config.r, d_out)
    if config.init == "zero_B":  # Init[1]
        A = backend.normal(rng, a_shape, 1.0 / math.sqrt(d_in), xp, dtype)
        B = backend.zeros(b_shape, xp, dtype)
    else:  # Init[2]
        A = backend.zeros(a_shape, xp, dtype)
        B = backend.normal(rng, b_shape, 1.0, xp, dtype)
    return A, B


def init_embedding_factors(rng, vocab_size: int, d: int, config: LoRAConfig, xp, dtype):
    """(A, B) for LoRA on a token table: A = 0 (V, r), B ~ N(0, 1) (r, d), whatever
    `config.init` says (PEFT's and loralib's embedding convention; `tinylora.embedding`)."""
    config.check_rank("tok_emb", vocab_size, d)
    A = backend.zeros((vocab_size, config.r), xp, dtype)
    return A, backend.normal(rng, (config.r, d), 1.0, xp, dtype)


def check_configs(model, config, lora) -> LoRAConfig:
    """The two settings a model is built from: `config` of the model's own ``config_class``,
    `lora` a LoRAConfig or None (-> the default). A call in the old style, sizes first
    (``LoRAMLP(16, [64, 64], 1)``), is refused with the way a call reads."""
    want = model.config_class.__name__
    if not isinstance(config, model.config_class):
        article = "an" if want[0] in "AEIOUFHLMNRSX" else "a"  # said as letters: an MLPConfig
        validate.fail("config", f"{article} {want} ({model.usage})", config)
    if lora is not None and not isinstance(lora, LoRAConfig):
        validate.fail("lora", f"a LoRAConfig or None ({model.usage})", lora)
    return LoRAConfig() if lora is None else lora


class LoRAModel:
    """Base class: arrays in ``self.params`` (dotted keys), the model's settings in
    ``self.config``, its `LoRAConfig` in ``self.lora``, the trainable keys.

    Subclasses name their settings' class in ``config_class`` (and a call in ``usage``), set
    ``self.config``, ``self.lora``, ``self.params``, ``self.targets`` (layer names with LoRA)
    and call ``self._set_trainable(trainable)``.
    """

    config_class = None  # MLPConfig, BlockConfig, LMConfig: what the first argument must be
    usage = ""  # how a call reads, shown when one does not: "TinyLM(LMConfig(vocab_size), ...)"
    params: dict
    lora: LoRAConfig
    targets: tuple
    trainable: tuple
    training = True  # dropout on (`train`) or off (`eval`)
    _frozen = None  # while merged: the frozen weights as they were, to restore bit for bit

    @property
    def scale(self) -> float:
        return self.lora.scale

    @property
    def xp(self):
        return backend.xp_of(next(iter(self.params.values())))

    def adapter_keys(self) -> tuple:
        """The LoRA factors' keys: ``<target>.A`` and ``<target>.B`` for each target."""
        return tuple(f"{t}.{f}" for t in self.targets for f in ("A", "B"))

    def _set_trainable(self, trainable) -> None:
        """'lora' (the factors only), 'all' (every array), or an explicit list of keys."""
        if trainable == "lora":
            keys = self.adapter_keys()
        elif trainable == "all":
            keys = tuple(self.params)
        elif isinstance(trainable, (list, tuple)):
            unknown = [k for k in trainable if k not in self.params]
            if unknown:
                raise ValueError(
                    f"trainable: unknown keys {unknown}; valid keys are {sorted(self.params)}"
                )
            keys = tuple(k for k in self.params if k in set(trainable))
        else:
            raise ValueError(
                f"trainable: expected 'lora', 'all' or a list of keys, got {trainable!r}")
        self.trainable = keys

    def trainable_params(self) -> dict:
        """The arrays that train, by key (the same objects as in ``params``: updates land there)."""
        return {k: self.params[k] for k in self.trainable}

    def weight_key(self, target: str) -> str:
        """The frozen array a target's A @ B adds to: ``<target>.W``, or the table itself for
        an embedding (``tok_emb``)."""
        return target if target in self.params else f"{target}.W"

    def merged_weights(self) -> dict:
        """``{target: W + scale * A @ B}``: for inspection and checks, never used to train."""
        p = self.params
        return {t: p[self.weight_key(t)] + self.scale * (p[f"{t}.A"] @ p[f"{t}.B"])
                for t in self.targets}

    # ----------------------------------------------------------------------------------------
    # Train and eval; merge and unmerge (loralib's and PEFT's merge_and_unload, in place)

    def train(self, mode: bool = True):
        """Dropout on (mode True) or off; -> the model (PyTorch's ``module.train()``)."""
        if not isinstance(mode, bool):
            validate.fail("mode", "True or False", mode)
        self.training = mode
        return self

    def eval(self):
        """Dropout off, for evaluation; -> the model (PyTorch's ``module.eval()``)."""
        return self.train(False)

    @property
    def merged(self) -> bool:
        return self._frozen is not None

    def merge(self) -> None:
        """W <- W + scale * A @ B in place for every target, and the forward drops the LoRA
        path (one product per layer: inference at the frozen model's cost). The frozen weights
        are kept, so `unmerge` restores them bit for bit (subtracting A @ B again would not:
        (W + D) - D != W in floating point). Training is refused until `unmerge`."""
        if self.merged:
            raise ValueError("merge: the model is already merged (unmerge() first)")
        if getattr(self, "stack", ()):
            validate.fail("merge", "an unstacked model (a stack of models shares one W)",
                          self.stack)
        merged = self.merged_weights()  # every sum computed before anything is written
        self._frozen = {t: self.params[self.weight_key(t)].copy() for t in self.targets}
        for t, W in merged.items():
            self.params[self.weight_key(t)][...] = W

    def unmerge(self) -> None:
        """Restore the frozen weights exactly as they were before `merge`."""
        if not self.merged:
            raise ValueError("unmerge: the model is not merged")
        for t, W in self._frozen.items():
            self.params[self.weight_key(t)][...] = W
        self._frozen = None

    def live_params(self) -> dict:
        """The arrays the forward reads: all of them, or without the factors while merged."""
        if not self.merged:
            return self.params
        adapters = set(self.adapter_keys())
        return {k: v for k, v in self.params.items() if k not in adapters}

    def refuse_if_merged(self, what: str) -> None:
        if self.merged:
            raise ValueError(f"{what}: the model is merged (W holds W + scale A B); call "
                             f"unmerge() before training or loading")

    def lora_dropout(self):
        """The dropout of the LoRA path for this forward: None when p = 0 or in eval mode (no
        mask drawn, no extra pass), else the model's seeded `tinylora.dropout.LoRADropout`."""
        return self._dropout if self.training and self.lora.dropout > 0 else None

    def _set_dropout(self, seed) -> None:
        self._dropout = LoRADropout(self.lora.dropout, [seed, 2])  # its own stream

    def _keys(self, keys) -> tuple:
        keys = self.adapter_keys() if keys is None else validate.names(keys, "keys", self.params)
        if not keys:
            validate.fail("keys", f"at least one of {sorted(self.params)}", keys)
        return keys

    def settings(self) -> dict:
        """What a saved file records beside the arrays: the model's class and configuration,
        its LoRAConfig (r, alpha, rslora, init, dropout, targets as given), the LoRA layers."""
        return {"model": type(self).__name__, "config": asdict(self.config),
                "lora": asdict(self.lora), "targets": list(self.targets)}

    def save(self, path, keys=None) -> Path:
        """Save the arrays named by `keys` (default: the adapters) and `settings` to a .npz
        file, the suffix added when missing (`tinylora.checkpoint`). -> the path written."""
        keys = self._keys(keys)
        return checkpoint.save({k: self.params[k] for k in keys}, path, self.settings())

    def load(self, path, keys=None) -> None:
        """Load arrays saved by `save`, all or nothing (a refusal leaves the model as it was). A
        file whose settings do not fit the model is refused, naming every difference (init and
        dropout are not compared: they say how the factors were trained, not what they compute);
        a file without settings, from before they were saved, loads by its arrays alone."""
        self.refuse_if_merged("load")
        keys, path = self._keys(keys), checkpoint.npz_path(path)
        arrays, saved = checkpoint.read(path)
        if saved is not None:
            adapters = not set(keys).isdisjoint(self.adapter_keys())
            checkpoint.check_fits(saved, self.settings(), adapters, path)
        checkpoint.load(self.params, keys, arrays, path)

    def n_params(self, keys=None) -> int:
        keys = self.params if keys is None else keys
        return int(sum(self.params[k].size for k in keys))
