"""Every number the results page (docs/results/README.md) reports from a recorded run is the
number in that run's files.

Its result tables are generated from `docs/results/*/summary.json` by the functions below
(`python tests/test_readme_results.py` prints them), and these tests check that the page still
says exactly that: a number can't drift from the run that produced it.
"""

import json
import math
from pathlib import Path

import pytest

from tinylora.lab import predictions
from tinylora.run.records import read_json
from tinylora.text.report import summarize  # the held-out profile, per ratio

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def _load(name):
    return json.loads((RESULTS / name / "summary.json").read_text())


def _g(x):
    return f"{x:.3g}"


def toy_analytic_table(s=None) -> str:
    """Slopes of log|delta_i| against log n at the reported step, measured and predicted."""
    s = s or _load("toy-analytic")
    lines = ["| optimizer / schedule | delta1 | delta2 | delta3 |", "| --- | --- | --- | --- |"]
    for opt, o in s["by_optimizer"].items():
        for sched, slopes in o["slopes"].items():
            cells = [f"{slopes[q]:+.3f} ({o['theory'][sched][q]:+.2f})"
                     for q in ("delta1", "delta2", "delta3")]
            lines.append(f"| {opt}/{sched} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _exp(x, iv, predicted) -> str:
    """'+0.95 [+0.87, +1.04] (+1)': measured exponent [95 % interval] (its own prediction)."""
    if x is None:
        return f"- ({predicted:+g})"
    ci = "" if iv is None else f" [{iv[0]:+.2f}, {iv[1]:+.2f}]"
    return f"{x:+.2f}{ci} ({predicted:+g})"


SWEEP_KEYS = {"eta_A": "exponent_eta_A", "eta_B": "exponent_eta_B", "ratio": "exponent",
              "product": "exponent_product"}
RATES = ("eta_A", "eta_B", "ratio", "product")
INITS = {"zero_B": "Init[1]", "zero_A": "Init[2]"}


def _balanced_row(setting: dict) -> dict:
    return setting["rows"][0]  # the smallest size c at the earliest step t (t >= 2)


def _widths(ws) -> str:
    """'64..4096' for a run of doubling widths, else the list."""
    doubling = all(b == 2 * a for a, b in zip(ws, ws[1:]))
    return f"{ws[0]}..{ws[-1]}" if len(ws) > 1 and doubling else ", ".join(map(str, ws))


def _sweep_rows(folder: str, label: str) -> list[str]:
    """A sweep's fit over its located widths, and from n = 128 on, against its prediction."""
    s = _load(folder)
    rows = []
    for fit, widths in ((s, s["fit_widths"]), (s["from_128"], s["from_128"]["fit_widths"])):
        cells = []
        for k in RATES:
            if fit is s:
                x, iv = s[SWEEP_KEYS[k]], s[f"{SWEEP_KEYS[k]}_interval"]
            else:
                x, iv = (fit[k] or {}).get("slope"), (fit[k] or {}).get("interval")
            cells.append(_exp(x, iv, s["predicted"][k]))
        product = s["product_widths"] if fit is s else fit["product_widths"]
        where = ("" if fit is s else "from n = 128: ") + _widths(widths) + (
            "" if product == widths else f" (product: {_widths(product)})")
        rows.append(f"| loss-optimal | {label} | {where} | " + " | ".join(cells) + " |")
    return rows


def width_law_table() -> str:
    """The table the results page opens with: each measurement against its own prediction,
    the loss-optimal fits over every located width and from n = 128 on."""
    lines = ["| measurement | setting | widths fitted | eta_A* | eta_B* | ratio | product |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    bal = _load("balance")["settings"]["toy-sp-init1"]
    r = _balanced_row(bal)
    cells = [_exp(r["exponents"][k]["slope"], r["exponents"][k]["interval"], bal["predicted"][k])
             for k in RATES]
    lines.append(f"| balanced | toy, Adam, readout sp, Init[1], t = {r['t']}, c = {r['c']:g} | "
                 f"{_widths(bal['widths'])} | " + " | ".join(cells) + " |")
    for folder in ("width-sweep", "width-sweep-mup", "width-sweep-init2", "width-sweep-layer"):
        cfg = _load(folder)["config"]
        held = "" if cfg["held"] == "output" else ", the layer's change held"
        lines += _sweep_rows(folder, f"toy, Adam, readout {cfg['readout']}, "
                                     f"{INITS[cfg['init']]}{held}")
    s = _load("width-sweep-sgd")
    cells = [_exp(s["cell_exponents"][k]["slope"], s["cell_exponents"][k]["interval"],
                  s["predicted"][k]) for k in RATES]
    lines.append(f"| loss-optimal (best cell) | toy, SGD, readout sp, Init[1] | "
                 f"{_widths(s['cell_exponents']['ratio']['widths'])} | " + " | ".join(cells)
                 + " |")
    return "\n".join(lines)


def alignment_table() -> str:
    """The Transformer block's balanced eta_A* (t = 2, c = 0.01) at 64 and 1024 tokens per
    batch, against the counting's -1 and against -a, a the measured alignment of A's step."""
    lines = ["| tokens per batch | layer | widths | alignment ~ n^a | local exponents of the "
             "alignment | eta_A* | counting: -1 | from the alignment: -a |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for folder in ("balance-block", "balance-block-1024"):
        s = _load(folder)["settings"]["block"]
        for r in s["rows"]:
            if r["t"] != 2:
                continue
            e = r["exponents"]["eta_A"]
            local = ", ".join(f"{x:+.2f}" for x in r["alignment_local"])
            verdict = {True: "holds", False: "**outside**", None: "-"}
            inside = e["interval"][0] <= -1 <= e["interval"][1]
            lines.append(f"| {s['tokens']} | {r['layer']} | {_widths(e['widths'])} | "
                         f"{r['alignment_exponent']:+.2f} | {local} | "
                         f"{_exp(e['slope'], e['interval'], -1)} | "
                         f"{'holds' if inside else '**outside**'} | "
                         f"{r['predicted_from_alignment']['eta_A']:+.2f}: "
                         f"{verdict[r['follows_alignment']]} |")
    return "\n".join(lines)


def balance_table(name: str = "toy-sp-init1") -> str:
    """The (t, c) table of one balanced-rate setting: where the exponents follow the
    prediction and where they leave it, with what had moved."""
    s = _load("balance")["settings"][name]
    p = s["predicted"]
    lines = ["| t | c | eta_A* | eta_B* | ratio | unique roots | eta_A* n | Z_A moved "
             "| output moved |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in s["rows"]:
        e = r["exponents"]
        cells = [_exp(e[k]["slope"], e[k]["interval"], p[k]) if e[k] else f"- ({p[k]:+g})"
                 for k in ("eta_A", "eta_B", "ratio")]
        ok = sum(st == "ok" for st in r["status"])
        lines.append(f"| {r['t']} | {r['c']:g} | " + " | ".join(cells)
                     + f" | {ok}/{len(r['status'])} | {_span(r['eta_A_n'])} | "
                     f"{_span(r['ZA_moved'])} | {_span(r['output_moved'])} |")
    return "\n".join(lines)


def _span(values) -> str:
    v = [x for x in values if x is not None]
    return "-" if not v else f"{min(v):.2g} to {max(v):.2g}"


def sweep_table(folder: str) -> str:
    """Per width: the located optimum with its bootstrap interval, held-out LoRA / LoRA+."""
    s = _load(folder)
    lines = ["| width | eta_A* | eta_B* | ratio [interval] | product | located | loss / start "
             "| LoRA / LoRA+ (held out) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, w in enumerate(s["widths"]):
        a, b, r, pr = (s[f"best_{k}"][i] for k in RATES)
        iv = s["ratio_interval"][i]
        ratio = "-" if r is None else f"{_g(r)}" + ("" if iv is None else
                                                     f" [{_g(iv[0])}, {_g(iv[1])}]")
        gain = s["loss_lora"][i] / s["loss_loraplus"][i]
        located = "yes" if s["identifiable"][i] else (
            "no (product: yes)" if w in s["product_widths"] else "no")
        lines.append(f"| {w} | {_g(a) if a else '-'} | {_g(b) if b else '-'} | {ratio} | "
                     f"{_g(pr) if pr else '-'} | {located} | "
                     f"{_g(s['above_floor'][i])} | {gain:.2f} |")
    return "\n".join(lines)


def sgd_table() -> str:
    """The SGD sweep per width: the best cell (the loss falls until the rates diverge, so there
    is no stationary point to fit), how far training got, held-out LoRA / LoRA+."""
    s = _load("width-sweep-sgd")
    per = s["config"]["per_decade"]
    lines = ["| width | best cell eta_A | eta_B | ratio | loss / start | LoRA / LoRA+ (held out) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for i, w in enumerate(s["widths"]):
        ka, kb = s["best_cell"][i]
        plus = float(s["loss_loraplus"][i])  # "inf" where LoRA+'s rates diverged held out
        gain = (f"{s['loss_lora'][i] / plus:.2f}" if math.isfinite(plus)
                else "LoRA+ diverged held out")
        lines.append(f"| {w} | {_g(10 ** (ka / per))} | {_g(10 ** (kb / per))} | "
                     f"{_g(10 ** ((kb - ka) / per))} | {_g(s['above_floor'][i])} | {gain} |")
    return "\n".join(lines)


def demo_lines() -> str:
    """The demo's two measurements, each against its own prediction (as the README quotes)."""
    d = _load("demo")
    bal = d["balance"]["settings"]["toy-sp-init1"]
    r = _balanced_row(bal)
    e = r["exponents"]
    parts = [f"{k} {_exp(e[k]['slope'], e[k]['interval'], bal['predicted'][k])}"
             for k in ("eta_A", "eta_B", "ratio")]
    s = d["width_sweep"]
    parts2 = [f"{k} {_exp(s[SWEEP_KEYS[k]], s[SWEEP_KEYS[k] + '_interval'], s['predicted'][k])}"
              for k in RATES]
    return ("balanced: " + ", ".join(parts) + "; loss-optimal (fast sweep, readout sp): "
            + ", ".join(parts2))


def _iv(m, iv, fmt="{:.4f}") -> str:
    return fmt.format(m) + ("" if iv is None or iv[0] == iv[1] else
                            f" [{fmt.format(iv[0])}, {fmt.format(iv[1])}]")


def _best(b, iv, note) -> str:
    return f"not located ({note})" if b is None else _iv(b, iv, "{:.3g}")


def finetune_table(s=None) -> str:
    """Per (init, width): LoRA, LoRA+ 16, the tuned ratio, the located best ratio (held-out
    seeds, 95 %), then each init's exponent against its prediction."""
    s = s or _load("finetune")
    lines = ["| init | d_model | LoRA loss | LoRA+ x16 loss | speed-up of x16 | tuned ratio "
             "| its speed-up | best ratio [95 %] |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, w in enumerate(s["widths"]):
        tuned = _iv(s["speedup_tuned_lr_ratio"][i], s["speedup_tuned_lr_ratio_interval"][i],
                    "{:.2f}")
        best = _best(s["best_lr_ratio"][i], s["best_lr_ratio_interval"][i],
                     s["best_lr_ratio_note"][i])
        lines.append(
            f"| {INITS[s['init'][i]]} | {w} | {_iv(s['loss_lora'][i], s['loss_lora_interval'][i])} "
            f"| {_iv(s['loss_loraplus'][i], s['loss_loraplus_interval'][i])} "
            f"| {_iv(s['speedup'][i], s['speedup_interval'][i], '{:.2f}')} "
            f"| {s['tuned_lr_ratio'][i]:g} | {tuned} | {best} |")
    lines.append("")
    for init, slope in s["lr_ratio_exponent"].items():
        pred, widths = s["predicted_lr_ratio_exponent"][init], s["lr_ratio_exponent_widths"][init]
        expected = "no prediction" if pred is None else f"predicted {pred:+g}"
        if slope is None:
            lines.append(f"- {INITS[init]}: exponent not measured (best ratio located at "
                         f"{len(widths)} width{'' if len(widths) == 1 else 's'}; {expected})")
        else:
            iv = s["lr_ratio_exponent_interval"][init]
            lines.append(f"- {INITS[init]}: best ratio ~ d_model^{slope:+.2f} [{iv[0]:+.2f}, "
                         f"{iv[1]:+.2f}] from d_model {', '.join(map(str, widths))} ({expected})")
    return "\n".join(lines)


def bench_table(s=None) -> str:
    s = s or _load("bench")
    lines = ["| workload | width | step ms | floor ms | torch ms | step/floor | step/torch |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in s["rows"]:
        if r["dtype"] != "float32":
            continue
        torch = "-" if r["torch_ms"] is None else f"{r['torch_ms']:.2f}"
        ratio_t = "-" if r["ratio_torch"] is None else f"{r['ratio_torch']:.2f}"
        lines.append(f"| {r['workload']} | {r['width']} | {r['step_ms']:.2f} | {r['floor_ms']:.2f} "
                     f"| {torch} | {r['ratio_floor']:.2f} | {ratio_t} |")
    return "\n".join(lines)


def finetune_claims() -> list[str]:
    """The fine-tuning section's sentences, from its summary.json and records.json."""
    s = _load("finetune")
    rows = {(i, w): k for k, (i, w) in enumerate(zip(s["init"], s["widths"]))}
    one = [rows["zero_B", w] for w in (64, 128, 256)]
    two = [rows["zero_A", w] for w in (64, 128, 256)]
    b, iv = s["best_lr_ratio"], s["best_lr_ratio_interval"]
    e, ei = s["lr_ratio_exponent"]["zero_B"], s["lr_ratio_exponent_interval"]["zero_B"]

    records = read_json(RESULTS / "finetune" / "records.json")
    d = next(d for d in summarize(records)[1] if (d["width"], d["init"]) == (256, "zero_B"))
    means = {lr_ratio: m[0] for lr_ratio, m in d["profile"].items()}
    flat = max(means[x] for x in (1.0, 2.0, 4.0)) - min(means[x] for x in (1.0, 2.0, 4.0))
    base = {b["label"]: b for b in s["baselines"]}
    full, r8 = base["full fine-tuning"], base["LoRA rank 8"]
    ranks = sorted({b["r"] for b in s["baselines"] if b["rule"] != "full"})
    overlap = all(base[f"LoRA rank {r}"]["loss_interval"][0]
                  <= base[f"rsLoRA rank {r}"]["loss_interval"][1]
                  and base[f"rsLoRA rank {r}"]["loss_interval"][0]
                  <= base[f"LoRA rank {r}"]["loss_interval"][1] for r in ranks)
    lo, hi = ranks[0], ranks[-1]
    losses = [base[f"LoRA rank {r}"]["loss"] for r in ranks]
    falls = all(a > b for a, b in zip(losses, losses[1:]))
    baselines = [f"full fine-tuning (every base array) ends at {full['loss']:.4f} "
                 f"[{full['loss_interval'][0]:.4f}, {full['loss_interval'][1]:.4f}] against "
                 f"plain LoRA's {r8['loss']:.4f}",
                 f"from {base[f'LoRA rank {lo}']['loss']:.4f} at rank {lo} to "
                 f"{base[f'LoRA rank {hi}']['loss']:.4f} at rank {hi} with alpha / r (rsLoRA's "
                 f"alpha / sqrt(r): {base[f'rsLoRA rank {lo}']['loss']:.4f} and "
                 f"{base[f'rsLoRA rank {hi}']['loss']:.4f})",
                 "LoRA's loss falls with its rank" if falls else "(not monotone in the rank)",
                 "the two scale rules overlap within their intervals at every rank"
                 if overlap else "(the scale rules do not overlap at some rank)"]
    flatter = [o[k] for o in s["overstatement"] for k in ("lora", "loraplus")]
    over = s["overstatement"][one[2]]
    sp2 = [s["speedup"][k] for k in two]
    tu2 = [s["speedup_tuned_lr_ratio"][k] for k in two]
    return [f"{b[one[0]]:.1f} [{iv[one[0]][0]:.1f}, {iv[one[0]][1]:.1f}] at d_model 64 and "
            f"{b[one[1]]:.1f} [{iv[one[1]][0]:.1f}, {iv[one[1]][1]:.1f}] at 128",
            f"the tuning seeds had picked {s['tuned_lr_ratio'][one[2]]:g}; the profile from 1 to 4 "
            f"is flat within {math.ceil(flat * 1000) / 1000:.3f} nats",
            f"{b[two[0]]:.0f} [{iv[two[0]][0]:.0f}, {iv[two[0]][1]:.0f}] at 64",
            f"is {e:+.2f} [{ei[0]:+.2f}, {ei[1]:+.2f}]",
            "(speed-ups " + ", ".join(f"{s['speedup'][k]:.2f}" for k in one) + ")",
            "(speed-ups " + ", ".join(f"{s['speedup_tuned_lr_ratio'][k]:.2f}" for k in one) + ")",
            f"speed-ups {min(sp2):.1f} to {max(sp2):.1f} at ratio 16, {min(tu2):.1f} to "
            f"{max(tu2):.1f} at the tuned ratio",
            f"({s['loss_tuned_lr_ratio'][two[2]]:.4f} against {s['loss_lora'][one[2]]:.4f} at "
            "d_model 256)", *baselines,
            f"differs from its tuning-seed loss by {min(flatter):+.4f} to {max(flatter):+.4f} "
            f"nats, and the LoRA - LoRA+ x16 gap of Init[1] at d_model 256 is "
            f"{over['gap_tuning_seeds']:+.4f} on the tuning seeds but "
            f"{over['gap_eval_seeds']:+.4f} held out",
            f"| {sum(r['seconds'] for r in records['runs']) / 60:.0f} min of runs (`--jobs 2` "
            "runs two at a time) |"]


def prose_claims() -> list[str]:
    """The numbers quoted in the README's sentences, computed from the recorded runs."""
    bench = _load("bench")
    bases = json.loads((RESULTS / "finetune" / "records.json").read_text())["bases"]
    base = [f"{bases[str(w)]['loss_finetune_text']:.3f}" for w in
            sorted(set(_load("finetune")["widths"]))]
    grid = [r["floor_ms"] / r["step_ms"] for r in bench["rows"]
            if r["workload"] == "grid" and r["dtype"] == "float32"]
    gains = [a / b for f in ("width-sweep", "width-sweep-mup", "width-sweep-init2")
             for a, b in zip(_load(f)["loss_lora"], _load(f)["loss_loraplus"])]
    return [f"the frozen bases score {', '.join(base[:-1])} and {base[-1]} on Milton",
            *finetune_claims(),
            f"batching them is {min(grid):.1f}x to {max(grid):.1f}x faster",
            f"LoRA / LoRA+ from {min(gains):.2f} to {max(gains):.2f}"]


TABLES = [toy_analytic_table, width_law_table, alignment_table, balance_table,
          lambda: sweep_table("width-sweep"), lambda: sweep_table("width-sweep-mup"),
          lambda: sweep_table("width-sweep-layer"), sgd_table, demo_lines, finetune_table,
          bench_table, predictions.markdown]


PAGE = RESULTS / "README.md"  # the results page (the README keeps the verdict and links it)


def test_result_tables_match_the_recorded_runs():
    """Each table (and the fitted exponent) on the results page equals what its summary.json
    says."""
    page = PAGE.read_text()
    for make in TABLES:
        assert make() in page, f"docs/results/README.md is out of date:\n{make()}"


def test_result_sentences_quote_the_recorded_numbers():
    """The numbers in the prose of the results page and the README (gains, base losses,
    speed-ups, run times) are the runs' numbers."""
    page = " ".join((PAGE.read_text() + (ROOT / "README.md").read_text()).split())
    for claim in prose_claims():
        assert claim in page, claim


@pytest.mark.parametrize("page", [ROOT / "README.md", PAGE], ids=["README", "results page"])
def test_figures_shown_exist(page):
    """Every image the README and the results page show is a committed file."""
    images = [line.split("](")[1].split(")")[0] for line in page.read_text().splitlines()
              if line.startswith("![")]
    assert images
    for image in images:
        assert (page.parent / image).is_file(), image


LADDER = RESULTS / "finetune-ladder"  # the recorded CPU ladder (issue 28): d_model 128 only


def ladder_claims() -> list[str]:
    """Section 3b's sentences, from finetune-ladder/summary.json and its cpu_ladder.log."""
    s = _load("finetune-ladder")
    log = (LADDER / "cpu_ladder.log").read_text().splitlines()
    wall = next(line for line in log if line.startswith("128 + control done")).split()[-2]
    lines = [f"Recorded so far: **d_model {s['config']['widths'][0]} only**"
             if len(s["config"]["widths"]) == 1 else "(more than one width recorded)",
             f"on the CPU ({wall} s), with the {s['chains'][1]['tokens_per_batch']}-token control"]
    for c, what in zip(s["chains"], ("1024 tokens per batch:",
                                     f"the {s['chains'][1]['tokens_per_batch']}-token control:")):
        g, iv = c["gain_tuned"], c["gain_tuned_interval"]
        lines.append(f"{what} the tuning seeds pick ratio {c['tuned_lr_ratio']:g}, whose gain over "
                     f"ratio 1 is {g:.4f} [{iv[0]:.4f}, {iv[1]:.4f}] nats (ratio 1 ends at "
                     f"{c['loss_ratio1']:.4f})")
    assert s["chains"][0]["tokens_per_batch"] == 1024 and len(s["chains"]) == 2
    assert s["lr_ratio_exponent"]["zero_B"]["slope"] is None  # one width: no slope to quote
    return lines


def test_ladder_section_quotes_the_recorded_ladder():
    """Section 3b (the fine-tuning ladder) quotes finetune-ladder/summary.json's tuned ratios,
    gains over ratio 1 with their 95 % intervals, ratio-1 losses, and the log's wall time."""
    page = " ".join(PAGE.read_text().split())
    for claim in ladder_claims():
        assert " ".join(claim.split()) in page, claim


def readme_verdict_claims() -> list[str]:
    """The README's verdict sentences that carry numbers: the block's alignment at 1024 tokens
    for the layers that read layer-normed tokens (q, k, v, fc1) with their balanced eta_A*
    exponents, from balance-block-1024/summary.json; the ladder's CPU rung, from its summary."""
    rows = [r for r in _load("balance-block-1024")["settings"]["block"]["rows"]
            if r["t"] == 2 and r["layer"] in ("attn.q", "attn.k", "attn.v", "mlp.fc1")]
    a = sorted(r["alignment_exponent"] for r in rows)
    e = sorted(r["exponents"]["eta_A"]["slope"] for r in rows)
    c = _load("finetune-ladder")["chains"][0]
    iv = c["gain_tuned_interval"]
    return [f"like n^{a[0]:.2f} to n^{a[-1]:.2f}, and A's balanced rate falls like "
            f"n^{e[-1]:.2f} to n^{e[0]:.2f}, not n^-1",
            f"kept ratio {c['tuned_lr_ratio']:g}, {c['gain_tuned']:.4f} [{iv[0]:.4f}, "
            f"{iv[1]:.4f}] nats better than ratio 1"]


def test_readme_verdict_quotes_the_recorded_numbers():
    """The README's verdict quotes the block's recorded alignment and balanced-rate exponents
    and the ladder's CPU rung as their summaries say."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    for claim in readme_verdict_claims():
        assert claim in readme, claim


if __name__ == "__main__":
    for make in TABLES:
        print(f"---\n{make()}\n")
    print("\n".join(prose_claims() + ladder_claims()))
