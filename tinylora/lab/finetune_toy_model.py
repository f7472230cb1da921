"""The fine-tuning toy with its frozen part computed once: the same numbers as the LoRA MLP,
several times cheaper per step.

    h = relu(x W_in)                       frozen: the same at every step
    P = h W_mid                            frozen: the same at every step
    z = relu(P + scale (h A) B)            the LoRA layer ("fc2"): only A and B train
    f = z W_out                            the readout ("fc3")

`LoRAMLP(MLPConfig(d, [n, n], 1), LoRAConfig(targets=["fc2"]))` computes ``h`` and ``h W_mid``
again at every step, an (N, n) x (n, n) product that costs more than everything else. Nothing
below the LoRA layer trains, so `ToyModel` computes them once per input array (the training
and test inputs, given when the model is built) and each step costs O(N n r) plus the
element-wise passes. Forward and backward reuse the library's pieces: the LoRA layer's backward
is `tinylora.layers.lora_linear_backward` (through `tinylora.projection.proj_backward`, the
frozen path's products skipped), the readout is `proj_forward`/`proj_backward` (a plain
linear layer). The parameter keys are the LoRA MLP's (``fc1.W``, ``fc2.W``, ``fc3.W``,
``fc2.A``, ``fc2.B``), so a grid or a coordinate check cannot tell the two apart
(`tests/test_finetune_toy_model.py` checks outputs and gradients against the LoRA MLP). Its
cache holds the LoRA layer as a projection does, so `tinylora.lab.deltas.projection_inputs`
reads Z = h.
"""

from __future__ import annotations

from tinylora.backend import xp_of
from tinylora.layers import relu_backward, relu_forward
from tinylora.lora import LoRAConfig, LoRAModel
from tinylora.models import MLPConfig
from tinylora.projection import proj_backward, proj_forward

LAYER = "fc2"  # the LoRA layer's name (the middle layer of the LoRA MLP it mirrors)


def frozen_part(w_in, w_mid, x) -> tuple:
    """(x, h, P) with h = relu(x W_in) and P = h W_mid: what `ToyModel` caches for input x."""
    h, _ = relu_forward(x @ w_in)  # [..., d] -> [..., n]
    return x, h, h @ w_mid  # [..., n] -> [..., n]


class ToyModel(LoRAModel):
    """``x -> relu(x W_in) -> relu(P + scale (h A) B) -> f`` with P = h W_mid cached.

    Args:
        weights: [W_in (d, n), W_mid (n, n), W_out (n, 1)], frozen.
        A, B: the factors' starting values, (n, r) and (r, n) (copied into every stack copy).
        frozen: [(x, h, P), ...] from `frozen_part` for the inputs it will see (training and
            test inputs), computed once per task; any other input is computed at each forward.
        stack: leading shape of independent LoRA copies (see `tinylora.lab.grid`).
    """

    def __init__(self, weights, A, B, frozen=(), stack=()):
        w_in, w_mid, w_out = weights
        xp = xp_of(w_in)
        self.lora = LoRAConfig(r=int(A.shape[-1]), targets=(LAYER,))  # scale 1, as in Eq. 3
        self.config = MLPConfig(w_in.shape[0], [w_mid.shape[0]] * 2, w_out.shape[1])  # LoRAMLP's
        self.targets, self.stack = (LAYER,), tuple(stack)
        self.params = {"fc1.W": w_in, "fc2.W": w_mid, "fc3.W": w_out,
                       "fc2.A": xp.broadcast_to(A, (*self.stack, *A.shape)).copy(),
                       "fc2.B": xp.broadcast_to(B, (*self.stack, *B.shape)).copy()}
        self._frozen_inputs = list(frozen)  # not `_frozen`: LoRAModel's merge keeps W there
        self._set_trainable("lora")

    def frozen_part(self, x):
        """The cached (h, P) of an input given at build time, else computed now."""
        for cached_x, h, P in self._frozen_inputs:
            if cached_x is x:
                return h, P
        return frozen_part(self.params["fc1.W"], self.params["fc2.W"], x)[1:]

    def forward(self, x):
        """x (N, d) -> (f (*stack, N, 1), cache)."""
        params, s = self.params, self.scale
        h, P = self.frozen_part(x)
        z_a = h @ params["fc2.A"]  # [N, n] -> [*S, N, r]   the paper's Z_A
        pre = (s * z_a) @ params["fc2.B"]  # [*S, N, r] -> [*S, N, n]
        pre += P  # the frozen path, computed once
        z, relu_cache = relu_forward(pre)
        f, out_cache = proj_forward(z, params, "fc3", s)  # [*S, N, n] -> [*S, N, 1]
        inner = (h, params["fc2.W"], None, params["fc2.A"], params["fc2.B"], z_a, s, None)
        lora_cache = (LAYER, True, inner)  # what a projection leaves: (name, is_lora, inner)
        return f, [lora_cache, relu_cache, out_cache]

    def backward(self, dout, cache):
        """dout (*stack, N, 1) -> {"fc2.A": dA, "fc2.B": dB}."""
        lora_cache, relu_cache, out_cache = cache
        trainable, grads = set(self.trainable), {}
        dz = proj_backward(dout, out_cache, trainable, grads)  # through the frozen readout
        dpre = relu_backward(dz, relu_cache)
        proj_backward(dpre, lora_cache, trainable, grads, need_dx=False)  # nothing below trains
        return {k: grads[k] for k in self.trainable}

    def __repr__(self) -> str:
        n = self.params["fc2.W"].shape[0]
        stack = f", stack={self.stack}" if self.stack else ""
        cached = len(self._frozen_inputs)
        return (f"ToyModel({self.params['fc1.W'].shape[0]} -> {n} -> {n} -> 1, LoRA r="
                f"{self.lora.r} on fc2, frozen part cached for {cached} inputs{stack})")

