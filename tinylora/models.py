"""A frozen MLP with LoRA on any of its linear layers; forward and backward by hand.

    x (..., d_in) -> fc1 -> act -> fc2 -> act -> ... -> fcK -> out (..., d_out)

    model = LoRAMLP(MLPConfig(16, [64, 64], 1), LoRAConfig(r=4))   # LoRA on fc1, fc2, fc3

Layer ``fc<i>`` is a frozen linear ``h W + b``; on a LoRA target it becomes
``h W + b + scale * (h A) B`` (see `tinylora.layers.lora_linear_forward`).
With ``stack=(S,)`` every LoRA factor gets a leading axis of S independent copies that share the
frozen weights: S models trained at once by broadcasting (`tinylora.lab.grid`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from tinylora import backend as _backend
from tinylora import validate
from tinylora.layers import ACTIVATIONS
from tinylora.layers import activation as _activation
from tinylora.lora import LoRAConfig, LoRAModel, check_configs, init_factors
from tinylora.projection import proj_backward, proj_forward, trains


def _given(a, name: str, shape: tuple, xp, dtype):
    """A frozen array given by the user, checked (real, finite, of `shape`) and converted."""
    host = _backend.to_numpy(a)
    if host.dtype.kind not in "fiu" or tuple(host.shape) != shape:
        validate.fail(name, f"a real array of shape {shape}", a)
    return validate.finite_values(xp.asarray(host, dtype=dtype), name)


@dataclass(frozen=True)
class MLPConfig:
    """The frozen MLP's settings: widths ``d_in -> d_hidden... -> d_out``, activation, biases.

    d_hidden: one width (one hidden layer), or a list of them, stored as a tuple; an empty list
        is a single layer d_in -> d_out (fc1 alone).
    activation: "relu" or "gelu", between the layers. bias: frozen biases (zeros unless given).
    """

    d_in: int
    d_hidden: tuple
    d_out: int
    activation: str = "relu"
    bias: bool = False

    def __post_init__(self):
        hidden = ((self.d_hidden,) if isinstance(self.d_hidden, numbers.Integral)
                  else self.d_hidden)
        if not isinstance(hidden, (list, tuple)):
            validate.fail("d_hidden", "a positive integer or a list of them ([] for one layer)",
                          self.d_hidden)
        set_ = object.__setattr__  # frozen: each field set once, here
        set_(self, "d_in", validate.positive_int(self.d_in, "d_in"))  # NumPy ints too
        set_(self, "d_hidden", tuple(validate.positive_int(n, "d_hidden") for n in hidden))
        set_(self, "d_out", validate.positive_int(self.d_out, "d_out"))
        validate.choice(self.activation, "activation", sorted(ACTIVATIONS))
        if not isinstance(self.bias, bool):
            validate.fail("bias", "True or False", self.bias)

    @property
    def widths(self) -> tuple:
        """(d_in, *d_hidden, d_out): layer fc<i> maps widths[i - 1] to widths[i]."""
        return (self.d_in, *self.d_hidden, self.d_out)

    @property
    def layer_names(self) -> tuple:
        """("fc1", ..., "fcK"), K = len(d_hidden) + 1."""
        return tuple(f"fc{i + 1}" for i in range(len(self.widths) - 1))


class LoRAMLP(LoRAModel):
    """A frozen MLP (`MLPConfig`) with LoRA factors (`LoRAConfig`) on some of its layers.

    Args:
        config: the widths, activation and biases (`MLPConfig`).
        lora: rank, alpha, init, dropout, and the targets among ``fc1``..``fcK`` (None: all of
            them); None means ``LoRAConfig()``.
        trainable: "lora" (default), "all", or a list of keys.
        stack: leading shape of independent LoRA copies, e.g. (S,) for S models at once.
        weights, biases: frozen arrays to use instead of random ones (W_i ~ N(0, 1/fan_in)).
        seed, backend, dtype: host-side seeded init, the array backend, float64 or float32.
    """

    config_class = MLPConfig
    usage = "LoRAMLP(MLPConfig(d_in, d_hidden, d_out), LoRAConfig(r=...))"

    def __init__(self, config: MLPConfig, lora: LoRAConfig | None = None, *, trainable="lora",
                 stack=(), weights=None, biases=None, seed=0, backend=None, dtype=None):
        xp = _backend.get_xp(backend)
        dtype = _backend.resolve_dtype(dtype)
        self.config, self.lora = config, check_configs(self, config, lora)
        self.widths, self.layer_names = config.widths, config.layer_names  # shorthands
        self.act_forward, self.act_backward = _activation(config.activation)
        self.targets = self.lora.pick_targets(self.layer_names)
        self.stack = validate.stack(stack)
        if biases is not None and not config.bias:
            validate.fail("biases", "None when bias=False (MLPConfig(..., bias=True) to use "
                          "them)", biases)
        n = len(self.layer_names)
        for what, given in (("weights", weights), ("biases", biases)):
            if given is not None and (not isinstance(given, (list, tuple)) or len(given) != n):
                validate.fail(what, f"a list of {n} arrays, one per layer", given)

        rng = _backend.host_rng(seed)
        self.params = {}
        for i, name in enumerate(self.layer_names):  # frozen weights first: the same seed gives
            fan_in, fan_out = self.widths[i], self.widths[i + 1]  # the same base for any LoRA setup
            if weights is not None:
                W = _given(weights[i], f"weights[{i}]", (fan_in, fan_out), xp, dtype)
            else:
                W = _backend.normal(rng, (fan_in, fan_out), 1.0 / math.sqrt(fan_in), xp, dtype)
            self.params[f"{name}.W"] = W
            if config.bias:
                b = (xp.zeros(fan_out, dtype=dtype) if biases is None
                     else _given(biases[i], f"biases[{i}]", (fan_out,), xp, dtype))
                self.params[f"{name}.b"] = b
        for i, name in enumerate(self.layer_names):  # the factors continue the same stream
            if name in self.targets:
                fan_in, fan_out = self.widths[i], self.widths[i + 1]
                self.lora.check_rank(name, fan_in, fan_out)
                A, B = init_factors(rng, fan_in, fan_out, self.lora, xp, dtype, self.stack)
                self.params[f"{name}.A"], self.params[f"{name}.B"] = A, B
        self._set_dropout(seed)
        self._set_trainable(trainable)

    def forward(self, x):
        """x (..., d_in) -> (out (*stack, ..., d_out), cache)."""
        validate.array(x, "x", f"a real array of shape (..., d_in={self.widths[0]})", kind="fiu",
                       xp=self.xp)  # its width: checked by fc1, which names itself
        h, caches, p, drop = x, [], self.live_params(), self.lora_dropout()
        for i, name in enumerate(self.layer_names):
            h, c = proj_forward(h, p, name, self.scale, drop)  # h W + b (+ scale (h A) B)
            caches.append(c)
            if i < len(self.layer_names) - 1:
                h, c = self.act_forward(h)
                caches.append(c)
        return h, caches

    def backward(self, dout, cache):
        """dout (*stack, ..., d_out) -> grads: a dict with exactly the trainable keys."""
        self.refuse_if_merged("backward")
        trainable, first = self._trained_below()
        grads, caches, top = {}, list(cache), len(self.layer_names) - 1
        dh = dout
        for i in reversed(range(first, top + 1)):
            if i < top:
                dh = self.act_backward(dh, caches.pop())
            dh = proj_backward(dh, caches.pop(), trainable, grads, need_dx=i > first)
        return {k: grads[k] for k in self.trainable}

    def _trained_below(self):
        """-> (the trainable keys as a set, the lowest layer that trains: nothing below it needs
        a gradient), worked out again only when ``self.trainable`` (a tuple) is replaced."""
        if getattr(self, "_below", (None,))[0] is not self.trainable:
            keys, top = set(self.trainable), len(self.layer_names) - 1
            first = min((i for i, n in enumerate(self.layer_names) if trains(keys, n)),
                        default=top + 1)
            self._below = (self.trainable, keys, first)
        return self._below[1:]

    def __repr__(self) -> str:
        widths = " -> ".join(map(str, self.widths))
        stack = f", stack={self.stack}" if self.stack else ""
        return (f"LoRAMLP({widths}, act={self.config.activation}, targets={list(self.targets)}, "
                f"r={self.lora.r}, scale={self.scale:g}, init={self.lora.init}{stack}, "
                f"trainable={self.n_params(self.trainable)} of {self.n_params()} numbers)")

