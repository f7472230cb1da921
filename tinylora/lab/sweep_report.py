"""The `tinylora width-sweep` command: run `tinylora.lab.sweep`, then write and print the results.

    --out DIR/records.json    one row per width, cell, seed, recorded step, quantity
    --out DIR/summary.json    widths, best_ratio, ratio_interval, loss_lora, loss_loraplus,
                              exponent, exponent_interval, theory_exponent (and more)
    --out DIR/summary.md      the table below, and the figures
    --out DIR/*.png           heatmaps per width, best ratio against width, LoRA vs LoRA+ loss
"""

from __future__ import annotations

import math

from tinylora.lab import landscape, sweep
from tinylora.records import markdown_table


def add_arguments(p) -> None:
    from tinylora import options
    from tinylora.records import add_common_arguments

    add_common_arguments(p, "width-sweep-out", seeds=sweep.SweepConfig.seeds)
    p.add_argument("--steps", type=options.positive_int, default=None,
                   help=f"Adam steps per cell (default {sweep.SweepConfig.steps})")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default=None,
                   help="adam (default) or sgd (plain gradient descent)")
    p.add_argument("--n-train", dest="n_train", type=options.positive_int, default=None,
                   help=f"training points (default {sweep.SweepConfig.n_train})")
    p.add_argument("--readout", choices=["sp", "mup"], default=None,
                   help="W_out ~ N(0, 1/n) as the paper prints it (sp, default) or "
                        "N(0, 1/n^2) (mup): see tinylora/lab/toy_problem.py")


def headline(summary: dict) -> str:
    """The lines the demo and the command print: ratio per width, exponent, LoRA vs LoRA+."""
    lines = ["width   best ratio eta_B*/eta_A*  (interval)        LoRA loss   LoRA+ loss"]
    for i, w in enumerate(summary["widths"]):
        r, iv = summary["best_ratio"][i], summary["ratio_interval"][i]
        ratio = "      -" if r is None else f"{r:7.3g}"
        ivs = "" if iv is None else f"[{iv[0]:.3g}, {iv[1]:.3g}]"
        edge = "  (optimum on the grid edge)" if summary["edge"][i] else ""
        lines.append(f"{w:5d}   {ratio}                  {ivs:18s} {summary['loss_lora'][i]:10.3g}"
                     f"  {summary['loss_loraplus'][i]:10.3g}{edge}")
    x, iv = summary["exponent"], summary["exponent_interval"]
    if x is None:
        lines.append("exponent: not enough widths with an interior optimum to fit")
    else:
        ci = "no interval (fewer than 3 widths)" if iv is None else \
            f"95 % interval [{iv[0]:.2f}, {iv[1]:.2f}], " + \
            ("contains" if summary["interval_contains_theory"] else "does NOT contain") + \
            " the theory's 1"
        lines.append(f"best ratio ~ width^{x:.2f}  ({ci})")
    return "\n".join(lines)


