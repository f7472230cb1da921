"""tinylora.shift: the quick LoRA vs LoRA+ comparison on a low-rank shift (a README example)."""

import math

from tinylora.shift import compare, lowrank_shift_task


def test_compare_trains_both_ratios_from_the_same_start():
    """Both runs start at the frozen model (B = 0): same first loss; both then learn."""
    curves = compare(steps=15)
    assert set(curves) == {1.0, 16.0}
    assert curves[1.0][0] == curves[16.0][0]
    for losses in curves.values():
        assert len(losses) == 15 and all(math.isfinite(v) for v in losses)
        assert losses[-1] < losses[0]


def test_the_target_is_a_low_rank_shift_of_the_frozen_model():
    x, y, weights = lowrank_shift_task(n_points=8)
    assert x.shape == (8, 16) and y.shape == (8, 4) and len(weights) == 3
