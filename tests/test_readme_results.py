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


def width_sweep_table(s=None) -> str:
    s = s or _load("width-sweep")
    lines = ["| width | best ratio eta_B*/eta_A* [interval] | LoRA loss | LoRA+ loss "
             "| LoRA / LoRA+ |",
             "| --- | --- | --- | --- | --- |"]
    for w, r, (lo, hi), a, b in zip(s["widths"], s["best_ratio"], s["ratio_interval"],
                                    s["loss_lora"], s["loss_loraplus"]):
        lines.append(f"| {w} | {_g(r)} [{_g(lo)}, {_g(hi)}] | {_g(a)} | {_g(b)} | {a / b:.2f} |")
    return "\n".join(lines)


def width_sweep_exponent(s=None) -> str:
    s = s or _load("width-sweep")
    lo, hi = s["exponent_interval"]
    inside = "contains" if lo <= s["theory_exponent"] <= hi else "does not contain"
    return (f"best ratio ~ width^{s['exponent']:.2f}, 95 % interval [{lo:.2f}, {hi:.2f}], which "
            f"{inside} the predicted {s['theory_exponent']:g}")


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


def demo_exponent() -> str:
    return width_sweep_exponent(_load("demo")["width_sweep"])


def prose_claims() -> list[str]:
    """The numbers quoted in the README's sentences, computed from the recorded runs."""
    sweep, bench = _load("width-sweep"), _load("bench")
    gains = [a / b for a, b in zip(sweep["loss_lora"], sweep["loss_loraplus"])]
    bases = json.loads((RESULTS / "finetune" / "records.json").read_text())["bases"]
    base = [f"{bases[str(w)]['loss_finetune_text']:.3f}" for w in _load("finetune")["widths"]]
    grid = [r["floor_ms"] / r["step_ms"] for r in bench["rows"]
            if r["workload"] == "grid" and r["dtype"] == "float32"]
    rate = {k: (sweep[f"exponent_{k}"], *sweep[f"exponent_{k}_interval"])
            for k in ("eta_A", "eta_B")}
    return [f"by {min(gains):.1f}x to {max(gains):.1f}x in training loss",
            *(f"{k}* ~ width^{e:.2f} [{lo:.2f}, {hi:.2f}]" for k, (e, lo, hi) in rate.items()),
            f"the frozen bases score {', '.join(base[:-1])} and {base[-1]} on Milton",
            f"batching them is {min(grid):.1f}x to {max(grid):.1f}x faster"]


TABLES = [toy_analytic_table, width_sweep_table, width_sweep_exponent, finetune_table, bench_table,
          demo_exponent]


def test_readme_result_tables_match_the_recorded_runs():
    """Each table (and the fitted exponent) in the README equals what its summary.json says."""
    readme = (ROOT / "README.md").read_text()
    for make in TABLES:
        assert make() in readme, f"README is out of date for {make.__name__}:\n{make()}"


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
        print(f"--- {make.__name__}\n{make()}\n")
    print("\n".join(prose_claims()))
