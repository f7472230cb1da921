"""`tinylora balance`: the rates at which moving A and moving B change a LoRA layer's output by
the same amount, found at each width, and how they scale with the width.

At step t of an Adam run from the frozen model, RMS(delta1) is what A's update did to the LoRA
layer's output and RMS(delta2) what B's did (`tinylora.lab.deltas`). For a target size c, the
*balanced rates* (eta_A*, eta_B*) are where both equal c, averaged over seeds (each seed its own
frozen model, data and init). `tinylora.lab.predictions` derives their exponents: eta_A* ~ n^-1,
eta_B* ~ n^0, ratio ~ n^1, whatever the readout, for Init[1] and Init[2]. That counting holds
for small updates at early steps; measuring a table of (t, c) shows where it stops, with the
reason measured at each root (eta_A * n, how far the features Z A moved, how far B moved from
its init, how far the layer's input and the model's output moved).

The roots are found by `tinylora.lab.roots.solve` on the log-rates: a lattice scan that counts
the crossings of the two contours (and says "multiple" or "none" rather than guess), then Newton
steps until both sizes are within 0.1 % of c. Every target (t, c, layer) at one width shares the
same training runs: one run of max(t) steps gives every step and layer. The scan of the next
width starts around the previous widths' roots, extrapolated (nothing of the theory goes in).

Models (`MODELS`):
    toy    the fine-tuning toy, one LoRA layer (`tinylora.lab.finetune_toy`, frozen part cached),
           Y = sin(mean X), readout sp or mup, Init[1] or Init[2]; every rate pair of a width
           trained at once in a stack
    mlp    the coordinate check's LoRA MLP, LoRA on fc2 and fc3 (`coordcheck.mlp_setup`); each
           layer's root found separately (the rates apply to both layers)
    block  the Transformer block, LoRA on q, k, v, o, fc1, fc2 (`coordcheck.block_setup`), each
           layer separately; one rate pair at a time (the block has no stack)

`n_points` is the batch: points for the toy and the MLP, tokens for the block (sequences of 16).
It matters through the *alignment* of A's step with its inputs (`tinylora.lab.alignment`): the
counting's eta_A* ~ n^-1 needs n well above the independent inputs in a batch (or inputs that
share a direction), so every width also records the alignment of A's first Adam step per layer
(mean over seeds), and the report sets the roots against the prediction that follows from it.

Each (setting, width) is saved under ``--out/parts`` as it finishes (`tinylora.run.records`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from tinylora.lab import alignment, coordcheck, roots
from tinylora.lab.deltas import DIAGNOSTICS, projection_inputs, trajectory
from tinylora.lab.finetune_toy import toy_task
from tinylora.lab.fit import loglog_slope

MODELS = ("toy", "mlp", "block")
SETTINGS = {  # model -> the (readout, init) pairs it is run with
    "toy": (("sp", "zero_B"), ("mup", "zero_B"), ("sp", "zero_A"), ("mup", "zero_A")),
    "mlp": (("sp", "zero_B"),), "block": (("none", "zero_B"),)}
WIDTHS = {"toy": tuple(2**k for k in range(6, 13)), "mlp": tuple(2**k for k in range(6, 13)),
          "block": tuple(2**k for k in range(5, 11))}
FAST_WIDTHS = {"toy": (16, 32, 64), "mlp": (16, 32, 64), "block": (16, 32)}
STEPS = {"toy": (2, 3, 5, 10), "mlp": (2, 3), "block": (2, 3)}
SIZES = {"toy": (0.003, 0.01, 0.05), "mlp": (0.003, 0.01, 0.05), "block": (0.01,)}
CHUNK_ELEMENTS = 2**22  # activations per stacked pass (copies x points x width): 32 MB each
START = ((-14, -2), (-8, 0))  # the first width's scan: eta_A 1e-7..1e-1, eta_B 1e-4..1
MARGIN = {"toy": 3, "mlp": 2, "block": 2}  # later widths: the extrapolated root +- this many
# lattice steps (1.5 decades for the cheap toy, 1 decade where a rate pair costs seconds)
QUANTITIES = ("delta1", "delta2", "Z_A", *DIAGNOSTICS, "output_moved")
BLOCK_T = 16  # the block's sequence length: its batch is n_points / 16 sequences


@dataclass(frozen=True)
class BalanceConfig:
    """Everything that changes the numbers of one setting (not the widths, not the backend)."""

    model: str = "toy"
    readout: str = "sp"
    init: str = "zero_B"
    steps: tuple = STEPS["toy"]
    sizes: tuple = SIZES["toy"]
    seeds: int = 4
    n_points: int = 64  # points (toy, mlp) or tokens (block) per batch
    lattice_step: float = 0.5  # decades between scan points
    tol: float = 1e-3  # both sizes within 0.1 % of c
    dtype: str = "float64"

    @property
    def name(self) -> str:
        init = {"zero_B": "init1", "zero_A": "init2"}[self.init]
        return self.model if self.model != "toy" else f"toy-{self.readout}-{init}"


def setup(cfg: BalanceConfig, width: int, seed: int, copies: int, backend_name=None, task=None):
    """The model at one width with `copies` copies of one seed's adapter init (one if the model
    has no stack), and its data, as a `coordcheck.CoordSetup`."""
    if cfg.model == "toy":
        task = task or _toy_task(cfg, width, seed, backend_name)
        model = task.build((copies,))
        for k, v in task.adapter_init(seed).items():
            model.params[k][...] = v
        return coordcheck.CoordSetup(model, task.x_train, task.y_train, projection_inputs)
    if cfg.model == "mlp":
        return coordcheck.mlp_setup(width, seed, backend_name, cfg.dtype, cfg.n_points,
                                    stack=(copies,))
    return coordcheck.block_setup(width, seed, backend_name, cfg.dtype,
                                  n_seq=cfg.n_points // BLOCK_T, T=BLOCK_T)


def _toy_task(cfg, width, seed, backend_name):
    return toy_task(width, "finetune", "adam", steps=1, record_steps=(), n_train=cfg.n_points,
                    n_test=1, model_seed=seed, readout=cfg.readout, init=cfg.init, cached=True,
                    backend_name=backend_name, dtype=cfg.dtype)


class Evaluator:
    """``evaluate(points)`` for `tinylora.lab.roots.solve`: train every (eta_A, eta_B) of
    `points` for max(steps) Adam steps, each seed, and return per point {"t:layer": {quantity:
    mean over seeds}} (a mean is inf if one seed diverged, None if a quantity is undefined)."""

    def __init__(self, cfg: BalanceConfig, width: int, backend_name=None, steps=None):
        self.cfg, self.width, self.backend = cfg, width, backend_name
        self.steps = steps or max(cfg.steps)
        self.tasks = {}  # the toy's frozen part is computed once per seed

    def chunk(self) -> int:
        if self.cfg.model == "block":
            return 1
        return max(1, CHUNK_ELEMENTS // (self.cfg.n_points * self.width))

    def _one_seed(self, points, seed) -> list[dict]:
        rows, size = [], self.chunk()
        if self.cfg.model == "toy" and seed not in self.tasks:
            self.tasks[seed] = _toy_task(self.cfg, self.width, seed, self.backend)
        for lo in range(0, len(points), size):
            part = points[lo:lo + size]
            s = setup(self.cfg, self.width, seed, len(part), self.backend, self.tasks.get(seed))
            stacked = bool(getattr(s.model, "stack", ()))
            eta_a = [a for a, _ in part] if stacked else part[0][0]  # part: (eta_A, eta_B) pairs
            eta_b = [b for _, b in part] if stacked else part[0][1]
            traj = trajectory(s, eta_a, eta_b, self.steps)
            for i in range(len(part)):
                rows.append({f"{t}:{layer}": {q: (row["model"] if q == "output_moved"
                                                  else values)[q][i] for q in QUANTITIES}
                             for t, row in enumerate(traj, start=1)
                             for layer, values in row.items() if layer != "model"})
        return rows

    def __call__(self, points) -> list[dict]:
        per_seed = [self._one_seed(list(points), seed) for seed in range(self.cfg.seeds)]
        return [{key: {q: _mean([r[i][key][q] for r in per_seed]) for q in QUANTITIES}
                 for key in per_seed[0][i]} for i in range(len(points))]


def _mean(values):
    if any(v is None for v in values):
        return None
    return math.inf if any(not math.isfinite(v) for v in values) else sum(values) / len(values)


def layers(cfg: BalanceConfig, width: int = 16) -> list[str]:
    """The LoRA layers the model's roots are found for."""
    s = setup(cfg, width, 0, 1)
    return list(s.model.targets)


