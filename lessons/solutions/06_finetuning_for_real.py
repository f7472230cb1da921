"""Lesson 6's exercises, solved. Try them in the lesson first."""

import numpy as np

from tinylora.lora import LoRAConfig
from tinylora.text.pretrain import build_model, load_base


def held_out(tuning, evaluation):
    """-> (the rate chosen on the tuning seeds, its mean loss on the evaluation seeds)."""
    means = {lr: float(np.mean(losses)) for lr, losses in tuning.items()}
    rate = min(sorted(means), key=means.get)  # chosen on the tuning seeds only (ties: smaller)
    return rate, float(np.mean(evaluation[rate]))  # reported on seeds the choice never saw


def init2_first_step(eta_A, lr_ratio):
    """-> (the gradient exactly zero at step 1, median |move| of A's entries, max |move| of B's)."""
    # Init[2]: A = 0, so x A = 0 and dB = scale (x A)^T dy = 0 exactly, while dA =
    # scale x^T (dy B^T) is not. Adam's first step moves each entry with a non-zero gradient by
    # lr g / (|g| + eps), about lr: A's entries by eta_A; B, with a zero gradient, not at all.
    return "dB", eta_A, 0.0


def speedup_of_pair(steps, loss_lora, loss_plus):
    """-> steps LoRA needs to reach the target / steps LoRA+ needs."""
    target = max(loss_lora[-1], loss_plus[-1])  # the worse final loss: both curves reach it

    def steps_to(losses):
        for i, (t, loss) in enumerate(zip(steps, losses)):
            if loss <= target:
                if i == 0:
                    return float(t)
                t0, l0 = steps[i - 1], losses[i - 1]
                return t0 + (t - t0) * (l0 - target) / (l0 - loss)  # linear between evaluations
        raise ValueError("never reached")

    return steps_to(loss_lora) / steps_to(loss_plus)


# Inline question: under Init[1] (B = 0) only B moves at step 1 (dA = 0 exactly), at a pace set
# by eta_B; under Init[2] (A = 0) only A moves (dB = 0, exercise 2), at a pace set by eta_A. A
# large ratio eta_B / eta_A, with eta_A tuned for it, gives Init[2]'s B a large rate once A has
# moved, while Init[1]'s first mover B is already the fast factor and the tuned eta_A shrinks to
# keep it stable, so A lags. That is a reason to expect the inits to want different ratios, not a
# proof: the figure shows four evaluation seeds at three widths of one model and one text, and
# says nothing about other models, widths or step counts.


# The experiments to try, solved.

def merged_logits(lm, pcfg, workdir, x):
    """-> the logits on x of a plain model whose weights are the base's with the adapter merged."""
    merged = build_model(pcfg, lora=LoRAConfig(targets=()), trainable="all")  # no factors
    load_base(merged, pcfg, workdir)  # the same frozen base
    for target in lm.targets:  # W + scale A B, once: the same sum lm.merged_weights() returns
        A, B = lm.params[f"{target}.A"], lm.params[f"{target}.B"]
        merged.params[f"{target}.W"][...] = lm.params[f"{target}.W"] + lm.scale * (A @ B)
    return merged.forward(x)[0]  # equal to lm's up to float32 round-off: x (W + s A B) is
    # x W + s (x A) B in another order of the same sums


def adapter_file(n_layer, d_model, r):
    """-> (arrays in the saved adapter, numbers in them, reloaded logits bit-identical: a bool)."""
    # Per block: q, k, v, o are d x d, so A (d x r) and B (r x d) hold 2 r d each; fc1 is
    # d x 4d and fc2 4d x d, r (d + 4d) each. 6 targets x 2 factors, 8 r d + 10 r d = 18 r d.
    # The file holds exactly these numbers (float32), so the fresh model computes the same
    # products on the same values: bit-identical.
    return 2 * 6 * n_layer, 18 * r * d_model * n_layer, True


def slow_B_ends():
    """-> "higher" or "lower": ratio 1/16's final loss against ratio 1's, same rate and seed."""
    # Under Init[1] (B = 0) only B moves at first (dA = 0 at step 1, lesson 1): at eta_A / 16
    # it moves 16 times slower, and A waits for it. Measured here on one seed and one rate.
    return "higher"


def trainable_fraction(targets):
    """-> trainable numbers with factors on `targets` / with factors on all six."""
    per_target = {"q": 2, "k": 2, "v": 2, "o": 2, "fc1": 5, "fc2": 5}  # in units of r d
    return sum(per_target[t] for t in targets) / 18  # q and v: 4 / 18 = 2 / 9
