"""A pre-LN Transformer block with LoRA on any of its projections; forward and backward by hand.

    x1  = x  + attn(ln1(x))          causal multi-head self-attention (`tinylora.attention`)
    out = x1 + mlp(ln2(x1))          mlp(h) = gelu(h W1 + b1) W2 + b2,  d_ff = 4 d_model by default

x (N, T, d_model) -> out (N, T, d_model). The arrays live in one dict with dotted keys:
``ln1.g``, ``ln1.b``, ``attn.q.W``, ``attn.q.b`` ... ``attn.o.*``, ``ln2.*``, ``mlp.fc1.*``,
``mlp.fc2.*``, and for each LoRA target ``<layer>.A`` (d_in, r), ``<layer>.B`` (r, d_out).
Inside `TinyLM` the same functions run on keys with a prefix (``blocks.0.attn.q.W``).

Residuals are forks: x goes both through a branch and around it, so on the way back its
gradient is the sum of the two paths; `block_backward` writes each of these sums out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinylora import backend as _backend
from tinylora import validate
from tinylora.attention import attention_backward, attention_forward
from tinylora.layers import gelu_backward, gelu_forward
from tinylora.lora import LoRAConfig, LoRAModel, check_configs, init_factors, lora_rng
from tinylora.norms import layernorm_backward, layernorm_forward
from tinylora.projection import passes_none, proj_backward, proj_forward, trains

BLOCK_TARGETS = ("q", "k", "v", "o", "fc1", "fc2")
TARGET_PATHS = {"q": "attn.q", "k": "attn.k", "v": "attn.v", "o": "attn.o",
                "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def check_heads(d_model: int, n_head: int) -> None:
    """n_head must divide d_model: each head reads d_model / n_head coordinates (the one check
    behind both `BlockConfig` and `tinylora.transformer.LMConfig`)."""
    if d_model % n_head:
        raise ValueError(f"n_head: expected a divisor of d_model={d_model}, got {n_head}")


@dataclass(frozen=True)
class BlockConfig:
    """A block's sizes: d_model (the residual stream's width), n_head (a divisor of d_model),
    d_ff (the MLP's hidden width; None means 4 * d_model, resolved here)."""

    d_model: int
    n_head: int
    d_ff: int | None = None

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: each field set once, here
        set_(self, "d_model", validate.positive_int(self.d_model, "d_model"))  # NumPy ints too
        set_(self, "n_head", validate.positive_int(self.n_head, "n_head"))
        check_heads(self.d_model, self.n_head)
        d_ff = 4 * self.d_model if self.d_ff is None else self.d_ff
        set_(self, "d_ff", validate.positive_int(d_ff, "d_ff"))


def layer_shapes(d_model: int, d_ff: int) -> dict:
    """{layer path: (d_in, d_out)} for the six linear layers of a block."""
    d = d_model
    return {"attn.q": (d, d), "attn.k": (d, d), "attn.v": (d, d), "attn.o": (d, d),
            "mlp.fc1": (d, d_ff), "mlp.fc2": (d_ff, d)}


def init_block(rng, d_model: int, d_ff: int, xp, dtype, prefix: str = "", n_layer: int = 1):
    """The frozen arrays of one block: layer norms g = 1, b = 0; W ~ N(0, 1/d_in); biases 0.

    The projections that write into the residual stream (attn.o, mlp.fc2) are further scaled by
    1/sqrt(2 n_layer), as in GPT-2, so the stream's variance does not grow with depth.
    """
    p = {}
    for ln in ("ln1", "ln2"):
        p[f"{prefix}{ln}.g"] = xp.ones(d_model, dtype=dtype)
        p[f"{prefix}{ln}.b"] = xp.zeros(d_model, dtype=dtype)
    for layer, (d_in, d_out) in layer_shapes(d_model, d_ff).items():
        std = 1.0 / math.sqrt(d_in)
        if layer in ("attn.o", "mlp.fc2"):
            std /= math.sqrt(2 * n_layer)
        p[f"{prefix}{layer}.W"] = _backend.normal(rng, (d_in, d_out), std, xp, dtype)
        p[f"{prefix}{layer}.b"] = xp.zeros(d_out, dtype=dtype)
    return p


def add_factors(params: dict, rng, lora: LoRAConfig, d_model: int, d_ff: int, targets,
                prefix: str = "", xp=None, dtype=None, stack=()) -> list:
    """Add ``A``, ``B`` (leading axes `stack`) for each short target to `params`; -> the paths."""
    shapes, paths = layer_shapes(d_model, d_ff), []
    for t in targets:
        path = TARGET_PATHS[t]
        d_in, d_out = shapes[path]
        lora.check_rank(prefix + path, d_in, d_out)
        A, B = init_factors(rng, d_in, d_out, lora, xp, dtype, stack)
        params[f"{prefix}{path}.A"], params[f"{prefix}{path}.B"] = A, B
        paths.append(prefix + path)
    return paths


# --------------------------------------------------------------------------------------------
# The MLP branch and the layer norms inside the block


def mlp_forward(h, params: dict, name: str, scale: float, dropout=None):
    """gelu(h W1 + b1) W2 + b2.   h (N, T, d) -> (N, T, d), via (N, T, d_ff)."""
    u, c_fc1 = proj_forward(h, params, f"{name}.fc1", scale, dropout)  # [N,T,d] -> [N,T,d_ff]
    a, c_act = gelu_forward(u)
    m, c_fc2 = proj_forward(a, params, f"{name}.fc2", scale, dropout)  # [N,T,d_ff] -> [N,T,d]
    return m, (name, c_fc1, c_act, c_fc2)


@passes_none
def mlp_backward(dm, cache, trainable, grads: dict, need_dx: bool = True):
    """Write the MLP's trainable gradients into `grads`; -> dh (or None when not needed)."""
    name, c_fc1, c_act, c_fc2 = cache
    need_da = need_dx or trains(trainable, f"{name}.fc1")
    da = proj_backward(dm, c_fc2, trainable, grads, need_dx=need_da)  # [N,T,d] -> [N,T,d_ff]
    du = passes_none(gelu_backward)(da, c_act)
    return proj_backward(du, c_fc1, trainable, grads, need_dx=need_dx)  # [N,T,d_ff] -> [N,T,d]


@passes_none
def ln_backward(dy, cache, name: str, trainable, grads: dict, need_dx: bool = True):
    """layernorm_backward for the layer norm ``<name>.g``, ``<name>.b``, gradients into `grads`."""
    dx, dg, db = layernorm_backward(dy, cache, need_dx=need_dx, need_dg=f"{name}.g" in trainable,
                                    need_db=f"{name}.b" in trainable)
    if dg is not None:
        grads[f"{name}.g"] = dg
    if db is not None:
        grads[f"{name}.b"] = db
    return dx


# --------------------------------------------------------------------------------------------
# The block


def block_forward(x, params: dict, prefix: str, n_head: int, scale: float, dropout=None):
    """x (N, T, d) -> out (N, T, d). `prefix` is "" for a lone block, "blocks.i." in TinyLM.
    `dropout`: the LoRA dropout (`tinylora.dropout.LoRADropout`) or None."""
    p, P = params, prefix
    h1, c_ln1 = layernorm_forward(x, p[f"{P}ln1.g"], p[f"{P}ln1.b"], name=f"{P}ln1")
    a, c_attn = attention_forward(h1, p, f"{P}attn", n_head, scale, dropout)
    x1 = x + a  # residual: x goes around the attention (and, through ln1, into it)
    h2, c_ln2 = layernorm_forward(x1, p[f"{P}ln2.g"], p[f"{P}ln2.b"], name=f"{P}ln2")
    m, c_mlp = mlp_forward(h2, p, f"{P}mlp", scale, dropout)
    out = x1 + m  # residual: x1 goes around the MLP (and, through ln2, into it)
    return out, (P, c_ln1, c_attn, c_ln2, c_mlp)


@passes_none
def block_backward(dout, cache, trainable, grads: dict, need_dx: bool = True):
    """Write the block's trainable gradients into `grads`; -> dx (N, T, d) or None.

    `trainable` is a set of keys. Which activation gradients anything uses is decided first;
    one that nothing uses is None, and `passes_none` skips the work below it.
    """
    P, c_ln1, c_attn, c_ln2, c_mlp = cache
    need_x1 = need_dx or trains(trainable, f"{P}ln1", *(f"{P}attn.{n}" for n in "qkvo"))
    need_h2 = need_x1 or trains(trainable, f"{P}ln2")
    need_h1 = need_dx or trains(trainable, f"{P}ln1")

    # second half, out = x1 + mlp(ln2(x1)): x1 forks into the residual path and the MLP branch
    dh2 = mlp_backward(dout, c_mlp, trainable, grads, need_dx=need_h2)
    dx1_branch = ln_backward(dh2, c_ln2, f"{P}ln2", trainable, grads, need_dx=need_x1)
    dx1 = dout + dx1_branch if need_x1 else None  # fork: around the MLP + through ln2 and it

    # first half, x1 = x + attn(ln1(x)): x forks into the residual path and the attention branch
    dh1 = attention_backward(dx1, c_attn, trainable, grads, need_dx=need_h1)
    dx_branch = ln_backward(dh1, c_ln1, f"{P}ln1", trainable, grads, need_dx=need_dx)
    return dx1 + dx_branch if need_dx else None  # fork: around the attention + through ln1 and it


class TransformerBlock(LoRAModel):
    """One pre-LN Transformer block (`BlockConfig`) with LoRA factors (`LoRAConfig`).

    Args:
        config: d_model, n_head, d_ff (`BlockConfig`).
        lora: rank, alpha, init, dropout, and the targets among BLOCK_TARGETS ("q", "k", "v",
            "o", "fc1", "fc2"; None: all six; (): none); None means ``LoRAConfig()``.
        trainable: "lora" (default), "all" (every array, frozen ones included), or a list of keys.
        seed, backend, dtype: host-side seeded init, the array backend, float64 or float32.
    """

    config_class = BlockConfig
    usage = "TransformerBlock(BlockConfig(d_model, n_head), LoRAConfig(r=...))"

    def __init__(self, config: BlockConfig, lora: LoRAConfig | None = None, *,
                 trainable="lora", seed=0, backend=None, dtype=None):
        xp = _backend.get_xp(backend)
        dtype = _backend.resolve_dtype(dtype)
        self.config, self.lora = config, check_configs(self, config, lora)
        self.d_model, self.n_head, self.d_ff = config.d_model, config.n_head, config.d_ff
        short = self.lora.pick_targets(BLOCK_TARGETS, what="block layers")
        self.params = init_block(_backend.host_rng(seed), self.d_model, self.d_ff, xp, dtype)
        self.targets = tuple(add_factors(self.params, lora_rng(seed), self.lora, self.d_model,
                                         self.d_ff, short, xp=xp, dtype=dtype))
        self._set_dropout(seed)
        self._set_trainable(trainable)

    def _check_input(self, x):
        validate.array(x, "x", f"a real array of shape (N, T, d_model={self.d_model})",
                       kind="fiu", xp=self.xp)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x: expected shape (N, T, d_model={self.d_model}), "
                             f"got {tuple(x.shape)}")

    def forward(self, x):
        """x (N, T, d_model) -> (out (N, T, d_model), cache)."""
        self._check_input(x)
        return block_forward(x, self.live_params(), "", self.n_head, self.scale,
                             self.lora_dropout())

    def backward(self, dout, cache):
        """dout (N, T, d_model) -> grads: a dict with exactly the trainable keys."""
        self.refuse_if_merged("backward")
        grads = {}
        block_backward(dout, cache, set(self.trainable), grads, need_dx=False)
        return {k: grads[k] for k in self.trainable}

    def backward_with_input(self, dout, cache):
        """-> (dx, grads): also the gradient with respect to the block's input x."""
        self.refuse_if_merged("backward")
        grads = {}
        dx = block_backward(dout, cache, set(self.trainable), grads, need_dx=True)
        return dx, {k: grads[k] for k in self.trainable}

    def __repr__(self) -> str:
        return (f"TransformerBlock(d_model={self.d_model}, n_head={self.n_head}, d_ff={self.d_ff}, "
                f"targets={list(self.targets)}, r={self.lora.r}, scale={self.scale:g}, "
                f"init={self.lora.init}, trainable={self.n_params(self.trainable)} of "
                f"{self.n_params()} numbers)")