def targets(cfg: BalanceConfig, layer_names) -> list[tuple]:
    """[("t:layer", c), ...]: every step, size and layer of the configuration."""
    return [(f"{t}:{layer}", c) for layer in layer_names for t in cfg.steps for c in cfg.sizes]


def _windows(previous: list, n_targets: int, width: int, step: float, margin: int) -> list:
    """Where each target's scan starts: around the root the previous widths extrapolate to."""
    out = []
    for k in range(n_targets):
        known = [(payload["width"], payload["roots"][k]) for payload in previous
                 if payload["roots"][k]["status"] == "ok"][-2:]
        if not known:
            out.append(START)
            continue
        guess = []
        for rate in ("eta_A", "eta_B"):
            logs = [(math.log10(w), math.log10(r[rate])) for w, r in known]
            slope = 0.0 if len(logs) < 2 else (logs[1][1] - logs[0][1]) / (logs[1][0] - logs[0][0])
            guess.append(round((logs[-1][1] + slope * (math.log10(width) - logs[-1][0])) / step))
        out.append(tuple((g - margin, g + margin) for g in guess))
    return out


def solve_width(cfg: BalanceConfig, width: int, previous: list, backend_name=None) -> dict:
    """Every target's root at one width. -> {"width", "roots", "alignment" ({layer: A's first
    step's alignment, mean over seeds}), "evaluations", "seconds"}."""
    start = time.perf_counter()
    names = layers(cfg)
    tg = targets(cfg, names)
    evaluate = Evaluator(cfg, width, backend_name)
    lattice = roots.Lattice(evaluate, cfg.lattice_step)
    windows = _windows(previous, len(tg), width, cfg.lattice_step, MARGIN[cfg.model])
    found = roots.solve(evaluate, tg, windows,
                        step=cfg.lattice_step, tol=cfg.tol, lattice=lattice)
    for r in found:
        t = int(r["key"].split(":")[0])
        r.update(t=t, layer=r["key"].split(":", 1)[1], window=[list(w) for w in r["window"]])
        if r["eta_A"] is not None:
            r["eta_A_n"] = r["eta_A"] * width
            r["ratio"] = r["eta_B"] / r["eta_A"]
    per_seed = [alignment.first_step(setup(cfg, width, seed, 1, backend_name))
                for seed in range(cfg.seeds)]
    return {"width": width, "roots": found,
            "alignment": {t: sum(a[t] for a in per_seed) / len(per_seed) for t in names},
            "evaluations": lattice.evaluations, "seconds": time.perf_counter() - start}


