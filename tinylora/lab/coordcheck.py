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
from collections.abc import Callable
from dataclasses import dataclass

from tinylora import backend
from tinylora.lab.fit import loglog_slope
from tinylora.layers import mse_backward, mse_forward
from tinylora.models import LoRAMLP
from tinylora.optim import Adam

SCHEDULES = ("shared", "loraplus16", "theory")
QUANTITIES = ("delta1", "delta2", "delta3", "Z_A", "Z_B")
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


def mlp_inputs(model, cache) -> dict:
    """The LoRA MLP's cache is [fc1, act, fc2, act, ...]; a LoRA layer's cache starts with x."""
    return {name: cache[2 * i][0] for i, name in enumerate(model.layer_names)
            if name in model.targets}


def mlp_setup(width: int, seed: int, backend_name=None, dtype=None, n_points: int = 64):
    """5 -> n -> n -> n -> 1, ReLU, LoRA (r = 4, Init[1]) on the two n x n layers fc2 and fc3;
    frozen weights ~ N(0, 1/fan_in); X ~ N(0, I_5), Y = sin(mean(X))."""
    model = LoRAMLP(5, [width, width, width], 1, targets=["fc2", "fc3"], r=4, seed=seed,
                    backend=backend_name, dtype=dtype)
    rng = backend.host_rng([seed, 1])
    x = backend.normal(rng, (n_points, 5), 1.0, model.xp, dtype)
    return CoordSetup(model, x, model.xp.sin(x.mean(axis=1, keepdims=True)), mlp_inputs)


def projection_inputs(model, cache) -> dict:
    """For models built from `tinylora.projection` (the Transformer block, TinyLM): every
    projection leaves ``(name, is_lora, inner)`` in the forward cache, and a LoRA layer's inner
    cache starts with its input. Walk the cache and collect Z for each LoRA target."""
    found = {}

    def walk(c):
        if isinstance(c, tuple):
            if len(c) == 3 and isinstance(c[0], str) and isinstance(c[1], bool):
                if c[0] in model.targets:
                    found[c[0]] = c[2][0]  # the input of projection c[0]
                return
            for item in c:
                walk(item)

    walk(cache)
    return {t: found[t] for t in model.targets}


