"""Lesson 6's exercises, solved. Try them in the lesson first."""

import numpy as np


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