def run(cfg: BalanceConfig, widths, out, backend_name=None, on_width_done=None,
        progress=None) -> list:
    """Every width in order (each continues from the roots before it), reusing saved parts.
    `progress`: the command's `tinylora.run.progress.Progress` (a unit per part's key)."""
    payloads = []
    for width in widths:
        payloads.append(out.cached(f"{cfg.name}-width{width}",
                                   lambda w=width: solve_width(cfg, w, payloads, backend_name),
                                   what=f"width {width}"))
        if progress is not None:
            progress.done(f"{cfg.name}-width{width}")
        if on_width_done is not None:
            on_width_done(width)
    return payloads


def exponents(payloads: list, k: int) -> dict:
    """The fitted exponents of target k's eta_A*, eta_B*, ratio and product over the widths
    where it has a unique root: {rate: {"slope", "interval", "widths"}} (None: fewer than 2)."""
    ok = [(payload["width"], payload["roots"][k]) for payload in payloads
          if payload["roots"][k]["status"] == "ok"]
    out = {}
    for rate in ("eta_A", "eta_B", "ratio", "product"):
        pts = [(w, r["eta_A"] * r["eta_B"] if rate == "product" else r[rate]) for w, r in ok]
        fit = loglog_slope(*zip(*pts)) if len(pts) >= 2 else None
        out[rate] = None if fit is None else {
            "slope": fit.slope, "interval": None if fit.interval is None else list(fit.interval),
            "widths": [w for w, _ in pts]}
    return out
