"""Every number the README reports from a recorded run is the number in that run's files.

The README's result tables are generated from `docs/results/*/summary.json` by the functions
below (`python tests/test_readme_results.py` prints them), and these tests check that the README
still says exactly that: a number in the README can't drift from the run that produced it.
"""

import json
from pathlib import Path

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


def _balanced_row(setting: dict) -> dict:
    return setting["rows"][0]  # the smallest size c at the earliest step t (t >= 2)


def width_law_table() -> str:
    """The table the science section opens with: each measurement against its own prediction."""
    lines = ["| measurement | setting | eta_A* | eta_B* | ratio | product |",
             "| --- | --- | --- | --- | --- | --- |"]
    bal = _load("balance")["settings"]["toy-sp-init1"]
    r = _balanced_row(bal)
    cells = [_exp(r["exponents"][k]["slope"], r["exponents"][k]["interval"], bal["predicted"][k])
             for k in RATES]
    lines.append(f"| balanced rates | toy, readout sp, Init[1], t = {r['t']}, c = {r['c']:g} | "
                 + " | ".join(cells) + " |")
    for folder in ("width-sweep", "width-sweep-mup", "width-sweep-init2"):
        s = _load(folder)
        cfg = s["config"]
        init = {"zero_B": "Init[1]", "zero_A": "Init[2]"}[cfg["init"]]
        cells = [_exp(s[SWEEP_KEYS[k]], s[f"{SWEEP_KEYS[k]}_interval"], s["predicted"][k])
                 for k in RATES]
        lines.append(f"| loss-optimal | toy, readout {cfg['readout']}, {init}, loss at step "
                     f"{cfg['steps']} | " + " | ".join(cells) + " |")
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
        lines.append(f"| {w} | {_g(a) if a else '-'} | {_g(b) if b else '-'} | {ratio} | "
                     f"{_g(pr) if pr else '-'} | {'yes' if s['identifiable'][i] else 'no'} | "
                     f"{_g(s['above_floor'][i])} | {gain:.2f} |")
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


def finetune_table(s=None) -> str:
    s = s or _load("finetune")
    lines = ["| d_model | LoRA loss | LoRA+ x16 loss | speed-up of LoRA+ x16 [interval] "
             "| best ratio |",
             "| --- | --- | --- | --- | --- |"]
    for w, a, b, sp, (lo, hi), r in zip(s["widths"], s["loss_lora"], s["loss_loraplus"],
                                        s["speedup"], s["speedup_interval"], s["best_ratio"]):
        lines.append(f"| {w} | {a:.4f} | {b:.4f} | {sp:.2f} [{lo:.2f}, {hi:.2f}] | {r:g} |")
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


def prose_claims() -> list[str]:
    """The numbers quoted in the README's sentences, computed from the recorded runs."""
    bench = _load("bench")
    bases = json.loads((RESULTS / "finetune" / "records.json").read_text())["bases"]
    base = [f"{bases[str(w)]['loss_finetune_text']:.3f}" for w in _load("finetune")["widths"]]
    grid = [r["floor_ms"] / r["step_ms"] for r in bench["rows"]
            if r["workload"] == "grid" and r["dtype"] == "float32"]
    gains = [a / b for f in ("width-sweep", "width-sweep-mup", "width-sweep-init2")
             for a, b in zip(_load(f)["loss_lora"], _load(f)["loss_loraplus"])]
    return [f"the frozen bases score {', '.join(base[:-1])} and {base[-1]} on Milton",
            f"batching them is {min(grid):.1f}x to {max(grid):.1f}x faster",
            f"LoRA / LoRA+ from {min(gains):.2f} to {max(gains):.2f}"]


TABLES = [toy_analytic_table, width_law_table, balance_table, lambda: sweep_table("width-sweep"),
          lambda: sweep_table("width-sweep-mup"), demo_lines, finetune_table, bench_table]


def test_readme_result_tables_match_the_recorded_runs():
    """Each table (and the fitted exponent) in the README equals what its summary.json says."""
    readme = (ROOT / "README.md").read_text()
    for make in TABLES:
        assert make() in readme, f"README is out of date:\n{make()}"


def test_readme_sentences_quote_the_recorded_numbers():
    """The numbers in the README's prose (gains, base losses, speed-ups) are the runs' numbers."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    for claim in prose_claims():
        assert claim in readme, claim


def test_readme_figures_exist():
    """Every image the README shows is a committed file."""
    readme = (ROOT / "README.md").read_text()
    images = [line.split("](")[1].split(")")[0] for line in readme.splitlines()
              if line.startswith("![")]
    assert images
    for image in images:
        assert (ROOT / image).is_file(), image


if __name__ == "__main__":
    for make in TABLES:
        print(f"---\n{make()}\n")
    print("\n".join(prose_claims()))
