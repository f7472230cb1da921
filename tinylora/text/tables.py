"""What `tinylora finetune` prints and writes to summary.md: the study's tables, from
`tinylora.text.report.summarize` (host floats only)."""

from __future__ import annotations

import math

from tinylora.lab.predictions import INIT_NAMES
from tinylora.run.records import markdown_table
from tinylora.text.plots import panel_title


def ci(m_lo_hi, fmt="{:.4f}") -> str:
    """'m [lo, hi]' (just 'm' when the interval is empty or the value not finite)."""
    m, lo, hi = m_lo_hi
    if m is None or not math.isfinite(m) or lo == hi:
        return "n/a" if m is None else fmt.format(m)
    return f"{fmt.format(m)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def best_lr_ratio_cell(located: dict, note=None) -> str:
    """'5.2 [2.9, 9.4]', or why there is no estimate."""
    if located["lr_ratio"] is None:
        return f"not located ({note})"
    lo_hi = located["lr_ratio_interval"] or [located["lr_ratio"]] * 2
    flag = "" if located["identifiable"] else (
        f" (not identifiable: fitted in {located['fit_share']:.0%} of the bootstrap draws)")
    return f"{located['lr_ratio']:.3g} [{lo_hi[0]:.3g}, {lo_hi[1]:.3g}]{flag}"


def exponent_line(summary: dict, init: str) -> str:
    slope, iv = summary["lr_ratio_exponent"][init], summary["lr_ratio_exponent_interval"][init]
    pred = summary["predicted_lr_ratio_exponent"][init]
    expected = "no prediction" if pred is None else f"predicted {pred:+g}"
    widths = summary["lr_ratio_exponent_widths"][init]
    if slope is None:
        return (f"{INIT_NAMES[init]}: exponent not measured (best ratio located at "
                f"{len(widths)} width{'' if len(widths) == 1 else 's'}; {expected})")
    iv_text = "" if iv is None else f" [{iv[0]:+.2f}, {iv[1]:+.2f}]"
    return (f"{INIT_NAMES[init]}: best ratio ~ d_model^{slope:+.2f}{iv_text} from d_model "
            f"{', '.join(map(str, widths))} ({expected})")


def main_rows(details: list) -> list[list]:
    rows = []
    for d in details:
        lora, plus = d["methods"][1.0], d["methods"][16.0]
        tuned = d["methods"][d["tuned_lr_ratio"]]
        rows.append([INIT_NAMES[d["init"]], d["width"], f"{d['base']['loss_finetune_text']:.4f}",
                     ci(lora["final"]), ci(plus["final"]), ci(plus["speedup"], "{:.2f}"),
                     f"{d['tuned_lr_ratio']:g}", ci(tuned["final"]),
                     ci(tuned["speedup"], "{:.2f}"), best_lr_ratio_cell(d["located"], d["note"])])
    return rows


MAIN_HEADER = ["init", "d_model", "frozen base", "LoRA", "LoRA+ 16", "speed-up of 16",
               "tuned ratio", "its loss", "its speed-up", "best ratio [95 %]"]


