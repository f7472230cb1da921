"""`tinylora coordcheck`: a coordinate check for LoRA, in the style of microsoft/mup's.

Train a model for a few Adam steps at several widths and, per LoRA layer and step t, record the
root-mean-square size of (row-vector form, Z the layer's input before the step, s = scale):

    delta1 = s (Z (A_t - A_{t-1})) B_{t-1}      what moving A did
    delta2 = s (Z A_{t-1}) (B_t - B_{t-1})      what moving B did
    delta3 = s (Z (A_t - A_{t-1})) (B_t - B_{t-1})
    Z_A = Z A_t (the r features),  Z_B = s Z_A B_t (the adapter's output)

Efficient, stable feature learning (`docs/paper.md`) means delta1 and delta2 stay Theta(1) as the
width grows: flat lines against log2(width). A slope > 0 is an explosion, < 0 a factor that stops
learning. Schedules (eta = --lr, n0 = the base width 64):

    shared      eta_A = eta_B = eta                        (LoRA)
    loraplus16  eta_A = eta, eta_B = 16 eta                 (LoRA+ with the paper's ratio)
    theory      eta_A = eta n0 / n, eta_B = 16 eta          (eta_A ~ 1/n, eta_B ~ 1; = LoRA+ at n0)

Models come from `MODELS`: name -> setup(width, seed, backend, dtype) returning a `CoordSetup`.
The LoRA MLP (`--model mlp`) and the Transformer block (`--model block`) are here; a model is
added by writing its setup (any model with ``params``, ``targets``, ``scale``,
``forward``/``backward`` works) and an ``inputs`` function that reads each LoRA layer's input out
of the forward cache.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from tinylora import backend
from tinylora.block import BlockConfig, TransformerBlock
from tinylora.lab import analytic_toy, plots
from tinylora.lab.deltas import QUANTITIES, projection_inputs, trajectory
from tinylora.lab.fit import loglog_slope
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.run.options import (
    CommonOptions,
    add_common_arguments,
    options_from_args,
    parse_list,
    positive_float,
    positive_int,
)
from tinylora.run.progress import Plan, timed
from tinylora.run.records import ResultsDir, markdown_table

SCHEDULES = ("shared", "loraplus16", "theory")
BASE_WIDTH = 64
WIDTHS = tuple(2**k for k in range(6, 13))
FAST_WIDTHS = tuple(2**k for k in range(6, 10))


@dataclass
class CoordSetup:
    """A model at one width with its data; ``inputs(model, cache) -> {target: Z}``."""

    model: object
    x: object
    y: object
    inputs: Callable


def mlp_setup(width: int, seed: int, backend_name=None, dtype=None, n_points: int = 64,
              stack=()):
    """5 -> n -> n -> n -> 1, ReLU, LoRA (r = 4, Init[1]) on the two n x n layers fc2 and fc3;
    frozen weights ~ N(0, 1/fan_in); X ~ N(0, I_5), Y = sin(mean(X)). With ``stack=(S,)``: S
    copies of the same adapter init on the same frozen model (one pair of rates each)."""
    config, lora = MLPConfig(5, [width, width, width], 1), LoRAConfig(r=4, targets=["fc2", "fc3"])
    model = LoRAMLP(config, lora, seed=seed, backend=backend_name, dtype=dtype)
    if stack:
        one, frozen = model, [model.params[f"{name}.W"] for name in model.layer_names]
        model = LoRAMLP(config, lora, weights=frozen, stack=stack, backend=backend_name,
                        dtype=dtype)
        for k in model.adapter_keys():
            model.params[k][...] = one.params[k]
    rng = backend.host_rng([seed, 1])
    x = backend.normal(rng, (n_points, 5), 1.0, model.xp, dtype)
    return CoordSetup(model, x, model.xp.sin(x.mean(axis=1, keepdims=True)), projection_inputs)


def block_setup(width: int, seed: int, backend_name=None, dtype=None, n_seq: int = 4,
                T: int = 16):
    """A pre-LN Transformer block of d_model = n (4 heads, d_ff = 4n), LoRA (r = 4, Init[1]) on
    q, k, v, o, fc1, fc2; x ~ N(0, 1) of shape (4, 16, n), a random regression target."""
    model = TransformerBlock(BlockConfig(width, 4), LoRAConfig(r=4), seed=seed,
                             backend=backend_name, dtype=dtype)
    rng = backend.host_rng([seed, 1])
    x = backend.normal(rng, (n_seq, T, width), 1.0, model.xp, dtype)
    y = backend.normal(rng, (n_seq, T, width), 1.0, model.xp, dtype)
    return CoordSetup(model, x, y, projection_inputs)


MODELS = {"mlp": mlp_setup, "block": block_setup}
DEFAULT_WIDTHS = {  # (default, --fast): the block's fc1 is n x 4n, so it stops at a smaller n
    "mlp": (WIDTHS, FAST_WIDTHS),
    "block": (tuple(2**k for k in range(6, 11)), tuple(2**k for k in range(5, 8))),
}


def rates(schedule: str, width: int, lr: float) -> tuple[float, float]:
    """(eta_A, eta_B) of a schedule at a width: the analytic toy's schedules
    (`tinylora.lab.analytic_toy.rates`) with the coordinate check's base width."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {list(SCHEDULES)}, got {schedule!r}")
    return analytic_toy.rates(schedule, width, lr, base_width=BASE_WIDTH)


