"""The `tinylora width-sweep` command: run `tinylora.lab.sweep`, read it with
`tinylora.lab.sweep_analysis`, then write and print the results.

    --out DIR/records.json    one row per width, cell, seed, recorded step, quantity
    --out DIR/summary.json    widths; best_eta_A, best_eta_B, best_ratio, best_product (the
                              located optimum) and their *_interval (bootstrap over seeds);
                              exponent (of the ratio), exponent_eta_A, exponent_eta_B,
                              exponent_product and their *_interval, over fit_widths (the
                              located widths); from_128: the same fits from n = 128 on;
                              predicted (this setting's exponents, None with prediction_note
                              where the counting has none) and predictions (every setting's);
                              identifiable, flat_widths, ratio_located; loss_lora,
                              loss_loraplus (held out); above_floor; config
    --out DIR/summary.md      the table below, and the figures
    --out DIR/*.png           heatmaps per width with the located optimum and its bootstrap
                              draws; the rates against the width with the predicted slopes
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from tinylora.lab import calibrate, landscape, plots, plots_width, sweep, sweep_analysis
from tinylora.lab.predictions import INIT_NAMES
from tinylora.run.options import (
    CommonOptions,
    add_common_arguments,
    options_from_args,
    parse_list,
    positive_int,
)
from tinylora.run.records import ResultsDir, markdown_table

RATES = ("eta_A", "eta_B", "ratio", "product")


@dataclass(frozen=True)
class SweepOptions(CommonOptions):
    """The options of `tinylora width-sweep` (`add_arguments` is the CLI's definition)."""

    out: str = "width-sweep-out"  # results folder
    steps: int | None = None  # Adam steps per cell; None: sweep.SweepConfig.steps
    optimizer: str | None = None  # "adam" or "gd" (plain gradient descent); None: adam
    n_train: int | None = None  # training points; None: sweep.SweepConfig.n_train
    readout: str | None = None  # "sp" (W_out ~ N(0, 1/n)) or "mup" (N(0, 1/n^2)); None: sp
    init: str | None = None  # "zero_B" (Init[1]) or "zero_A" (Init[2]); None: zero_B
    target: str | None = None  # "teacher" (the planted teacher) or "sin"; None: teacher
    held: str | None = None  # what the teacher holds fixed: "output" or "layer"; None: output


def add_arguments(parser) -> None:
    add_common_arguments(parser, "width-sweep-out", n_seeds=sweep.SweepConfig.seeds)
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"Adam steps per cell: the loss is read there "
                             f"(default {sweep.SweepConfig.steps})")
    parser.add_argument("--optimizer", choices=["adam", "gd"], default=None,
                        help="adam (default) or gd (plain full-batch gradient descent)")
    parser.add_argument("--n-train", dest="n_train", type=positive_int, default=None,
                        help=f"training points (default {sweep.SweepConfig.n_train})")
    parser.add_argument("--readout", choices=["sp", "mup"], default=None,
                        help="W_out ~ N(0, 1/n) as the paper prints it (sp, default) or "
                             "N(0, 1/n^2) (mup): see tinylora/lab/predictions.py")
    parser.add_argument("--init", choices=["zero_B", "zero_A"], default=None,
                        help="zero_B = Init[1] (default) or zero_A = Init[2]")
    parser.add_argument("--target", choices=["teacher", "sin"], default=None,
                        help="the planted teacher (default) or the paper's sin(mean x)")
    parser.add_argument("--held", choices=["output", "layer"], default=None,
                        help="what the teacher holds fixed at every width: the target's change "
                             "(output, default) or the layer's (layer)")


def _exp(fit) -> str:
    """'+0.57 [+0.40, +0.74]' from (slope, interval); '-' without a slope."""
    x, iv = fit
    if x is None:
        return "-"
    return f"{x:+.2f}" if iv is None else f"{x:+.2f} [{iv[0]:+.2f}, {iv[1]:+.2f}]"


KEYS = {"eta_A": "exponent_eta_A", "eta_B": "exponent_eta_B", "ratio": "exponent",
        "product": "exponent_product"}


