"""A named linear layer inside a params dict: ``x W + b``, plus ``scale (x A) B`` where it has LoRA.

The Transformer has many projections (``attn.q``, ``attn.k``, ..., ``mlp.fc2``), all kept in one
dict of arrays with dotted keys. These two functions look a projection up by name, call
`tinylora.layers.linear_forward` or `lora_linear_forward` (LoRA when ``<name>.A`` is in the dict),
and on the way back write the gradients that are asked for into a ``grads`` dict:

    y, cache = proj_forward(x, params, "attn.q", scale)        # x (..., d_in) -> y (..., d_out)
    dx = proj_backward(dy, cache, trainable, grads)            # grads["attn.q.A"] = ... etc.

A frozen array (its key not in `trainable`) gets no gradient and no buffer.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from tinylora.backend import xp_of
from tinylora.layers import (
    linear_backward,
    linear_forward,
    lora_linear_backward,
    lora_linear_forward,
)


class ProjCache(NamedTuple):
    """A projection's cache: its name, whether it has LoRA, and its layer's own cache."""

    name: str
    is_lora: bool
    inner: tuple  # `tinylora.layers.LoRACache`, or linear_forward's (x, W, b)


def proj_forward(x, params: dict, name: str, scale: float, dropout=None):
    """y = x W + b (+ scale (x A) B when ``<name>.A`` exists).   -> (y, ProjCache).

    `dropout`: a `tinylora.dropout.LoRADropout` (a mask for A's input is drawn) or None."""
    p, b = params, params.get(f"{name}.b")
    if f"{name}.A" in p:
        mask = None if dropout is None else dropout.mask(x.shape, xp_of(x), x.dtype)
        y, cache = lora_linear_forward(x, p[f"{name}.W"], b, p[f"{name}.A"], p[f"{name}.B"], scale,
                                       name=name, mask=mask)
        return y, ProjCache(name, True, cache)
    y, cache = linear_forward(x, p[f"{name}.W"], b, name=name)
    return y, ProjCache(name, False, cache)


def passes_none(backward):
    """Let a gradient that nobody needs pass through: given ``dy = None``, return None.

    The one mechanism that prunes a backward pass: each step is asked only for the input
    gradient that something below it uses (``need_dx``); one not asked for is None, and every
    step below it then computes nothing. The maths in each backward stays unconditional.
    """

    @functools.wraps(backward)
    def backward_or_none(dy, *args, **kwargs):
        return None if dy is None else backward(dy, *args, **kwargs)

    return backward_or_none


@passes_none
def proj_backward(dy, cache, trainable, grads: dict, need_dx: bool = True):
    """Write the trainable gradients of projection `name` into `grads`; -> dx (None if not asked).

    `trainable`: a set of keys. The LoRA factors' gradients come from `lora_linear_backward`
    (which always derives them); they are stored only when their key trains.
    """
    name, is_lora, inner = cache
    want = {"need_dx": need_dx, "need_dW": f"{name}.W" in trainable,
            "need_db": f"{name}.b" in trainable}
    if is_lora:
        dx, dW, db, dA, dB = lora_linear_backward(dy, inner, **want)
        for key, g in ((f"{name}.A", dA), (f"{name}.B", dB)):
            if key in trainable:
                grads[key] = g
    else:
        dx, dW, db = linear_backward(dy, inner, **want)
    if dW is not None:
        grads[f"{name}.W"] = dW
    if db is not None:
        grads[f"{name}.b"] = db
    return dx


def trains(trainable, *layers: str) -> bool:
    """True when some array of one of `layers` (``attn.q``, ``ln1``, ...) is trainable."""
    return any(k.rsplit(".", 1)[0] in layers for k in trainable)