def markdown(summary: dict, figures: list) -> str:
    cfg = summary["config"]
    rows = []
    for i, w in enumerate(summary["widths"]):
        iv = summary["ratio_interval"][i]
        lo_l, lo_p = summary["loss_lora"][i], summary["loss_loraplus"][i]
        rows.append([w, summary["best_eta_A"][i], summary["best_eta_B"][i],
                     summary["best_ratio"][i], "-" if iv is None else f"[{iv[0]:.3g}, {iv[1]:.3g}]",
                     lo_l, lo_p, lo_l / lo_p if math.isfinite(lo_l) and lo_p > 0 else math.inf,
                     "yes" if summary["edge"][i] else "no"])
    table = markdown_table(["width", "best eta_A", "best eta_B", "best ratio", "ratio interval",
                            "LoRA loss", "LoRA+ loss", "LoRA / LoRA+", "on edge"], rows)
    x, iv = summary["exponent"], summary["exponent_interval"]
    if x is None:
        fit = "not enough widths to fit"
    elif iv is None:
        fit = f"**best ratio ~ width^{x:.2f}** (no interval: fewer than 3 widths)"
    else:
        where = "inside" if summary["interval_contains_theory"] else "outside"
        fit = (f"**best ratio ~ width^{x:.2f}**, 95 % interval [{iv[0]:.2f}, {iv[1]:.2f}]; the "
               f"theory's exponent 1 is {where} the interval")
    split = ""
    if summary.get("exponent_eta_A_interval") and summary.get("exponent_eta_B_interval"):
        parts = []
        for name, theory in (("eta_A", -1.0), ("eta_B", 0.0)):
            lo, hi = summary[f"exponent_{name}_interval"]
            inside = "inside" if lo <= theory <= hi else "outside"
            parts.append(f"{name}* ~ width^{summary[f'exponent_{name}']:.2f} [{lo:.2f}, {hi:.2f}] "
                         f"(the paper's {theory:g} is {inside})")
        split = " Split into the two rates: " + "; ".join(parts) + "."
    return (f"# Width sweep: the best LoRA+ ratio against the width\n\n"
            f"Model: the fine-tuning toy (`{cfg['variant']}`: frozen `W_in`, `W_mid`, `W_out`, "
            f"LoRA "
            f"rank {cfg['r']} on the middle layer, Init[1], readout {cfg['readout']}), "
            f"optimizer {cfg['optimizer']}, "
            f"{cfg['steps']} full-batch steps on {cfg['n_train']} points, {cfg['seeds']} seeds "
            f"(each its own frozen model, data and adapter init), grid {cfg['per_decade']} "
            f"points per decade, {cfg['dtype']}. "
            f"Loss: {summary['loss']}. The ratio interval spans the cells within 1 % of the best "
            f"and each seed's best cell, widened by half a grid step. LoRA = best shared rate "
            f"(eta_A = eta_B); LoRA+ = best pair.\n\n{table}\n{fit} "
            f"(fitted on widths {summary['fit_widths']}).{split}\n\n"
            + "".join(f"![{p.name}]({p.name})\n" for p in figures))


def figures(payloads: list, summary: dict, cfg, out) -> list:
    from tinylora.lab import plots

    steps = sweep.record_steps(cfg)
    paths = []
    for j, t in enumerate(steps):
        panels = [landscape.panel(sweep.window_cells(p), f"n = {p['width']}", "train", j)
                  for p in payloads]
        paths.append(plots.heatmaps(
            panels, out / f"width_sweep_heatmaps_train_loss_step{t}.png",
            f"Fine-tuning toy, {cfg.optimizer}: training loss after {t} steps, per width"))
    paths.append(plots.ratio_vs_width(summary, out / "width_sweep_best_ratio_vs_width.png"))
    paths.append(plots.lora_vs_loraplus(summary, out / "width_sweep_loss_lora_vs_loraplus.png"))
    return paths


def main(args) -> int:
    result = execute(args)
    print(headline(result["summary"]))
    print(f"wrote {result['out']}/summary.md, summary.json, records.json and "
          f"{len(result['figures'])} figures")
    return 0


def execute(args, on_width_done=None) -> dict:
    """Run (reusing finished widths), write every output. -> {"summary", "figures", "out"}."""
    from tinylora.records import ResultsDir, parse_list

    cfg = sweep.config_from_args(args)
    widths = parse_list(args.widths) or (sweep.FAST_WIDTHS if args.fast else sweep.WIDTHS)
    out = ResultsDir(args.out, {"command": "width-sweep", **sweep.asdict(cfg)})
    payloads = sweep.run(widths, cfg, out, args.backend, show_progress=not args.no_progress,
                         on_width_done=on_width_done)
    summary = sweep.summarize(payloads, cfg)
    out.write("records.json", sweep.records(payloads, cfg))
    out.write("summary.json", summary)
    paths = figures(payloads, summary, cfg, out)
    out.write("summary.md", markdown(summary, paths))
    return {"summary": summary, "figures": paths, "out": out.path}
