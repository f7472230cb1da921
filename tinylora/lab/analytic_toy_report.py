"""The `tinylora toy-analytic` command: run the analytic toy (`tinylora.lab.analytic_toy`), fit the
slopes, write records.json, summary.json (``{"slopes": {schedule: {delta: s}}, "theory":
{same}}`` at step 2, for gradient descent when it ran, and the same per optimizer under
"by_optimizer"), summary.md and a figure per optimizer, and print the table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tinylora.lab import plots
from tinylora.lab.analytic_toy import (
    DELTAS,
    OPTIMIZERS,
    REPORT_STEP,
    SCHEDULES,
    WIDTHS,
    run,
    slopes,
)
from tinylora.run.options import (
    CommonOptions,
    add_common_arguments,
    options_from_args,
    parse_list,
    positive_float,
    positive_int,
)
from tinylora.run.progress import bar
from tinylora.run.records import ResultsDir, markdown_table

FAST_WIDTHS = tuple(2**k for k in range(4, 11))
INITS = {"zero_B": 1, "zero_A": 2}  # the init names of every command -> the toy's Init number


@dataclass(frozen=True)
class ToyOptions(CommonOptions):
    """The options of `tinylora toy-analytic` (`add_arguments` is the CLI's definition)."""

    out: str = "toy-analytic-out"  # results folder
    init: str | int = "zero_B"  # "zero_B" (or 1): b = 0, a random; "zero_A" (or 2): a = 0, b = 1
    steps: int | None = None  # steps per run; None: 4 (3 with fast)
    lr: float = 0.1  # the base learning rate (see schedules)
    optimizer: str = "both"  # "gd", "adam" or "both"


def summarize(fits: list[dict], widths, init: int, step: int = REPORT_STEP) -> dict:
    """summary.json: {"slopes": {schedule: {delta: s}}, "theory": {same}} at `step` for the
    reported optimizer (gradient descent, the paper's setting, when it ran), the same for every
    optimizer under "by_optimizer", and the largest gap between measured and exact theory slopes
    over every step."""
    by_opt: dict = {}
    for f in fits:
        if f["step"] == step:
            o = by_opt.setdefault(f["optimizer"], {"slopes": {}, "theory": {}})
            o["slopes"].setdefault(f["schedule"], {})[f["quantity"]] = f["slope"]
            o["theory"].setdefault(f["schedule"], {})[f["quantity"]] = f["theory"]
    reported = "gd" if "gd" in by_opt else next(iter(by_opt))
    gaps = [abs(f["slope"] - f["theory"]) for f in fits
            if f["exact"] and f["slope"] is not None and f["theory"] is not None]
    return {"step": step, "init": init, "widths": list(widths), "optimizer": reported,
            "slopes": by_opt[reported]["slopes"], "theory": by_opt[reported]["theory"],
            "by_optimizer": by_opt, "max_gap_exact": max(gaps) if gaps else None,
            "all_steps": fits}


def table(fits: list[dict]) -> str:
    """Markdown: measured slope (theory) per optimizer, schedule, step, delta."""
    def fmt(f):
        if f is None or f["slope"] is None:
            return "- (zero)" if f and f["theory"] is None else "-"
        th = "" if f["theory"] is None else f" ({'' if f['exact'] else '~'}{f['theory']:+.2f})"
        return f"{round(f['slope'], 3) + 0.0:+.3f}{th}"

    index = {(f["optimizer"], f["schedule"], f["step"], f["quantity"]): f for f in fits}
    keys = sorted({k[:3] for k in index}, key=lambda k: (OPTIMIZERS.index(k[0]),
                                                          list(SCHEDULES).index(k[1]), k[2]))
    rows = [[o, s, t, *(fmt(index.get((o, s, t, q))) for q in DELTAS)] for o, s, t in keys]
    return markdown_table(["optimizer", "schedule", "step", *DELTAS], rows)


def add_arguments(parser) -> None:
    add_common_arguments(parser, "toy-analytic-out", n_seeds=1)
    parser.add_argument("--init", choices=["zero_B", "zero_A"], default="zero_B",
                        help="zero_B = Init[1]: b = 0, a random (default); zero_A = Init[2]: "
                             "a = 0, b = 1")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="steps per run (default 4)")
    parser.add_argument("--lr", type=positive_float, default=0.1,
                        help="the base learning rate (see schedules)")
    parser.add_argument("--optimizer", choices=["gd", "adam", "both"], default="both")


