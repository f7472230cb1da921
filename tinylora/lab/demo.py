"""`tinylora demo` (what `make demo` runs): the LoRA+ story end to end, at fast settings on a CPU
(summary.json records each part's time on the machine that ran it).

1. The analytic toy (paper Eq. 2), widths 2^4..2^16: with one shared learning rate, what A's
   update does to the output (delta1) grows like n; with eta_A ~ 1/n it stays flat. Exact slopes.
2. The balanced rates of the fine-tuning toy (`tinylora balance`, readout sp, Init[1]): where A's
   and B's updates move the LoRA layer's output by the same small amount at step 2, against
   their prediction (-1, 0, +1).
3. A fast loss-optimal width sweep of the same toy (`tinylora width-sweep --fast`, readout sp):
   the located optimum per width, the exponents against their prediction (-1, -1/2, +1/2), LoRA
   against LoRA+ scored on held-out seeds. The two predictions differ, and the demo says why.
4. A fast coordinate check of the LoRA MLP: delta1, delta2 against width per schedule.
5. How much faster the batched grid is than training its cells one by one.

Everything goes to ``demo-out/`` (one folder per part, and a summary.md that links the
figures); the headline is printed. NumPy (or --backend), float64.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tinylora.lab import (
    analytic_toy,
    analytic_toy_report,
    balance_report,
    coordcheck,
    grid_bench,
    plots_width,
    sweep_report,
)
from tinylora.run.options import options_from_args, out_folder
from tinylora.run.records import ResultsDir, markdown_table

BENCH_WIDTHS = (64, 256)  # widths at which the batched grid is timed against one by one
BALANCE_WIDTHS = (64, 128, 256, 512, 1024, 2048)  # the balanced rates are cheap: six widths
DIFFERENCE = ("   The difference: balanced rates only ask A and B to move the layer alike, so the "
              "readout\n   does not enter (ratio ~ n); the loss-optimal rates also keep the output "
              "stable, and the\n   sp readout turns a coordinated change of the layer into sqrt(n) "
              "times as much output:\n   eta_B* falls like n^-1/2 and the ratio grows like n^1/2.")


@dataclass(frozen=True)
class DemoOptions:
    """The options of `tinylora demo` (`add_arguments` is the CLI's definition)."""

    out: str = "demo-out"  # results folder
    backend: str | None = None  # "numpy" or "cupy"; None: the default backend
    no_progress: bool = False  # no progress bars


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=out_folder, default="demo-out",
                        help="results folder (default demo-out)")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def part_options(options: DemoOptions, out) -> dict:
    """The options of each command the demo runs: its fast settings, into ``out/<command>``,
    with the demo's backend and no_progress. Built directly (the demo calls the commands,
    not the CLI): {"toy": ToyOptions, "balance": BalanceOptions, "sweep": SweepOptions,
    "coordcheck": CoordcheckOptions}."""
    common = {"fast": True, "backend": options.backend, "no_progress": options.no_progress}
    return {
        "toy": analytic_toy_report.ToyOptions(  # the toy is cheap: every width up to 2^16
            out=str(out / "toy-analytic"), widths=analytic_toy.WIDTHS,
            **common),
        "balance": balance_report.BalanceOptions(
            out=str(out / "balance"), readout="sp", init="zero_B", at_steps=(2,), sizes=(0.003,),
            widths=BALANCE_WIDTHS, **common),
        "sweep": sweep_report.SweepOptions(out=str(out / "width-sweep"), **common),
        "coordcheck": coordcheck.CoordcheckOptions(out=str(out / "coordcheck"), **common),
    }


def main(args) -> int:
    result = execute(options_from_args(DemoOptions, args))
    print(result["headline"])
    print(f"wrote {result['out']}/summary.md and {len(result['figures'])} figures")
    return 0