def exponent_line(summary: dict) -> str:
    """Measured exponents (over every located width, then from n = 128 on) against this
    setting's prediction, in one line."""
    predicted, tail = summary["predicted"], summary[f"from_{summary['fit_from']}"]
    parts = []
    for k in RATES:
        also = tail[k] and (f", from n = {summary['fit_from']}: "
                            f"{_exp((tail[k]['slope'], tail[k]['interval']))}")
        expected = "no prediction" if predicted is None else f"predicted {predicted[k]:+g}"
        fit = (summary[KEYS[k]], summary[KEYS[k] + "_interval"])
        parts.append((f"{k} ~ n^{_exp(fit)}" if fit[0] is not None else f"{k}: no fit "
                      f"(fewer than 2 located widths)") + f"{also or ''} ({expected})")
    limit = sweep_analysis.MAX_HALF_WIDTH
    verdict = (f"The ratio's exponent is located (interval within +-{limit:g})" if
               summary["ratio_located"] else f"The ratio's exponent is NOT located (interval "
               f"wider than +-{limit:g}): read the product")
    flat = summary["flat_widths"]
    if flat:
        verdict += (f"; not located at widths {flat} (a flat valley there: the fit fails in "
                    f"over 10 % of the draws or the ratio spans over a decade), left out of "
                    f"the fits")
    if predicted is None:
        verdict += f"; no prediction for this setting: {summary['prediction_note']}"
    return "; ".join(parts) + f". {verdict}."


def cell_line(summary: dict) -> str:
    """The best cell's exponents (to a quarter decade; regression intervals), in one line."""
    cells, predicted = summary.get("cell_exponents") or {}, summary["predicted"]
    parts = [f"{k} ~ n^{_exp((c['slope'], c['interval']))}" + (
        "" if predicted is None else f" (predicted {predicted[k]:+g})")
             for k, c in cells.items() if c]
    return "Best cell: " + ("; ".join(parts) if parts else "fewer than 2 widths") + "."


def headline(summary: dict) -> str:
    """The lines the demo and the command print: the located optimum per width, the exponents."""
    lines = ["width   eta_A*     eta_B*     ratio [interval]           LoRA / LoRA+ (held out)"
             "  loss / start"]
    for i, w in enumerate(summary["widths"]):
        r, iv = summary["best_ratio"][i], summary["ratio_interval"][i]
        a, b = summary["best_eta_A"][i], summary["best_eta_B"][i]
        gain = summary["loss_lora"][i] / summary["loss_loraplus"][i]
        note = "  (edge)" if summary["edge"][i] else (
            "  (flat valley)" if not summary["identifiable"][i] else "")
        rate = "-" if r is None else f"{a:.3g}  {b:.3g}  {r:7.3g}"
        ivs = "" if iv is None else f"[{iv[0]:.3g}, {iv[1]:.3g}]"
        lines.append(f"{w:5d}   {rate:30s} {ivs:22s} {gain:6.2f}   "
                     f"{summary['above_floor'][i] or math.nan:9.3g}{note}")
    lines.append(exponent_line(summary))
    lines.append(cell_line(summary))
    return "\n".join(lines)


