"""A tiny GPT-style language model with LoRA: embeddings, pre-LN blocks, a final norm, a head.

    x      = tok_emb[tokens] + pos_emb[:T]           tokens (N, T) -> (N, T, d)
    x      = block_i(x)  for i = 0 .. n_layer-1      (`tinylora.block`)
    logits = ln_f(x) @ head.W                        (N, T, d) -> (N, T, V)

Trained with next-token softmax cross-entropy (mean over the N*T positions):

    loss, grads = loss_and_grads(lm, tokens[:, :-1], tokens[:, 1:], loss="cross_entropy")

Keys: ``tok_emb`` (V, d), ``pos_emb`` (context, d), ``blocks.{i}.ln1.g`` ...
``blocks.{i}.mlp.fc2.b``, ``ln_f.g``, ``ln_f.b``, ``head.W`` (d, V); LoRA factors
``blocks.{i}.attn.q.A`` etc., and ``tok_emb.A`` (V, r), ``tok_emb.B`` (r, d) when "tok_emb" is
a target (LoRA on the token table, `tinylora.embedding`). The base arrays are drawn from `seed`
alone, so a model with and without LoRA (any targets, any r) starts from the same base:
pretrain ``TinyLM(config, LoRAConfig(targets=()), trainable="all")``, save ``base_keys()``, then
load them into ``TinyLM(config, LoRAConfig(r=8))`` and fine-tune. With ``stack=(S,)`` every
factor is (S, 1, d_in, r): S fine-tunes of one frozen base at once, the 1 broadcast over the
batch, so every activation after the first LoRA layer is (S, N, T, d) (`tinylora.text.stacked`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinylora import backend as _backend
from tinylora import validate
from tinylora.block import (
    BLOCK_TARGETS,
    BlockConfig,
    add_factors,
    block_backward,
    block_forward,
    init_block,
    ln_backward,
)
from tinylora.embedding import (
    check_tokens,
    embedding_backward,
    embedding_forward,
    lora_embedding_backward,
    lora_embedding_forward,
)
from tinylora.layers import linear_backward, linear_forward, softmax
from tinylora.lora import (
    LoRAConfig,
    LoRAModel,
    check_configs,
    init_embedding_factors,
    lora_rng,
)
from tinylora.norms import layernorm_forward


@dataclass(frozen=True)
class LMConfig:
    """TinyLM's sizes: vocab_size, d_model, n_head (a divisor of d_model), n_layer blocks,
    context (the longest sequence the position table covers), d_ff (the blocks' MLP width; None
    means 4 * d_model). The block's sizes are checked by `BlockConfig`, once for both."""

    vocab_size: int
    d_model: int = 64
    n_head: int = 4
    n_layer: int = 2
    context: int = 64
    d_ff: int | None = None

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: each field set once, here
        set_(self, "vocab_size", validate.positive_int(self.vocab_size, "vocab_size"))
        block = BlockConfig(self.d_model, self.n_head, self.d_ff)  # d_model % n_head, d_ff
        set_(self, "d_model", block.d_model)
        set_(self, "n_head", block.n_head)
        set_(self, "d_ff", block.d_ff)
        set_(self, "n_layer", validate.positive_int(self.n_layer, "n_layer"))
        set_(self, "context", validate.positive_int(self.context, "context"))

    @property
    def block(self) -> BlockConfig:
        """The settings every block of the model shares."""
        return BlockConfig(self.d_model, self.n_head, self.d_ff)