def markdown(records: dict, summary: dict, details: list) -> str:
    """summary.md: the setup, the tables, samples before and after."""
    cfg = records["config"]
    grid = sorted({r for d in details for r in d["lattice"]})  # with any octaves grown
    lines = [
        "# Fine-tuning a pretrained TinyLM: the best LoRA+ ratio per width and init", "",
        (f"Base: TinyLM (2 layers, context {cfg['context']}) pretrained on Shakespeare; frozen. "
         f"Fine-tuned on Milton's *Areopagitica* with LoRA rank {cfg['r']} on q, k, v, o, fc1, "
         f"fc2, Adam, {cfg['steps']} steps of {cfg['batch_size']} windows. For every ratio "
         f"in {list(cfg['lr_ratios'])} (and up to {cfg['max_extra_lr_ratios']} octaves beyond "
         "an end of it where the tuning seeds' best ratio lay there), lr_A was tuned on a "
         "half-octave lattice around "
         f"{cfg['lr0']:g}, grown until its optimum was interior, on the tuning seeds "
         f"{list(cfg['tune_seeds'])}; every number below comes from the evaluation seeds "
         f"{list(cfg['eval_seeds'])}, which the tuning never saw. Losses: validation "
         "cross-entropy (nats per character) on fixed windows of the held-out last 10 % of the "
         "text. Brackets: 95 % t-intervals over the evaluation seeds (speed-ups: geometric "
         "mean); best ratio: the quadratic fit of the ratio profile with a bootstrap that "
         "redraws the tuning and the evaluation seeds and chooses each ratio's lr again in "
         "every draw (`tinylora.lab.optimum.locate_profile`, `tinylora.text.rechoose`)."), "",
        ("Speed-up: steps plain LoRA needs to reach its own final loss over the steps LoRA+ "
         "needs (paired by seed; < 1 if LoRA+ ends worse). *Tuned ratio*: the ratio with the "
         "lowest tuning-seed loss, what a practitioner would pick; its loss and speed-up are "
         "measured on the evaluation seeds."), "",
        markdown_table(["d_model", "base: Shakespeare val loss",
                        "base: Areopagitica val loss (frozen)"],
                       [[w, f"{b['pretrain_val_loss']:.4f}", f"{b['loss_finetune_text']:.4f}"]
                        for w, b in sorted((int(w), b) for w, b in records["bases"].items())]),
        markdown_table(MAIN_HEADER, main_rows(details)),
        "## How the best ratio moves with width", "",
        *(f"- {exponent_line(summary, init)}" for init in cfg["inits"]),
        "", (f"Prediction: {summary.get('prediction_note') or 'see docs/width_law.md'}."), "",
        "## How much the tuning seeds flatter", "",
        markdown_table(["init", "d_model", "LoRA: eval - tuning", "LoRA+ 16: eval - tuning",
                        "LoRA - LoRA+ on tuning seeds", "on evaluation seeds"],
                       [[INIT_NAMES[d["init"]], d["width"], f"{o['lora']:+.4f}",
                         f"{o['loraplus']:+.4f}", f"{o['gap_tuning_seeds']:+.4f}",
                         f"{o['gap_eval_seeds']:+.4f}"]
                        for d, o in zip(details, summary["overstatement"])]),
        "## Tuning", "",
        ("Kept lr_A per ratio (mean final loss over the tuning seeds); * = not bracketed "
         "within the lattice's budget."), "",
        markdown_table(["init", "d_model", *(f"ratio {r:g}" for r in grid)],
                       [[INIT_NAMES[d["init"]], d["width"],
                         *(_lattice_cell(d["lattice"].get(r)) for r in grid)] for d in details]),
    ]
    if summary["baselines"]:
        width = cfg["baseline_width"] or cfg["widths"][0]
        lines += ["## Baselines at d_model = " + str(width), "",
                  ("Same protocol (lattice on the tuning seeds, numbers from the evaluation "
                   "seeds), Init[1], ratio 1. Scale alpha / r with alpha = r_study and rsLoRA's "
                   "alpha / sqrt(r) with alpha = sqrt(r_study): both 1 at the study's rank."), "",
                  markdown_table(["method", "scale", "lr", "final val loss", "tuning seeds"],
                                 [[b["label"], "-" if b["scale"] is None else f"{b['scale']:.3g}",
                                   f"{b['lr']:.3g}{'' if b['interior'] else '*'}",
                                   ci([b["loss"], *b["loss_interval"]]),
                                   f"{b['loss_tuning']:.4f}"] for b in summary["baselines"]])]
    lines += ["## Samples (temperature 0.8), prompted with the start of the validation text", ""]
    for d in details:
        lines += [f"### {panel_title(d)}", "", "Frozen base (before fine-tuning):", "", "```",
                  d["base"]["sample"], "```", ""]
        for m in d["methods"].values():
            sample = next((r.get("sample") for r in m["runs"] if r.get("sample")), None)
            if sample:
                lines += [f"After {m['label']}:", "", "```", sample, "```", ""]
    minutes = sum(r["seconds"] for r in records["runs"]) / 60
    lines.append(f"The {len(records['runs'])} fine-tuning runs took {minutes:.1f} minutes in all "
                 "(the sum of their own times; pretraining not included).")
    return "\n".join(lines) + "\n"


def _lattice_cell(t) -> str:
    """'1.7150 (lr 0.00212)': a ratio's kept lr and tuning loss; * = not bracketed; - = not
    tried at this (width, init)."""
    if t is None:
        return "-"
    return f"{t['loss']:.4f} (lr {t['lr']:.3g}{'' if t['interior'] else '*'})"


def print_table(records: dict, summary: dict, details: list) -> None:
    """The command's printout: the main table, the exponents, the run time."""
    print(markdown_table(MAIN_HEADER, main_rows(details)))  # the CLI prints it as columns
    for init in records["config"]["inits"]:
        print(exponent_line(summary, init))
    seconds = sum(r["seconds"] for r in records["runs"])
    print(f"({len(records['runs'])} runs, {seconds:.0f} s of fine-tuning in the records)")