def measure(setup: CoordSetup, eta_a: float, eta_b: float, steps: int) -> list[dict]:
    """Train `steps` Adam steps; -> rows {step, layer, quantity, value} for t = 1..steps
    (the sizes of `tinylora.lab.deltas.trajectory`, one model)."""
    return [{"step": t, "layer": layer, "quantity": q, "value": values[q][0]}
            for t, row in enumerate(trajectory(setup, eta_a, eta_b, steps), start=1)
            for layer, values in row.items() if layer != "model" for q in QUANTITIES]


def run(model_name: str = "mlp", widths=WIDTHS, seeds=(0, 1, 2), steps: int = 4,
        lr: float = 1e-2, schedules=SCHEDULES, backend_name=None, dtype=None,
        progress=None) -> list[dict]:
    """Every schedule, width and seed. -> records (one row per step, layer and quantity)."""
    if model_name not in MODELS:
        raise ValueError(f"model: expected one of {list(MODELS)}, got {model_name!r}")
    rows = []
    for sched in schedules:
        for width in widths:
            eta_a, eta_b = rates(sched, width, lr)
            for seed in seeds:
                setup = MODELS[model_name](width, seed, backend_name, dtype)
                rows += [{"model": model_name, "schedule": sched, "width": width, "seed": seed,
                          "eta_A": eta_a, "eta_B": eta_b, **r}
                         for r in measure(setup, eta_a, eta_b, steps)]
                if progress is not None:
                    progress.update(1)
    return rows


def run_plan(model_name: str, widths, seeds, steps: int, backend_name=None, dtype=None) -> Plan:
    """What `run` will do, timed here: at each width, building the model and one step of its
    trajectory (a run is the build and `steps` such steps); one unit per run, in run's order."""
    per_run = {}
    for width in widths:
        start = time.perf_counter()
        setup = MODELS[model_name](width, 0, backend_name, dtype)
        built = time.perf_counter() - start
        per_run[width] = built + steps * timed(lambda s=setup: measure(s, 1e-3, 1e-2, 1))
    costs = {(sched, w, seed): per_run[w] for sched in SCHEDULES for w in widths for seed in seeds}
    return Plan("coordcheck", "runs", costs, "a build and a step timed at each width")


