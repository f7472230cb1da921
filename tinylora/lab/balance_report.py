"""The `tinylora balance` command: run `tinylora.lab.balance`, then write and print the results.

    --out DIR/summary.json   predictions (the table of `tinylora.lab.predictions`), and per setting
                             its widths and one row per (t, c, layer): the fitted exponents of
                             eta_A*, eta_B*, the ratio and the product with 95 % intervals, each
                             width's root (status, rates, eta_A * n, what moved), the verdict
                             against the prediction; the alignment of A's first step per width,
                             its exponent over the fitted widths, the prediction that follows
                             from it and the verdict against that; the forward check
                             (`flatness`)
    --out DIR/summary.md     the (t, c) tables, as a person reads them, and the figures
    --out DIR/records.json   every width's roots as found (candidates, windows, sizes)
    --out DIR/*.png          rates against width per setting; exponents against t and c
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from tinylora.lab import alignment, balance, calibrate, flatness, plots_width, predictions
from tinylora.lab.fit import loglog_slope
from tinylora.run.options import (
    CommonOptions,
    ListOf,
    add_common_arguments,
    options_from_args,
    parse_list,
    positive_float,
    positive_int,
)
from tinylora.run.records import ResultsDir, markdown_table

RATES = ("eta_A", "eta_B", "ratio")
RATE_NAMES = {"eta_A": "eta_A*", "eta_B": "eta_B*", "ratio": "ratio"}
DIAGNOSTICS = ("ZA_moved", "B_moved", "input_moved", "output_moved")


@dataclass(frozen=True)
class BalanceOptions(CommonOptions):
    """The options of `tinylora balance` (`add_arguments` is the CLI's definition)."""

    out: str = "balance-out"  # results folder
    model: str = "toy"  # "toy" (one LoRA layer), "mlp" (two LoRA layers) or "block"
    readout: str | None = None  # the toy's readout, "sp" or "mup"; None: both
    init: str | None = None  # the toy's init, "zero_B" (Init[1]) or "zero_A"; None: both
    at_steps: tuple | str | None = None  # steps t, e.g. (2, 3, 5, 10); None: per model
    sizes: tuple | str | None = None  # target sizes c, e.g. (0.003, 0.01); None: per model
    tokens: int | None = None  # points (toy, mlp) or tokens (block) per batch; None: 64


def add_arguments(parser) -> None:
    add_common_arguments(parser, "balance-out", n_seeds=balance.BalanceConfig.seeds)
    parser.add_argument("--model", choices=balance.MODELS, default="toy",
                        help="toy (one LoRA layer; default), mlp (two LoRA layers) or block")
    parser.add_argument("--readout", choices=["sp", "mup"], default=None,
                        help="the toy's readout (default: both)")
    parser.add_argument("--init", choices=["zero_B", "zero_A"], default=None,
                        help="the toy's init, zero_B = Init[1], zero_A = Init[2] (default: both)")
    parser.add_argument("--at-steps", action=ListOf, kind=positive_int, default=None,
                        help="the steps t where the sizes are read, e.g. 2,3,5,10 (default per "
                             "model)")
    parser.add_argument("--sizes", action=ListOf, kind=positive_float, default=None,
                        help="target sizes c, e.g. 0.003,0.01,0.05 (default per model)")
    parser.add_argument("--tokens", type=positive_int, default=None,
                        help=f"inputs per batch: points (toy, mlp) or tokens (block: a multiple "
                             f"of {balance.BLOCK_T}) (default {balance.BalanceConfig.n_points})")


def configs(options: BalanceOptions) -> list:
    """One `BalanceConfig` per setting the options ask for."""
    model = options.model
    steps = parse_list(options.at_steps, positive_int, "--at-steps") or (
        (2, 3) if options.fast else balance.STEPS[model])
    sizes = parse_list(options.sizes, positive_float, "--sizes") or (
        (0.01,) if options.fast else balance.SIZES[model])
    if min(steps) < 2:
        raise ValueError(f"--at-steps: expected steps t >= 2 (at t = 1 one of delta1, delta2 is "
                         f"exactly 0, under Init[1] and Init[2]), got {min(steps)}")
    tokens = balance.BalanceConfig.n_points if options.tokens is None else options.tokens
    if model == "block" and tokens % balance.BLOCK_T:
        raise ValueError(f"--tokens: expected a multiple of {balance.BLOCK_T} for the block "
                         f"(sequences of {balance.BLOCK_T} tokens), got {tokens}")
    base = balance.BalanceConfig(model=model, steps=tuple(steps), sizes=tuple(sizes),
                                 seeds=balance.BalanceConfig.seeds if options.n_seeds is None
                                 else options.n_seeds, n_points=tokens,
                                 dtype=options.dtype)
    chosen = [(r, i) for r, i in balance.SETTINGS[model]
              if (options.readout or r) == r and (options.init or i) == i]
    if not chosen:
        raise ValueError(f"--readout/--init: model {model!r} runs {balance.SETTINGS[model]}")
    return [replace(base, readout=r, init=i) for r, i in chosen]


def _follows(exps: dict, predicted: dict, all_ok: bool):
    """True when every interval holds its prediction at every width, False when one does not,
    None when there is nothing to judge (no interval)."""
    verdicts = [None if exps[k] is None or exps[k]["interval"] is None
                else exps[k]["interval"][0] <= predicted[k] <= exps[k]["interval"][1]
                for k in RATES]
    if None in verdicts:
        return None
    return all(verdicts) and all_ok


def _aligned(payloads: list, row: dict, layer: str, init: str) -> dict:
    """The alignment of A's first step at the widths of a row's fit (`tinylora.lab.alignment`),
    its exponent there and the balanced prediction that follows from it (with its verdict)."""
    values = [p.get("alignment", {}).get(layer) for p in payloads]
    widths = [p["width"] for p in payloads]
    fitted = (row["exponents"]["eta_A"] or {}).get("widths") or []
    used = [(w, a) for w, a in zip(widths, values) if w in fitted and a]
    fit = loglog_slope(*zip(*used)) if len(used) >= 2 else None
    out = {"alignment": values, "alignment_local": alignment.local_exponents(widths, values),
           "alignment_exponent": None if fit is None else fit.slope,
           "predicted_from_alignment": None, "follows_alignment": None}
    if fit is not None:
        out["predicted_from_alignment"] = predictions.exponents(
            "balanced", "none", init, alignment=round(fit.slope, 3))
        out["follows_alignment"] = _follows(row["exponents"], out["predicted_from_alignment"],
                                            all(s == "ok" for s in row["status"]))
    return out


def summarize(cfg, payloads: list) -> dict:
    """One setting: its rows (one per target) and what they say against the prediction."""
    predicted = predictions.exponents("balanced", cfg.readout, cfg.init)
    rows = []
    for k, first in enumerate(payloads[0]["roots"]):
        per = [payload["roots"][k] for payload in payloads]
        exps = balance.exponents(payloads, k)
        ok = [r if r["status"] == "ok" else {} for r in per]  # rates and sizes of unique roots
        sizes = [r.get("sizes") or {} for r in ok]
        row = {
            "t": first["t"], "c": first["c"], "layer": first["layer"], "exponents": exps,
            "follows": _follows(exps, predicted, all(r["status"] == "ok" for r in per)),
            "status": [r["status"] for r in per], "monotone": [r["monotone"] for r in per],
            **{q: [r.get(q) for r in ok] for q in (*RATES, "eta_A_n")},
            **{q: [s.get(q) for s in sizes] for q in DIAGNOSTICS},
            "size_error": [None if not s else max(abs(s["delta1"] / first["c"] - 1),
                                                  abs(s["delta2"] / first["c"] - 1))
                           for s in sizes]}
        rows.append(row | _aligned(payloads, row, first["layer"], cfg.init))
    return {"model": cfg.model, "readout": cfg.readout, "init": cfg.init,
            "widths": [payload["width"] for payload in payloads], "seeds": cfg.seeds,
            "tokens": cfg.n_points, "predicted": predicted, "rows": rows, "config": asdict(cfg),
            "seconds": sum(payload["seconds"] for payload in payloads)}


def _exp(e) -> str:
    if e is None:
        return "-"
    if e["interval"] is None:
        return f"{e['slope']:+.2f}"
    lo, hi = e["interval"]
    return f"{e['slope']:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _span(values) -> str:
    v = [x for x in values if x is not None]
    return "-" if not v else f"{min(v):.2g}..{max(v):.2g}"


def _from_alignment(r: dict, verdict: dict) -> list:
    """The alignment's exponent and the verdict against the prediction that follows from it."""
    a = r.get("alignment_exponent")
    return ["-", "-"] if a is None else [f"{a:+.2f}", verdict[r["follows_alignment"]]]


def table(setting: dict) -> str:
    """The (t, c) table of one setting (markdown)."""
    predicted = setting["predicted"]
    verdict = {True: "yes", False: "**no**", None: "-"}
    rows = [[r["t"], f"{r['c']:g}", r["layer"], *(_exp(r["exponents"][k]) for k in RATES),
             f"{sum(s == 'ok' for s in r['status'])}/{len(r['status'])}", _span(r["eta_A_n"]),
             _span(r["ZA_moved"] if setting["init"] == "zero_B" else r["B_moved"]),
             _span(r["input_moved"]), _span(r["output_moved"]), verdict[r["follows"]],
             *_from_alignment(r, verdict)] for r in setting["rows"]]
    moved = "Z_A moved" if setting["init"] == "zero_B" else "B moved"
    head = ["t", "c", "layer", "eta_A*", "eta_B*", "ratio", "unique roots", "eta_A* n", moved,
            "input moved", "output moved",
            f"follows ({predicted['eta_A']:+g}, {predicted['eta_B']:+g}, {predicted['ratio']:+g})",
            "alignment ~ n^a", "follows (-a, 0, +a)"]
    return markdown_table(head, rows)


def headline(summary: dict) -> str:
    """The lines the demo and the command print: the small-update exponents per setting."""
    lines = []
    for name, s in summary["settings"].items():
        r = s["rows"][0]
        predicted = s["predicted"]
        lines.append(f"{name:14s} t = {r['t']}, c = {r['c']:g}, {r['layer']}: " + ", ".join(
            f"{RATE_NAMES[k]} ~ n^{_exp(r['exponents'][k])} (predicted {predicted[k]:+g})"
            for k in RATES))
        if r.get("alignment_exponent") is not None:
            lines.append(f"{'':14s} A's step lines up with its inputs like n^"
                         f"{r['alignment_exponent']:+.2f} (the counting takes n^+1): eta_A* "
                         f"predicted ~ n^{r['predicted_from_alignment']['eta_A']:+.2f}")
    return "\n".join(lines)


def markdown(summary: dict, figures: list) -> str:
    parts = ["# Balanced rates: where RMS(delta1) = RMS(delta2) = c at step t\n",
             "Predicted exponents (`tinylora/lab/predictions.py`, `docs/width_law.md`):\n",
             predictions.markdown(optimizer="adam", held="output"),
             "Exponents of n fitted over the widths with a unique root (95 % intervals). "
             "\"unique roots\": widths where the scan found exactly one crossing and Newton "
             "met c within 0.1 %. The moved columns are ranges over the widths: "
             "RMS(Z (A_t - A_0)) / RMS(Z A_0) (Init[1]) or RMS(B_t - B_0) / RMS(B_0) (Init[2]), "
             "the layer's input and the output's share of the first residual (unique roots "
             "only; `records.json` keeps every root, candidate and window). \"alignment\": the "
             "exponent a of RMS(Z sign(dA)) / RMS(Z) for A's first Adam step over the same "
             "widths (`tinylora/lab/alignment.py`): the counting takes a = 1 (n terms of one "
             "sign); with a measured, the balanced rates are predicted as (-a, 0, +a).\n"]
    for name, s in summary["settings"].items():
        init = predictions.INIT_NAMES[s["init"]]
        parts.append(f"## {name}: {s['model']}, readout {s['readout']}, {init}"
                     f", widths {s['widths'][0]}..{s['widths'][-1]}, {s['seeds']} seeds, "
                     f"{s['config']['n_points']} {'tokens' if s['model'] == 'block' else 'points'}"
                     f" per batch\n")
        parts.append(table(s))
        check = s.get("forward_check")
        if check:
            parts.append("Forward check, eta_A = a / n, eta_B = b: the last step T up to which "
                         f"both sizes are flat in n (|slope| <= {flatness.FLAT}):\n")
            parts.append(markdown_table(["a", "b", "T_flat"],
                                        [[f"{r['a']:g}", f"{r['b']:g}", r["T_flat"]]
                                         for r in check]))
    parts += [f"![{path.name}]({path.name})\n" for path in figures]
    return "\n".join(parts)


def main(args) -> int:
    result = execute(options_from_args(BalanceOptions, args))
    files = "summary.md, summary.json, records.json"
    print(f"{headline(result['summary'])}\nwrote {result['out']}/{files} and "
          f"{len(result['figures'])} figures")
    return 0


def execute(options: BalanceOptions, on_width_done=None) -> dict:
    """Run every setting (reusing finished widths), write every output."""
    cfgs = configs(options)
    widths = parse_list(options.widths) or (balance.FAST_WIDTHS if options.fast
                                         else balance.WIDTHS)[options.model]
    out = ResultsDir(options.out, {"command": "balance", **asdict(cfgs[0]), "readout": None,
                                "init": None})
    summary = {"command": "balance", "model": options.model, "predictions": predictions.table(),
               "settings": {}}
    records = {}
    plan = calibrate.balance_plan(cfgs, widths, out, options.backend)
    plan.announce()
    with plan.bar(show=not options.no_progress) as progress:
        for cfg in cfgs:
            payloads = balance.run(cfg, widths, out, options.backend, on_width_done, progress)
            records[cfg.name] = payloads
            setting = summarize(cfg, payloads)
            if cfg.model == "toy":
                key = f"{cfg.name}-flat-" + "-".join(map(str, widths))  # the widths change it
                setting["forward_check"] = out.cached(key, lambda c=cfg: flatness.check(
                    lambda w: balance.Evaluator(c, w, options.backend, steps=max(c.steps)),
                    widths, "fc2", max(c.steps)))
            summary["settings"][cfg.name] = setting
    out.write("records.json", records)
    out.write("summary.json", summary)
    figures = plots_width.balance_figures(summary, out)
    out.write("summary.md", markdown(summary, figures))
    return {"summary": summary, "figures": figures, "out": out.path}
