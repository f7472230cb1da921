"""The best ratio's bootstrap with every ratio's learning rate chosen again inside each draw.

Each ratio's lr was chosen on two tuning seeds; a different pair could have kept a neighbour on
the lattice, and a wrong neighbour costs about as much as the effects the study measures. A
bootstrap that redraws only the evaluation seeds, at the kept lrs, leaves that choice out of the
interval. Here one draw (`draw`) redraws both:

1. the tuning seeds, with replacement, and the evaluation seeds, with replacement;
2. per ratio, the lr with the lowest mean final loss over the drawn tuning seeds on that
   ratio's lattice (ties: the smaller lr, as the study's rule);
3. per ratio, the held-out loss at that lr: the drawn evaluation seeds' mean at the kept lr
   (the only lr they were run at), plus what the move costs on the lattice: the difference
   between the chosen and the kept lr, averaged over all the tuning seeds (the drawn ones alone
   would price the move by the very seeds that preferred it, and always find it free; the kept
   lr is the lowest of the full average, so a move is never priced below zero). When the draw
   keeps the study's lr, this is the plain bootstrap of the evaluation seeds.

-> the profile of log10 held-out loss against the ratios, one number per ratio, that
`tinylora.lab.optimum.locate_profile` fits in each draw. Everything comes from the recorded runs
(records.json), nothing is run. Host floats only.
"""

from __future__ import annotations

import math


def _mean(values) -> float:
    values = list(values)
    return math.inf if any(not math.isfinite(v) for v in values) else sum(values) / len(values)


def ratio_runs(runs: list[dict], cfg: dict, kept_lr: float, **setting) -> tuple[dict, dict]:
    """({lr: {tuning seed: final loss}} for the lrs every tuning seed ran, {evaluation seed:
    final loss at the kept lr}) for one setting (a ratio at a width and init)."""
    lattice, held = {}, {}
    for r in runs:
        if all(r.get(k) == v for k, v in setting.items()):
            if r["seed"] in cfg["tune_seeds"]:
                lattice.setdefault(r["lr"], {})[r["seed"]] = r["final_loss"]
            elif r["seed"] in cfg["eval_seeds"] and r["lr"] == kept_lr:
                held[r["seed"]] = r["final_loss"]
    complete = {lr: v for lr, v in lattice.items() if len(v) == len(cfg["tune_seeds"])}
    return complete, held


def draw(per_ratio: list[tuple], cfg: dict, kept: list[float]):
    """rng -> one draw's profile (list of log10 held-out loss, one per ratio; inf where the
    chosen lr diverged). `per_ratio`: `ratio_runs` of each ratio; `kept`: each ratio's kept lr."""
    tune, evals = list(cfg["tune_seeds"]), list(cfg["eval_seeds"])

    def one(rng) -> list:
        t = [tune[i] for i in rng.integers(0, len(tune), len(tune))]
        e = [evals[i] for i in rng.integers(0, len(evals), len(evals))]
        curve = []
        for (lattice, held), lr_kept in zip(per_ratio, kept):
            means = {lr: _mean(lattice[lr][s] for s in t) for lr in sorted(lattice)}
            lr = min(means, key=means.get)  # sorted, so ties go to the smaller lr
            cost = 0.0 if lr == lr_kept else (_mean(lattice[lr].values())
                                              - _mean(lattice[lr_kept].values()))
            loss = _mean(held[s] for s in e) + cost
            curve.append(math.log10(loss) if math.isfinite(loss) and loss > 0 else math.inf)
        return curve

    return one