def slopes(rows: list[dict], step: int | None = None) -> dict:
    """{schedule: {"<layer>.<quantity>": slope of log(mean RMS over seeds) on log(width)}}."""
    step = step or max(r["step"] for r in rows)
    groups: dict = {}
    for r in rows:
        if r["step"] == step:
            key = (r["schedule"], f"{r['layer']}.{r['quantity']}")
            groups.setdefault(key, {}).setdefault(r["width"], []).append(r["value"])
    out: dict = {}
    for (sched, q), by_width in groups.items():
        widths = sorted(by_width)
        means = [sum(by_width[w]) / len(by_width[w]) for w in widths]
        fit = loglog_slope(widths, means) if all(math.isfinite(m) for m in means) else None
        out.setdefault(sched, {})[q] = None if fit is None else fit.slope
    return out


# --------------------------------------------------------------------------------------------
# `tinylora coordcheck`


@dataclass(frozen=True)
class CoordcheckOptions(CommonOptions):
    """The options of `tinylora coordcheck` (`add_arguments` is the CLI's definition)."""

    out: str = "coordcheck-out"  # results folder
    model: str = "mlp"  # a name in MODELS: "block" or "mlp"
    steps: int | None = None  # Adam steps T; None: 4 (3 with fast)
    lr: float = 1e-2  # the base learning rate eta


def add_arguments(parser) -> None:
    add_common_arguments(parser, "coordcheck-out", n_seeds=3)
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="Adam steps T (default 4)")
    parser.add_argument("--lr", type=positive_float, default=1e-2,
                        help="the base learning rate eta")


def markdown(slope_table: dict, step: int) -> str:
    quantities = list(next(iter(slope_table.values())))
    rows = [[s, *(("-" if v is None else f"{v:+.2f}") for v in
                  (slope_table[s].get(q) for q in quantities))] for s in slope_table]
    return (f"Slope of log(RMS) against log(width) at step {step} (0 = width-independent):\n\n"
            + markdown_table(["schedule", *quantities], rows))


def main(args) -> int:
    result = execute(options_from_args(CoordcheckOptions, args))
    s = result["summary"]
    print(f"Coordinate check, LoRA {s['model']}, widths {s['widths'][0]}..{s['widths'][-1]}, "
          f"{s['seeds']} seeds, Adam")
    print(result["text"])
    print(f"wrote {result['out']}/summary.md, summary.json, records.json and "
          f"{len(result['figures'])} figures")
    return 0


def execute(options: CoordcheckOptions) -> dict:
    """Run, write every output file. -> {"summary", "text", "figures", "out"}."""
    widths = parse_list(options.widths) or DEFAULT_WIDTHS[options.model][1 if options.fast else 0]
    seeds = tuple(range((2 if options.fast else 3) if options.n_seeds is None
                        else options.n_seeds))
    steps = (3 if options.fast else 4) if options.steps is None else options.steps
    out = ResultsDir(options.out, {"command": "coordcheck"})
    plan = run_plan(options.model, widths, seeds, steps, options.backend, options.dtype)
    plan.announce()
    with plan.bar(show=not options.no_progress) as pb:
        rows = run(options.model, widths, seeds, steps, options.lr, backend_name=options.backend,
                   dtype=options.dtype, progress=pb)
    table = slopes(rows)
    summary = {"slopes": table, "step": steps, "model": options.model, "widths": list(widths),
               "lr": options.lr, "seeds": len(seeds),
               "all_steps": {t: slopes(rows, t) for t in range(1, steps + 1)}}
    out.write("records.json", rows)
    out.write("summary.json", summary)
    figures = [plots.coordcheck(rows, out / f"coordcheck_{options.model}_{s}.png", s)
               for s in SCHEDULES]
    text = markdown(table, steps)
    out.write("summary.md", f"# Coordinate check: LoRA {options.model}, Adam, "
              f"eta = {options.lr:g}\n\n" + text + "\n"
              + "".join(f"![{path.name}]({path.name})\n" for path in figures))
    return {"summary": summary, "text": text, "figures": figures, "out": out.path}
