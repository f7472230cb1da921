"""tinylora.lab.shift: the quick LoRA vs LoRA+ comparison on a low-rank shift (a README example)."""

import math

import numpy as np

from tinylora import backend
from tinylora.lab.shift import compare, lowrank_shift_task
from tinylora.models import LoRAMLP


def test_compare_trains_both_ratios_from_the_same_start():
    """Both runs start at the frozen model (B = 0): same first loss; both then learn."""
    curves = compare(steps=15)
    assert set(curves) == {1.0, 16.0}
    assert curves[1.0][0] == curves[16.0][0]
    for losses in curves.values():
        assert len(losses) == 15 and all(math.isfinite(v) for v in losses)
        assert losses[-1] < losses[0]


def test_the_target_is_a_rank_2_shift_that_lora_on_fc2_can_fit_exactly():
    """The target is the frozen MLP with W2 + U V (rank 2): the frozen model misses it, and a
    rank-2 LoRA on fc2 whose B A equals that shift reproduces it exactly (so LoRA can fit it)."""

    from tinylora.lora import LoRAConfig
    from tinylora.models import MLPConfig

    x, y, weights = lowrank_shift_task(n_points=8)
    assert x.shape == (8, 16) and y.shape == (8, 4) and len(weights) == 3
    frozen = LoRAMLP(MLPConfig(16, [64, 64], 4), LoRAConfig(targets=()), weights=weights)
    assert not np.allclose(frozen.forward(x)[0], y)
    rng = backend.host_rng(1)  # the shift, drawn exactly as lowrank_shift_task draws it
    U = backend.normal(rng, (64, 2), 1.0, np)
    V = backend.normal(rng, (2, 64), 1.0 / 8.0, np)
    lora = LoRAMLP(MLPConfig(16, [64, 64], 4), LoRAConfig(r=2, alpha=2.0, targets=["fc2"]),
                   weights=weights)
    lora.params["fc2.A"][...], lora.params["fc2.B"][...] = U, V  # scale = alpha / r = 1
    np.testing.assert_allclose(lora.forward(x)[0], y, rtol=1e-12, atol=1e-12)