def execute(options: DemoOptions) -> dict:
    """Run every part, write summary.json and summary.md. -> {"headline", "figures", "out"}."""
    out = ResultsDir(options.out, {"command": "demo"})
    timings, lines = {}, []

    def part(name, fn):
        start = time.perf_counter()
        result = fn()
        timings[name] = time.perf_counter() - start
        return result

    opts = part_options(options, out)
    toy_result = part("analytic toy", lambda: analytic_toy_report.execute(opts["toy"]))
    balance_result = part("balanced rates", lambda: balance_report.execute(opts["balance"]))
    sweep_result = part("width sweep", lambda: sweep_report.execute(opts["sweep"]))
    cc_result = part("coordinate check", lambda: coordcheck.execute(opts["coordcheck"]))
    bench = part("batched vs one by one", lambda: [
        grid_bench.speedup(n, n_cells=49, backend_name=options.backend) for n in BENCH_WIDTHS])

    t = toy_result["summary"]
    lines.append("1. Analytic toy (Eq. 2), GD, step 2: slope of log|delta1| against log n")
    for sched in ("shared", "loraplus16", "theory"):
        s, th = t["slopes"][sched]["delta1"], t["theory"][sched]["delta1"]
        lines.append(f"   {sched:11s} measured {s:+.3f}   theory {th:+.2f}")
    lines.append(f"   (largest gap to an exact prediction: {t['max_gap_exact']:.1e})")
    lines.append("2. Balanced rates (fine-tuning toy, readout sp, Init[1], Adam; "
                 "`tinylora balance` runs the (t, c) table):")
    lines += ["   " + x for x in balance_report.headline(balance_result["summary"]).splitlines()]
    lines.append("3. Loss-optimal rates (the same toy, a planted teacher, Adam; fast settings - "
                 "`tinylora width-sweep` runs the full measurement):")
    lines += ["   " + x for x in sweep_report.headline(sweep_result["summary"]).splitlines()]
    lines.append(DIFFERENCE)
    slopes = cc_result["summary"]["slopes"]
    lines.append(f"4. Coordinate check (LoRA MLP, Adam), slope of RMS(delta1) of fc2 against "
                 f"width: shared {slopes['shared']['fc2.delta1']:+.2f}, "
                 f"LoRA+ x16 {slopes['loraplus16']['fc2.delta1']:+.2f}, "
                 f"theory {slopes['theory']['fc2.delta1']:+.2f} (0 = width-independent)")
    lines.append("5. Batched grid vs one by one: " + ", ".join(
        f"{b['speedup']:.1f}x at n = {b['width']} ({b['cells']} cells)" for b in bench))
    lines.append("time per part: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    headline = "\n".join(lines)
    law = plots_width.width_law(
        plots_width.width_law_curves(balance_result["summary"], [sweep_result["summary"]]),
        out / "width_law.png", "The width law, two ways (demo: fast settings)")
    figures = [law.relative_to(out.path)] + [
        path.relative_to(out.path) for r in (toy_result, balance_result, sweep_result, cc_result)
        for path in r["figures"]]
    bench_table = markdown_table(["width", "cells", "steps", "batched (s)", "one by one (s)",
                                  "speed-up"], [[b["width"], b["cells"], b["steps"], b["batched_s"],
                                                 b["one_by_one_s"], b["speedup"]] for b in bench])
    out.write("summary.json", {"timings_s": timings, "speedup": bench,
                               "width_sweep": sweep_result["summary"],
                               "balance": balance_result["summary"],
                               "toy_slopes": t["slopes"], "toy_theory": t["theory"],
                               "coordcheck_slopes": slopes})
    out.write("summary.md", "# tinylora demo\n\n```\n" + headline + "\n```\n\n"
              "## Batched grid against one by one\n\n" + bench_table + "\n## Figures\n\n"
              + "".join(f"![{path.name}]({path})\n" for path in figures))
    return {"headline": headline, "figures": figures, "out": out.path}
