"""Learning-rate schedules and global-norm gradient clipping, as fine-tuning scripts run them.

    factor(t) = t / warmup                                  t < warmup       (linear warm-up)
              = 1                                           "constant"
              = floor + (1 - floor) (1 + cos(pi p)) / 2,    "cosine"
                        p = (t - warmup) / (total - warmup)
              = floor + (1 - floor) (1 - p)                 "linear"

`floor` (default 0) is where a decay ends: 0.1 takes the rate from base down to base / 10
(`tinylora.text.pretrain` trains its bases so).

t = 0 .. total - 1 counts the steps taken before this one (Hugging Face's
``get_cosine_schedule_with_warmup`` and ``get_linear_schedule_with_warmup``: the first warm-up
step has rate 0). `Schedule` multiplies **every** group's base rate by the same factor, so the
LoRA+ ratio lr_B / lr_A = lambda holds at every step: a schedule changes how fast, never which
factor is fast.

Clipping (PyTorch's ``clip_grad_norm_``): the norm of all gradients together,
``||g|| = sqrt(sum over arrays of sum g^2)``; when it exceeds `max_norm` every gradient is
multiplied by ``max_norm / (||g|| + 1e-6)``, so the direction is kept and only the length shrinks.
"""

from __future__ import annotations

import math

from tinylora import validate

DECAYS = ("constant", "cosine", "linear")


def lr_factor(t: int, total: int, warmup: int = 0, decay: str = "constant",
              floor: float = 0.0) -> float:
    """The multiplier of every base rate before step t (0-based) of a `total`-step run: a
    decay falls from 1 towards `floor`."""
    if t < warmup:
        return t / warmup  # linear warm-up from 0
    if decay == "constant" or total == warmup:
        return 1.0
    if decay == "cosine":  # cos(pi p), p = (t - warmup) / (total - warmup), in [0, 1)
        # Written in this order (and pi (t - warmup) / (total - warmup) so), floor 0.1 is
        # 0.1 + 0.45 (1 + cos(pi t / total)) to the last bit: (1 - 0.1) * 0.5 == 0.45 exactly.
        angle = math.pi * (t - warmup) / (total - warmup)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(angle))
    p = (t - warmup) / (total - warmup)  # progress through the decay, in [0, 1)
    return floor + (1.0 - floor) * (1.0 - p)


def check(total: int, warmup: int = 0, decay: str = "constant", clip=None) -> None:
    """Refuse, before anything runs, a warm-up longer than the run, an unknown decay, or a
    clipping norm <= 0 (None: no clipping)."""
    validate.steps_within(warmup, "warmup", validate.positive_int(total, "steps"))
    validate.choice(decay, "decay", DECAYS)
    if clip is not None:
        validate.positive(clip, "clip")


class Schedule:
    """Sets each group's rate of `opt` to base * `lr_factor` before each step: ``apply(t)``.

        sched = Schedule(opt, total=steps, warmup=10, decay="cosine")
        for t in range(steps):
            sched.apply(t)
            opt.step(grads)
    """

    def __init__(self, opt, total: int, warmup: int = 0, decay: str = "constant",
                 floor: float = 0.0):
        self.total = validate.positive_int(total, "total")
        self.warmup = validate.steps_within(warmup, "warmup", self.total)
        self.decay = validate.choice(decay, "decay", DECAYS)
        self.floor = validate.number(floor, "floor", low=0.0, low_ok=True, high=1.0)
        self.opt = opt
        self.base = [g.setdefault("initial_lr", g["lr"]) for g in opt.groups]  # rates at factor 1

    def apply(self, t: int) -> float:
        """Write base * factor(t) into every group; -> factor(t)."""
        t = validate.integer(t, "t", low=0)
        factor = lr_factor(t, self.total, self.warmup, self.decay, self.floor)
        for g, base in zip(self.opt.groups, self.base):
            g["lr"] = base * factor  # a float stays a float; an array keeps its dtype
        return factor

    def __repr__(self) -> str:
        return (f"Schedule(total={self.total}, warmup={self.warmup}, decay={self.decay!r}, "
                f"floor={self.floor:g}, groups={len(self.base)})")


def global_norm(grads: dict) -> float:
    """sqrt(sum over every array of sum g^2): the length of all gradients as one vector."""
    return math.sqrt(sum(float((g * g).sum()) for g in grads.values()))


def clip_grad_norm(grads: dict, max_norm) -> float | None:
    """Scale every gradient in place by max_norm / (norm + 1e-6) when the global norm exceeds
    `max_norm` (PyTorch's rule). -> the norm before clipping. ``max_norm=None``: no clipping,
    no norm computed (-> None)."""
    if max_norm is None:
        return None
    max_norm = validate.positive(max_norm, "max_norm")
    norm = global_norm(grads)
    if norm > max_norm:
        coef = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= coef
    return norm