class TinyLM(LoRAModel):
    """Token + position embeddings, `n_layer` pre-LN blocks, a final layer norm, an output head.

    Args:
        config: the sizes (`LMConfig`).
        lora: rank, alpha, init, dropout, and the targets: short names of the LoRA layers in
            every block ("q", "k", "v", "o", "fc1", "fc2"; None: all six; (): none), and
            "tok_emb" for LoRA on the token table (its A = 0, B random: `tinylora.embedding`);
            None means ``LoRAConfig()``.
        trainable: "lora" (default), "all" (pretraining), or an explicit list of keys.
        stack: (S,) for S independent sets of factors on the one base (see the module doc).
        seed, backend, dtype: host-side seeded init, the array backend, float64 or float32.
    Init: embeddings ~ N(0, 1), every W ~ N(0, 1/d_in) (attn.o, mlp.fc2 also / sqrt(2 n_layer)).
    """

    config_class = LMConfig
    usage = "TinyLM(LMConfig(vocab_size, d_model=...), LoRAConfig(r=...))"

    def __init__(self, config: LMConfig, lora: LoRAConfig | None = None, *, trainable="lora",
                 stack=(), seed=0, backend=None, dtype=None):
        xp = _backend.get_xp(backend)
        dtype = _backend.resolve_dtype(dtype)
        self.config, self.lora = config, check_configs(self, config, lora)
        c = config
        self.vocab_size, self.d_model, self.n_head = c.vocab_size, c.d_model, c.n_head  # shorthands
        self.n_layer, self.context, self.d_ff = c.n_layer, c.context, c.d_ff
        names = self.lora.pick_targets(BLOCK_TARGETS, named_only=("tok_emb",),
                                       what="block layers (or the token table)")
        short, embed = tuple(t for t in names if t != "tok_emb"), "tok_emb" in names
        self.stack = validate.stack(stack, forbid="LoRA on the token table" if embed else None)

        rng = _backend.host_rng(seed)
        p = {"tok_emb": _backend.normal(rng, (c.vocab_size, c.d_model), 1.0, xp, dtype),
             "pos_emb": _backend.normal(rng, (c.context, c.d_model), 1.0, xp, dtype)}
        for i in range(c.n_layer):
            p.update(init_block(rng, c.d_model, c.d_ff, xp, dtype, f"blocks.{i}.", c.n_layer))
        p["ln_f.g"], p["ln_f.b"] = xp.ones(c.d_model, dtype=dtype), xp.zeros(c.d_model, dtype=dtype)
        p["head.W"] = _backend.normal(rng, (c.d_model, c.vocab_size), c.d_model**-0.5, xp, dtype)
        self.params = p
        rng_lora = lora_rng(seed)
        self.targets = tuple(path for i in range(c.n_layer) for path in add_factors(
            p, rng_lora, self.lora, c.d_model, c.d_ff, short, f"blocks.{i}.", xp, dtype,
            (*self.stack, 1) if self.stack else ()))
        if embed:  # drawn after the blocks' factors: adding it leaves theirs as they were
            p["tok_emb.A"], p["tok_emb.B"] = init_embedding_factors(
                rng_lora, c.vocab_size, c.d_model, self.lora, xp, dtype)
            self.targets = ("tok_emb", *self.targets)
        self._set_dropout(seed)
        self._set_trainable(trainable)

    def base_keys(self) -> tuple:
        """Keys of every non-LoRA array: embeddings, W, b, layer norms, head."""
        adapters = set(self.adapter_keys())
        return tuple(k for k in self.params if k not in adapters)

    def forward(self, tokens):
        """tokens int (N, T) or (*stack, N, T), T <= context -> logits (*stack, N, T, V), cache"""
        tokens = self.xp.asarray(tokens)
        check_tokens(tokens, self.vocab_size, self.context, stack=self.stack)
        p, drop = self.live_params(), self.lora_dropout()  # merged: no factors; drop: or None
        x, c_emb = embedding_forward(tokens, p["tok_emb"], p["pos_emb"])  # [N,T] -> [N,T,d]
        c_lora_emb = None
        if "tok_emb.A" in p:  # LoRA on the token table: x += scale A[tokens] B
            dx_emb, c_lora_emb = lora_embedding_forward(tokens, p["tok_emb.A"], p["tok_emb.B"],
                                                        self.scale)
            x += dx_emb
        c_emb = (c_emb, c_lora_emb)
        c_blocks = []
        for i in range(self.n_layer):
            x, c = block_forward(x, p, f"blocks.{i}.", self.n_head, self.scale, drop)
            c_blocks.append(c)
        h, c_lnf = layernorm_forward(x, p["ln_f.g"], p["ln_f.b"], name="ln_f")
        logits, c_head = linear_forward(h, p["head.W"], None, name="head")  # [N,T,d] -> [N,T,V]
        return logits, (c_emb, c_blocks, c_lnf, c_head)

    def backward(self, dlogits, cache):
        """dlogits (N, T, V) -> grads: a dict with exactly the trainable keys.

        The chain rule from the head down: logits = ln_f(x_L) W_head, x_{i+1} = block_i(x_i),
        x_0 = embed(tokens). A layer passes a gradient down only when something below it trains;
        with LoRA only, block 0 never computes the gradient of its input.
        """
        self.refuse_if_merged("backward")
        (c_emb, c_lora_emb), c_blocks, c_lnf, c_head = cache
        t, grads, L = set(self.trainable), {}, self.n_layer
        # what trains, layer by layer (a layer's LoRA factors count as the layer's)
        head_trains = "head.W" in t
        lnf_trains = bool({"ln_f.g", "ln_f.b"} & t)
        block_trains = [any(k.startswith(f"blocks.{i}.") for k in t) for i in range(L)]
        embeddings_train = any(k.split(".")[0] in ("tok_emb", "pos_emb") for k in t)
        # a layer computes the gradient of its input only when something below it trains
        trains_below_block = [embeddings_train or any(block_trains[:i]) for i in range(L)]
        trains_below_lnf = embeddings_train or any(block_trains)
        trains_below_head = lnf_trains or trains_below_lnf

        # logits = h W_head, h = ln_f(x_L)
        dh, dW, _ = linear_backward(dlogits, c_head, need_dx=trains_below_head,
                                    need_dW=head_trains)  # [N,T,V] -> [N,T,d]
        if dW is not None:
            grads["head.W"] = dW
        dx = ln_backward(dh, c_lnf, "ln_f", t, grads, need_dx=trains_below_lnf)  # dx_L or None
        # x_{i+1} = block_i(x_i)
        for i in reversed(range(L)):
            dx = block_backward(dx, c_blocks[i], t, grads, need_dx=trains_below_block[i])
        # x_0 = tok_emb[tokens] (+ scale A[tokens] B) + pos_emb[:T]
        if embeddings_train:  # then dx_0 (N, T, d) was computed all the way down
            dtok, dpos = embedding_backward(dx, c_emb, need_dtok="tok_emb" in t,
                                            need_dpos="pos_emb" in t)
            grads.update({k: g for k, g in (("tok_emb", dtok), ("pos_emb", dpos))
                          if g is not None})
            if c_lora_emb is not None and {"tok_emb.A", "tok_emb.B"} & t:
                grads["tok_emb.A"], grads["tok_emb.B"] = lora_embedding_backward(dx, c_lora_emb)
        return {k: grads[k] for k in self.trainable}

    def generate(self, prompt, n_new: int, temperature: float = 0.0, seed: int = 0):
        """Extend `prompt` (int (T0,)) by `n_new` tokens -> int array (T0 + n_new,).

        temperature 0: greedy (the most likely next token). temperature > 0: sample from
        softmax(logits / temperature), drawn on the host with `seed`. The model reads only the
        last `context` tokens.
        """
        validate.stack(self.stack, forbid="generate")
        n_new = validate.integer(n_new, "n_new", low=0)
        temperature = validate.number(temperature, "temperature", low=0.0, low_ok=True,
                                      what="a number >= 0")
        given, prompt = prompt, self.xp.asarray(prompt)
        if prompt.ndim != 1 or prompt.size == 0 or prompt.dtype.kind not in "iu":
            validate.fail("prompt", "a non-empty 1-D array of integer token ids", given)
        rng = _backend.host_rng(seed)
        out = [int(t) for t in _backend.to_numpy(prompt)]
        training, self.training = self.training, False  # generation never drops: eval mode
        try:
            for _ in range(n_new):
                window = self.xp.asarray(out[-self.context:])[None, :]  # [1, T] crop to the context
                logits, _ = self.forward(window)
                last = logits[0, -1]  # [V] the next token's logits
                if temperature == 0:
                    out.append(int(last.argmax()))
                else:
                    probs = _backend.to_numpy(softmax(last / float(temperature))).astype("float64")
                    cdf = probs.cumsum()  # sample by inverting the cumulative distribution
                    out.append(min(int(cdf.searchsorted(rng.random() * cdf[-1], side="right")),
                                   self.vocab_size - 1))
        finally:
            self.training = training
        return self.xp.asarray(out)

    def __repr__(self) -> str:
        short = ["tok_emb"] * ("tok_emb" in self.targets) + sorted(
            {t.rsplit(".", 1)[1] for t in self.targets if t != "tok_emb"}, key=BLOCK_TARGETS.index)
        return (f"TinyLM(vocab_size={self.vocab_size}, d_model={self.d_model}, "
                f"n_head={self.n_head}, n_layer={self.n_layer}, context={self.context}, "
                f"d_ff={self.d_ff}, targets={short}, r={self.lora.r}, scale={self.scale:g}, "
                f"init={self.lora.init}, trainable={self.n_params(self.trainable)} of "
                f"{self.n_params()} numbers)")