def markdown(summary: dict, figures: list) -> str:
    cfg = summary["config"]
    tail_widths = summary[f"from_{summary['fit_from']}"]["fit_widths"]
    rows = []
    for i, w in enumerate(summary["widths"]):
        cells = []
        for rate in RATES:
            v, iv = summary[f"best_{rate}"][i], summary[f"{rate}_interval"][i]
            cells.append("-" if v is None else f"{v:.3g}" + (
                "" if iv is None else f" [{iv[0]:.3g}, {iv[1]:.3g}]"))
        lo_l, lo_p = summary["loss_lora"][i], summary["loss_loraplus"][i]
        rows.append([w, *cells, "yes" if summary["identifiable"][i] else "**no**",
                     summary["above_floor"][i], lo_l, lo_p,
                     lo_l / lo_p if math.isfinite(lo_l) and lo_p > 0 else math.inf,
                     "yes" if summary["edge"][i] else "no"])
    table = markdown_table(["width", "eta_A*", "eta_B*", "ratio", "product", "located",
                            "loss / start", "LoRA loss", "LoRA+ loss", "LoRA / LoRA+",
                            "on edge"], rows)
    return (f"# Width sweep: the loss-optimal rates against the width\n\n"
            f"Model: the fine-tuning toy (`{cfg['variant']}`: frozen `W_in`, `W_mid`, `W_out`, "
            f"LoRA rank {cfg['r']} on the middle layer, {INIT_NAMES[cfg['init']]}, readout "
            f"{cfg['readout']}), target `{cfg['target']}` (held fixed at every width: the "
            f"{cfg.get('held', 'output')}'s change), optimizer {cfg['optimizer']}, loss "
            f"read at step {cfg['steps']} on {cfg['n_train']} points, {cfg['seeds']} seeds "
            f"(each its own frozen model, data and adapter init), grid {cfg['per_decade']} "
            f"points per decade, {cfg['dtype']}.\n\n"
            f"The optimum is the stationary point of a cubic fit of log10(loss) in "
            f"(log10 eta_A, log10 eta_B) over the best cell +- 2 cells; intervals: bootstrap "
            f"over seeds (95 %). \"located\": the fit succeeds in >= 90 % of the draws and the "
            f"ratio's interval spans at most one decade. \"loss / start\": the best cell's loss "
            f"over its loss before training (the teacher's floor is 0). LoRA (one shared rate) "
            f"and LoRA+ (both rates) are each tuned on half the seeds and scored on the other "
            f"half, both ways.\n\n{table}\n"
            f"**Exponents** (fitted on the located widths {summary['fit_widths']}, and on "
            f"{tail_widths}): "
            f"{exponent_line(summary)}\n\n{cell_line(summary)} (the lattice cell with the "
            f"lowest loss, to 1/{cfg['per_decade']} decade; regression intervals; with SGD the "
            f"loss falls until the rates diverge, so this is the measurement there)\n\n"
            + "".join(f"![{path.name}]({path.name})\n" for path in figures))


def figures(payloads: list, rows: list, summary: dict, cfg, out) -> list:
    panels = []
    for payload, r in zip(payloads, rows):
        panel = landscape.panel(sweep.window_cells(payload), f"n = {payload['width']}", "train",
                                -1)
        panel["near"] = []  # the located optimum and its draws replace the 1 % circles
        panel["draws"] = [d for d in r["located"]["draws"] if d is not None]
        panel["optimum"] = r["located"]["fit"]
        panels.append(panel)
    heat = plots.heatmaps(
        panels, out / "width_sweep_heatmaps.png",
        f"Fine-tuning toy, {cfg.optimizer}, readout {cfg.readout}: log10 training loss at step "
        f"{cfg.steps}, per width")
    return [heat, plots_width.sweep_rates(summary, out / "width_sweep_rates_vs_width.png"),
            plots.lora_vs_loraplus(summary, out / "width_sweep_loss_lora_vs_loraplus.png")]


def main(args) -> int:
    result = execute(options_from_args(SweepOptions, args))
    print(headline(result["summary"]))
    print(f"wrote {result['out']}/summary.md, summary.json, records.json and "
          f"{len(result['figures'])} figures")
    return 0


def execute(options: SweepOptions, on_width_done=None) -> dict:
    """Run (reusing finished widths), write every output. -> {"summary", "figures", "out"}."""
    cfg = sweep.config_from_args(options)
    widths = parse_list(options.widths) or (sweep.FAST_WIDTHS if options.fast else sweep.WIDTHS)
    out = ResultsDir(options.out, {"command": "width-sweep", **asdict(cfg)})
    plan = calibrate.sweep_plan(widths, cfg, [f"width{w}" for w in widths
                                              if out.load_part(f"width{w}") is not None],
                                options.backend)
    plan.announce()
    with plan.bar(show=not options.no_progress) as progress:
        payloads = sweep.run(widths, cfg, out, options.backend, on_width_done=on_width_done,
                             progress=progress)
    rows = [sweep_analysis.analyze_width(payload, cfg) for payload in payloads]
    summary = sweep_analysis.summarize(payloads, cfg, rows)
    out.write("records.json", sweep.records(payloads, cfg))
    out.write("summary.json", summary)
    paths = figures(payloads, rows, summary, cfg, out)
    out.write("summary.md", markdown(summary, paths))
    return {"summary": summary, "figures": paths, "out": out.path}