def main(args) -> int:
    options = options_from_args(ToyOptions, args)
    result = execute(options)
    summary = result["summary"]
    print(f"Analytic toy (paper Eq. 2), Init[{summary['init']}], widths {summary['widths'][0]}.."
          f"{summary['widths'][-1]}: slope of log|delta| against log n, measured "
          f"(theory; ~ = asymptotic only)")
    print(result["text"])
    if summary["max_gap_exact"] is not None:
        print(f"largest |measured - theory| where the theory is exact: "
              f"{summary['max_gap_exact']:.2e}")
    print(f"wrote {result['out']}/summary.md, summary.json, records.json and "
          f"{len(result['figures'])} figures")
    return 0


def execute(options: ToyOptions) -> dict:
    """Run, write every output file. -> {"summary", "text" (markdown table), "figures", "out"}."""
    options = replace(options, init=INITS.get(options.init, options.init))  # the CLI's names
    widths = parse_list(options.widths) or (FAST_WIDTHS if options.fast else WIDTHS)
    steps = (3 if options.fast else 4) if options.steps is None else options.steps
    if steps < REPORT_STEP:
        raise ValueError(f"--steps: expected at least {REPORT_STEP} (the step reported), "
                         f"got {steps}")
    optimizers = OPTIMIZERS if options.optimizer == "both" else (options.optimizer,)
    seeds = tuple(range(1 if options.n_seeds is None else options.n_seeds))
    out = ResultsDir(options.out, {"command": "toy-analytic"})
    total = len(optimizers) * len(SCHEDULES) * len(widths) * len(seeds)
    with bar(total=total, desc="toy-analytic", show=not options.no_progress) as pb:
        rows = run(widths, steps, options.init, optimizers, lr=options.lr, seeds=seeds,
                   backend_name=options.backend, dtype=options.dtype, progress=pb)
    fits = slopes(rows, options.init)
    summary = summarize(fits, widths, options.init)
    out.write("records.json", rows)
    out.write("summary.json", summary)
    figures = [plots.toy_deltas(rows, out / f"toy_analytic_deltas_step{REPORT_STEP}_init"
                                f"{options.init}_{o}.png", optimizer=o, step=REPORT_STEP,
                                init=options.init,
                                theory={f["schedule"] + "/" + f["quantity"]: f["theory"]
                                        for f in fits if f["optimizer"] == o
                                        and f["step"] == REPORT_STEP})
               for o in optimizers]
    text = table(fits)
    out.write("summary.md", _markdown(text, widths, options.init, summary, figures))
    return {"summary": summary, "text": text, "figures": figures, "out": out.path}


def _markdown(text, widths, init, summary, figures) -> str:
    gap = summary["max_gap_exact"]
    return (f"# Analytic toy (paper Eq. 2), Init[{init}]\n\n"
            f"Widths {', '.join(map(str, widths))}. Each cell: the fitted slope of log|delta| "
            f"against log n, with the theory's slope in brackets (`~` = only as n -> infinity; "
            f"`-` = the delta is exactly zero at that step). The derivation is in "
            f"`tinylora/lab/analytic_toy.py`.\n\n{text}\n"
            + (f"Largest gap to an exact prediction: {gap:.2e}.\n\n" if gap is not None else "")
            + "".join(f"![{path.name}]({path.name})\n" for path in figures))