def block_setup(width: int, seed: int, backend_name=None, dtype=None, n_seq: int = 4,
                T: int = 16):
    """A pre-LN Transformer block of d_model = n (4 heads, d_ff = 4n), LoRA (r = 4, Init[1]) on
    q, k, v, o, fc1, fc2; x ~ N(0, 1) of shape (4, 16, n), a random regression target."""
    from tinylora.transformer import BLOCK_TARGETS, TransformerBlock  # noqa: PLC0415

    model = TransformerBlock(width, 4, targets=BLOCK_TARGETS, r=4, seed=seed,
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
    """(eta_A, eta_B) of a schedule at a width (see the module docstring)."""
    if schedule == "shared":
        return lr, lr
    if schedule == "loraplus16":
        return lr, 16 * lr
    if schedule == "theory":
        return lr * BASE_WIDTH / width, 16 * lr
    raise ValueError(f"schedule: expected one of {list(SCHEDULES)}, got {schedule!r}")


def _rms(v) -> float:
    return backend.finite_or_inf(backend.xp_of(v).sqrt((v * v).mean()))


def deltas(Z, A0, B0, A1, B1, scale: float) -> dict:
    """The quantities of one LoRA layer after a step from (A0, B0) to (A1, B1), input Z.

    delta1 + delta2 + delta3 = scale (Z A1 B1 - Z A0 B0): the change of the adapter's output.
    """
    z_da = Z @ (A1 - A0)  # [..., d_in] -> [..., r]
    z_a = Z @ A1  # [..., d_in] -> [..., r]
    return {"delta1": scale * (z_da @ B0), "delta2": scale * ((Z @ A0) @ (B1 - B0)),
            "delta3": scale * (z_da @ (B1 - B0)), "Z_A": z_a, "Z_B": scale * (z_a @ B1)}


def measure(setup: CoordSetup, eta_a: float, eta_b: float, steps: int) -> list[dict]:
    """Train `steps` Adam steps; -> rows {step, layer, quantity, value} for t = 1..steps."""
    model, rows = setup.model, []
    params = model.trainable_params()
    groups = [{"params": [k for k in params if k.endswith(".A")], "lr": eta_a},
              {"params": [k for k in params if k.endswith(".B")], "lr": eta_b}]
    opt, s = Adam(params, groups=groups), model.scale
    for t in range(1, steps + 1):
        out, cache = model.forward(setup.x)
        inputs = setup.inputs(model, cache)
        _, loss_cache = mse_forward(out, setup.y)
        grads = model.backward(mse_backward(1.0, loss_cache), cache)
        before = {k: params[k].copy() for k in params}
        opt.step(grads)
        for layer, Z in inputs.items():
            values = deltas(Z, before[f"{layer}.A"], before[f"{layer}.B"], params[f"{layer}.A"],
                            params[f"{layer}.B"], s)
            rows += [{"step": t, "layer": layer, "quantity": q, "value": _rms(v)}
                     for q, v in values.items()]
    return rows


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


def add_arguments(p) -> None:
    from tinylora import options
    from tinylora.records import add_common_arguments

    add_common_arguments(p, "coordcheck-out", seeds=3)
    p.add_argument("--model", choices=sorted(MODELS), default="mlp")
    p.add_argument("--steps", type=options.positive_int, default=None,
                   help="Adam steps T (default 4)")
    p.add_argument("--lr", type=options.positive_float, default=1e-2,
                   help="the base learning rate eta")


def markdown(slope_table: dict, step: int) -> str:
    from tinylora.records import markdown_table

    quantities = list(next(iter(slope_table.values())))
    rows = [[s, *(("-" if v is None else f"{v:+.2f}") for v in
                  (slope_table[s].get(q) for q in quantities))] for s in slope_table]
    return (f"Slope of log(RMS) against log(width) at step {step} (0 = width-independent):\n\n"
            + markdown_table(["schedule", *quantities], rows))


def main(args) -> int:
    result = execute(args)
    s = result["summary"]
    print(f"Coordinate check, LoRA {s['model']}, widths {s['widths'][0]}..{s['widths'][-1]}, "
          f"{s['seeds']} seeds, Adam")
    print(result["text"])
    print(f"wrote {result['out']}/summary.md, summary.json, records.json and "
          f"{len(result['figures'])} figures")
    return 0


def execute(args) -> dict:
    """Run, write every output file. -> {"summary", "text", "figures", "out"}."""
    from tinylora.lab import plots
    from tinylora.progress import bar
    from tinylora.records import ResultsDir, parse_list

    widths = parse_list(args.widths) or DEFAULT_WIDTHS[args.model][1 if args.fast else 0]
    seeds = tuple(range((2 if args.fast else 3) if args.seeds is None else args.seeds))
    steps = (3 if args.fast else 4) if args.steps is None else args.steps
    out = ResultsDir(args.out, {"command": "coordcheck"})
    with bar(total=len(SCHEDULES) * len(widths) * len(seeds), desc="coordcheck",
             show=not args.no_progress) as pb:
        rows = run(args.model, widths, seeds, steps, args.lr, backend_name=args.backend,
                   dtype=args.dtype, progress=pb)
    table = slopes(rows)
    summary = {"slopes": table, "step": steps, "model": args.model, "widths": list(widths),
               "lr": args.lr, "seeds": len(seeds),
               "all_steps": {t: slopes(rows, t) for t in range(1, steps + 1)}}
    out.write("records.json", rows)
    out.write("summary.json", summary)
    figures = [plots.coordcheck(rows, out / f"coordcheck_{args.model}_{s}.png", s)
               for s in SCHEDULES]
    text = markdown(table, steps)
    out.write("summary.md", f"# Coordinate check: LoRA {args.model}, Adam, eta = {args.lr:g}\n\n"
              + text + "\n" + "".join(f"![{p.name}]({p.name})\n" for p in figures))
    return {"summary": summary, "text": text, "figures": figures, "out": out.path}
