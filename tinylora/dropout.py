"""Dropout on the LoRA path, as PEFT and loralib place it: on the input of A only.

    y = x W + b + scale * (drop(x) A) B,     drop(x) = x * m,   m = keep / (1 - p),
    keep ~ Bernoulli(1 - p) per entry of x

The frozen path sees x itself; only the adapter sees the dropped copy. Dividing by 1 - p keeps
E[drop(x)] = x, so evaluation (no dropout) needs no rescaling. Backward: the mask is a constant,
so d drop(x) / dx = m: the LoRA path's contribution to dx is multiplied by m, and
dA = drop(x)^T dz_a (`tinylora.layers.lora_linear_backward`).

Masks are drawn on the host from one seeded generator per model (the backends see the same
masks), one per LoRA layer per forward, in the order the layers run. With p = 0, or in
evaluation mode, there is no `LoRADropout` at all: no mask is drawn and no extra pass is made.
"""

from __future__ import annotations

from tinylora import backend, validate


class LoRADropout:
    """Draws the scaled masks m = keep / (1 - p) for the LoRA layers of one model."""

    def __init__(self, p: float, seed):
        self.p = validate.probability(p, "lora_dropout")
        self.seed = seed
        self.rewind()

    def rewind(self) -> None:
        """Start the masks' stream again: the next forward draws the masks the first one drew
        (a gradient check holds the mask fixed this way)."""
        self.rng = backend.host_rng(self.seed)

    def mask(self, shape, xp, dtype):
        """keep / (1 - p) of `shape`, keep ~ Bernoulli(1 - p), on `xp` in `dtype`."""
        keep = self.rng.random(tuple(shape)) >= self.p  # host-side: the same on every backend
        return xp.asarray(keep * (1.0 / (1.0 - self.p)), dtype=dtype)

    def __repr__(self) -> str:
        return f"LoRADropout(p={self.p:g})"
