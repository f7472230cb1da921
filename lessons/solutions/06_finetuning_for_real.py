"""Lesson 6's exercises, solved. Try them in the lesson first."""

import math


def merge(W, A, B, scale):
    """The merged weight of one LoRA projection, (d_in, d_out)."""
    return W + scale * A @ B  # [d_in, r] @ [r, d_out] -> [d_in, d_out]


def adapter_share(d, r):
    """LoRA numbers / frozen W numbers, for one block."""
    lora = 4 * r * (d + d) + r * (d + 4 * d) + r * (4 * d + d)  # q, k, v, o; fc1; fc2
    return lora / (4 * d * d + 2 * 4 * d * d)  # = 18 r d / (12 d^2) = 1.5 r / d


def lora_scale(alpha, r, rslora=False):
    """alpha / r, or alpha / sqrt(r) for rsLoRA."""
    return alpha / (math.sqrt(r) if rslora else r)
