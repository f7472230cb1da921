"""`tinylora finetune-ladder`: the ladder's command, its summary.md, and resuming across machines.

    tinylora finetune-ladder                               # d_model 128, 256 + the control
    tinylora finetune-ladder --widths 128 256 512 1024 --backend cupy --time-limit 400
    tinylora finetune-ladder --records-in old/records.json # first take the runs it already has

The protocol is `tinylora.text.ladder`'s, the numbers `tinylora.text.ladder_report`'s (summary.json
keys: its `chain_row` and `summarize`). ``--records-in`` copies the runs of a records.json made
with the same configuration into ``--out`` before anything runs, so a ladder stopped on one
machine (a GPU session, say, whose parts were not kept) resumes on another from its records.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tinylora
from tinylora.lab.predictions import INIT_NAMES
from tinylora.run.options import (
    ListOf,
    non_negative_int,
    options_from_args,
    out_folder,
    positive_float,
    positive_int,
)
from tinylora.run.records import ResultsDir, read_json, write_json, write_text
from tinylora.text import estimate, ladder, ladder_plots
from tinylora.text.ladder_report import summarize
from tinylora.text.stacked import Job
from tinylora.text.tables import ci


@dataclass(frozen=True)
class LadderOptions:
    """The options of `tinylora finetune-ladder` (`add_arguments` is the CLI's definition);
    None: the ladder's default (`tinylora.text.ladder.LadderConfig`, or `FAST` with fast)."""

    widths: tuple | None = None
    inits: tuple | None = None
    steps: int | None = None
    lr_ratios: tuple | None = None
    lr0: float | None = None
    tune_seeds: tuple | None = None
    eval_seeds: tuple | None = None
    control_width: int | None = None  # 0: no control chain
    base_steps: int | None = None
    max_stack: int = 16  # runs per stacked pass
    time_limit: float | None = None  # seconds; None: none
    records_in: tuple = ()  # records.json files whose runs are taken first
    cache: str | None = None
    out: str = "finetune-ladder-out"
    fast: bool = False
    restart: bool = False
    backend: str | None = None
    no_progress: bool = False


def add_arguments(parser) -> None:
    def many(flag, kind, help_text):
        parser.add_argument(flag, action=ListOf, kind=kind, default=None, help=help_text)

    many("--widths", positive_int, "d_model values (default 128 256)")
    parser.add_argument("--init", dest="inits", choices=["zero_B", "zero_A", "both"],
                        default=None, help="zero_B (Init[1], default), zero_A (Init[2]) or both")
    many("--lr-ratios", positive_float, "lr_B / lr_A values, with 1 (default 1 2 4 ... 64)")
    many("--tune-seeds", non_negative_int, "the two seeds that choose the rates (0 1)")
    many("--eval-seeds", non_negative_int, "seeds every reported number comes from (2 .. 9)")
    parser.add_argument("--steps", type=positive_int, help="steps per run")
    parser.add_argument("--lr0", type=positive_float, help="lr_A at lattice point 0")
    parser.add_argument("--control-width", type=non_negative_int,
                        help="d_model of the 64-token control (default 128; 0: none)")
    parser.add_argument("--base-steps", type=positive_int, help="pretraining steps (600)")
    parser.add_argument("--max-stack", type=positive_int, default=16,
                        help="runs trained at once as one stacked model (16)")
    parser.add_argument("--time-limit", type=positive_float, default=None,
                        help="seconds; stop between passes before it (a rerun resumes)")
    parser.add_argument("--records-in", action=ListOf, kind=str, default=(),
                        help="records.json files of the same ladder whose runs to take first")
    parser.add_argument("--cache", default=None, help="folder of saved bases")
    parser.add_argument("--out", type=out_folder, default="finetune-ladder-out")
    parser.add_argument("--fast", action="store_true", help="a tiny ladder (seconds)")
    parser.add_argument("--restart", action="store_true", help="discard the parts in --out")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _inits(init) -> tuple | None:
    """--init's value as the ladder's inits: None (the default), one name, or both."""
    if init is None or isinstance(init, tuple):
        return init
    return ("zero_B", "zero_A") if init == "both" else (init,)


def main(args) -> int:
    result = execute(options_from_args(LadderOptions, args))
    print(result["markdown"])
    print(f"wrote {result['out'] / 'records.json'}, summary.json, summary.md, "
          + ", ".join(Path(f).name for f in result["figures"]))
    return 3 if result["summary"]["stopped"] else 0


def take_records(config, out, paths) -> int:
    """Save the runs of each records.json in `paths` as parts of `out` (those made with this
    configuration; a file made with another is refused, naming the difference). -> how many."""
    parts, n = ResultsDir(out, ladder.config_key(config), strict=True), 0
    for path in paths:
        records = read_json(path)
        theirs = ResultsDir(out, ladder.config_key(ladder.LadderConfig(**{
            k: tuple(v) if isinstance(v, list) else v for k, v in records["config"].items()})))
        if theirs.config != parts.config:
            raise ValueError(f"records_in: {path} was made with another configuration "
                             f"({'; '.join(parts.differences(theirs.config))})")
        for r in records["runs"]:
            key = ladder.run_key(Job(r["width"], r["init"], r["lr_ratio"], r["lr"], r["seed"],
                                     r["batch_size"]))
            if parts.load_part(key) is None:
                parts.save_part(key, r)
                n += 1
    return n


def execute(options: LadderOptions) -> dict:
    """Run (or resume) the ladder and write records.json, summary.json, summary.md, figures.
    -> {"records", "summary", "markdown", "figures", "out"}."""
    config = ladder.ladder_config(
        options.fast, widths=options.widths, inits=_inits(options.inits), steps=options.steps,
        lr_ratios=options.lr_ratios, lr0=options.lr0, tune_seeds=options.tune_seeds,
        eval_seeds=options.eval_seeds, base_steps=options.base_steps,
        control_width=options.control_width)
    out = Path(options.out)
    if options.restart:
        for part in (out / "parts").glob("*.json"):
            part.unlink()
    take_records(config, out, options.records_in)
    plan = estimate.ladder_plan(config, out, options.cache, options.backend, options.max_stack)
    plan.announce()  # the runs at their fewest: the bar grows when a lattice does
    records = ladder.run_ladder(config, out, options.cache, options.backend, options.max_stack,
                                options.time_limit, not options.no_progress, plan)
    records["machine"] = machine(options.backend)
    records["command"] = "tinylora finetune-ladder " + " ".join(sys.argv[2:])
    summary = summarize(records)
    summary.update(machine=records["machine"], command=records["command"])
    write_json(out / "records.json", records)
    write_json(out / "summary.json", summary)
    text = markdown(summary)
    write_text(out / "summary.md", text)
    try:
        figures = ladder_plots.ladder_figures(records, summary, out)
    except ImportError as err:  # matplotlib is optional (the `plots` extra): say so, go on
        print(f"no figures: {err}", file=sys.stderr)
        figures = []
    return {"records": records, "summary": summary, "markdown": text, "out": out,
            "figures": figures}


def machine(backend_name) -> str:
    """The machine in one line: processor, cores, Python, NumPy (and the GPU with CuPy)."""
    line = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, NumPy {np.__version__}, tinylora {tinylora.__version__}")
    if backend_name == "cupy":
        import cupy  # noqa: PLC0415

        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        line += f", CuPy {cupy.__version__} on {name.decode() if isinstance(name, bytes) else name}"
    return line


def markdown(summary: dict) -> str:
    """summary.md: the protocol, the main table, every ratio's gain, the exponent."""
    cfg = summary["config"]
    lines = ["# The fine-tuning ladder (`tinylora finetune-ladder`)", "",
             f"Command: `{summary.get('command', '')}`. Machine: {summary.get('machine', '')}.",
             "", protocol_text(cfg), ""]
    if summary["stopped"]:
        lines += [f"**Not finished:** {summary['stopped']}.", ""]
    lines += ["| d_model | init | tokens/batch | base loss (Shakespeare / Milton) | head scale | "
              "LoRA (ratio 1) loss | tuned ratio (share of draws) | gain of tuned over 1 | "
              "best ratio [95 %] |", "|---|---|---|---|---|---|---|---|---|"]
    for c in summary["chains"]:
        b = c["base"] or {}
        base = (f"{b['pretrain_val_loss']:.4f} / {b['loss_finetune_text']:.4f} | "
                f"{b['head_scale']:.3f}") if b else "- | -"
        if not c["finished"]:
            lines.append(f"| {c['width']} | {INIT_NAMES[c['init']]} | {c['tokens_per_batch']} | "
                         f"{base} | not finished ({c['runs']} runs) | | | |")
            continue
        share = c["tuned_lr_ratio_share"][c["lr_ratios"].index(c["tuned_lr_ratio"])]
        best = best_cell(c)
        lines.append(f"| {c['width']} | {INIT_NAMES[c['init']]} | {c['tokens_per_batch']} | "
                     f"{base} | {ci([c['loss_ratio1'], *(c['loss_ratio1_interval'] or [0, 0])])}"
                     f" | {c['tuned_lr_ratio']:g} ({share:.0%}) | "
                     f"{ci([c['gain_tuned'], *(c['gain_tuned_interval'] or [0, 0])])} | "
                     f"{best} |")
    for init, e in summary["lr_ratio_exponent"].items():
        lines += ["", f"- {INIT_NAMES[init]}: best ratio ~ d_model^"
                  + (f"{e['slope']:+.2f} [{e['interval'][0]:+.2f}, {e['interval'][1]:+.2f}]"
                     if e["slope"] is not None and e["interval"] else "(not measured)")
                  + f" over d_model {e['widths']} (width law, sp readout: {e['predicted']:+g})"]
    lines += ["", "Every ratio's paired gain over ratio 1 (final loss of ratio 1 minus this "
              "ratio's, nats/char; 95 % interval; kept lr_A; lattice points tried):", ""]
    for c in (c for c in summary["chains"] if c["finished"]):
        lines += [f"**d_model {c['width']}, {INIT_NAMES[c['init']]}, {c['tokens_per_batch']} "
                  "tokens/batch**", "", "| lr_ratio | gain over 1 | kept lr_A | bracketed | "
                  "points |", "|---|---|---|---|---|"]
        for i, x in enumerate(c["lr_ratios"]):
            g = c["gain_by_lr_ratio"][i]
            lines.append(f"| {x:g} | {ci([g[0], g[1] or 0, g[2] or 0])} | {c['kept_lr'][i]:.3g}"
                         f" | {'yes' if c['lr_bracketed'][i] else 'no'} | "
                         f"{c['lattice_points'][i]} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def best_cell(c: dict) -> str:
    """'1.9 [0.8, 4.4]' (flagged when the bootstrap's fits fail too often or spread over more
    than a decade: `tinylora.lab.optimum`), or why there is no estimate."""
    if c["best_lr_ratio"] is None:
        return f"not located ({c['best_lr_ratio_note']})"
    lo, hi = c["best_lr_ratio_interval"] or [c["best_lr_ratio"]] * 2
    flag = "" if c["best_lr_ratio_identifiable"] else (
        f" (not identifiable: fitted in {c['best_lr_ratio_fit_share']:.0%} of the draws)")
    return f"{c['best_lr_ratio']:.3g} [{lo:.3g}, {hi:.3g}]{flag}"


def protocol_text(cfg: dict) -> str:
    """The protocol, as one paragraph, from the configuration the runs were made with."""
    return (f"Bases: TinyLM (2 layers, context {cfg['context']}) pretrained on Shakespeare with "
            f"muP's Adam rates (weight matrices at lr x {cfg['mup_width']} / d_model), one token "
            f"budget for every width; frozen. Fine-tuned on Milton's *Areopagitica*: LoRA r = "
            f"{cfg['r']} on {', '.join(cfg['targets'])}, Adam, {cfg['steps']} steps of "
            f"{cfg['batch_size']} x {cfg['context']} characters, every rate on a {cfg['decay']}"
            f" schedule (warm-up {cfg['warmup']}). Every lr_ratio in "
            f"{[float(x) for x in cfg['lr_ratios']]} (grown by up to "
            f"{cfg['max_extra_lr_ratios']} octave(s) past an end), lr_A on a "
            f"1/{cfg['per_octave']}-octave lattice grown until bracketed, on tuning seeds "
            f"{list(cfg['tune_seeds'])}; every number from evaluation seeds "
            f"{list(cfg['eval_seeds'])}. Intervals: 95 %, from a bootstrap over both seed sets "
            f"that redoes each ratio's lr choice and the ratio choice in every draw. Gain: the "
            f"final validation loss of ratio 1 minus that of the other ratio, per seed "
            f"(> 0: LoRA+ ends lower).")
