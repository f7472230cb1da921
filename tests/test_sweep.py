"""tinylora.lab.sweep and sweep_analysis: the width sweep - resumable, honest about edges and
diverged cells, with the documented keys, and LoRA against LoRA+ scored on held-out seeds."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from tinylora.lab import optimum, sweep, sweep_analysis
from tinylora.run.cli import main
from tinylora.run.records import ResultsDir, encode

TINY = sweep.SweepConfig(seeds=6, steps=8, n_train=16, n_test=8, per_decade=2,
                         window_A=(-7, -3), window_B=(-5, -1), grow=1, max_rounds=6)
WIDTHS = (16, 32, 64)
KEYS = {"widths", "best_eta_A", "best_eta_B", "best_ratio", "best_product", "eta_A_interval",
        "eta_B_interval", "ratio_interval", "product_interval", "exponent", "exponent_interval",
        "exponent_eta_A", "exponent_eta_B", "exponent_product", "exponent_product_interval",
        "predicted", "predictions", "theory_exponent", "identifiable", "flat_widths",
        "ratio_located", "loss_lora", "loss_loraplus", "above_floor", "edge", "config",
        "fit_widths", "product_widths", "from_128", "cell_exponents", "prediction_note"}


class Stop(Exception):
    pass


def _run(out):
    return sweep.run(WIDTHS, TINY, ResultsDir(out, {}), show_progress=False)


def test_an_interrupted_run_resumes_to_the_same_summary(tmp_path, monkeypatch):
    """Killed after the first width, then rerun: finished widths are reused (not retrained)
    and summary.json is identical to an uninterrupted run's."""
    whole = sweep_analysis.summarize(_run(tmp_path / "a"), TINY)

    def stop_after_first(width):
        if width == WIDTHS[0]:
            raise Stop

    out = ResultsDir(tmp_path / "b", {})
    with pytest.raises(Stop):
        sweep.run(WIDTHS, TINY, out, show_progress=False, on_width_done=stop_after_first)
    trained = []
    real = sweep.sweep_width
    monkeypatch.setattr(sweep, "sweep_width",
                        lambda w, *a, **k: trained.append(w) or real(w, *a, **k))
    resumed = sweep_analysis.summarize(sweep.run(WIDTHS, TINY, out, show_progress=False), TINY)
    assert trained == list(WIDTHS[1:])
    assert json.dumps(encode(resumed)) == json.dumps(encode(whole))


def test_summary_has_the_documented_keys_and_its_own_prediction(tmp_path):
    """The keys of sweep_report's docstring, one entry per width; the prediction is the
    loss-optimal one of the readout that ran (sp: ratio n^1/2); each located estimate lies
    inside its bootstrap interval."""
    summary = sweep_analysis.summarize(_run(tmp_path), TINY)
    assert KEYS <= set(summary)
    assert summary["predicted"] == {"eta_A": -1.0, "eta_B": -0.5, "ratio": 0.5, "product": -1.5}
    assert summary["theory_exponent"] == 0.5
    for key in ("best_ratio", "ratio_interval", "loss_lora", "loss_loraplus", "above_floor"):
        assert len(summary[key]) == len(WIDTHS)
    for rate in ("eta_A", "eta_B", "ratio", "product"):
        for v, iv in zip(summary[f"best_{rate}"], summary[f"{rate}_interval"]):
            assert v is None or iv is None or iv[0] <= v <= iv[1]
    assert all(0 < f < 1 for f in summary["above_floor"])  # learning, not at the floor


def _planted_row(width, rng):
    """`analyze_width`'s row for a planted bowl at eta_A* = 0.1 / n, eta_B* = 0.2 n^-1/2."""
    u0, v0 = math.log10(0.1 / width), math.log10(0.2 * width**-0.5)
    grid = {}
    for ka in range(round(4 * u0) - 4, round(4 * u0) + 5):
        for kb in range(round(4 * v0) - 4, round(4 * v0) + 5):
            x = np.array([ka / 4 - u0, kb / 4 - v0])
            y = -1 + x @ np.array([[3.0, 1.0], [1.0, 3.0]]) @ x / 2
            grid[(ka, kb)] = [10 ** (y + 0.03 * rng.standard_normal()) for _ in range(8)]
    best = min(grid, key=lambda k: sum(grid[k]))
    return {"width": width, "edge": False, "located": optimum.locate(grid, 8, 4, rng, boot=100),
            "held_out": {"lora": 1.0, "loraplus": 1.0, "lora_eta": 0.01}, "above_floor": 0.1,
            "best_cell": list(best)}


def test_widths_not_located_are_left_out_of_the_fits():
    """A width whose optimum is not located (a flat valley) enters no fit of eta_A*, eta_B* or
    the ratio, nor the product's when its product is not located either; the exponents are
    those of the other widths alone, and the fit from n = 128 on keeps only those from 128."""
    cfg = replace(sweep.SweepConfig(), seeds=8)
    rng = np.random.default_rng(0)
    rows = [_planted_row(w, rng) for w in (64, 128, 256, 512, 1024)]
    rows[2]["located"].update(identifiable=False)
    s = sweep_analysis.summarize([], cfg, rows)
    assert s["fit_widths"] == [64, 128, 512, 1024] and s["flat_widths"] == [256]
    assert s["product_widths"] == [64, 128, 256, 512, 1024]  # a flat valley still places it
    kept = [rows[i] for i in (0, 1, 3, 4)]
    want = optimum.exponent([r["width"] for r in kept], [r["located"] for r in kept], "ratio", 8)
    assert s["exponent"] == want["slope"] and s["exponent"] == pytest.approx(0.5, abs=0.05)
    rows[2]["located"].update(product_identifiable=False)
    s = sweep_analysis.summarize([], cfg, rows)
    assert s["product_widths"] == [64, 128, 512, 1024]
    assert s["from_128"]["fit_widths"] == [128, 512, 1024]
    assert s["from_128"]["eta_A"]["slope"] == pytest.approx(-1.0, abs=0.05)


def test_each_optimizer_gets_its_own_prediction_and_uncovered_settings_none():
    """SGD with sp is set against (-1, 0, +1), not Adam's (-1, -1/2, +1/2); SGD with Init[2]
    and the paper's variant get no prediction, and say why."""
    assert sweep_analysis.prediction(replace(TINY, optimizer="sgd"))[0]["eta_B"] == 0.0
    predicted, why = sweep_analysis.prediction(replace(TINY, optimizer="sgd", init="zero_A"))
    assert predicted is None and "SGD" in why
    predicted, why = sweep_analysis.prediction(replace(TINY, variant="paper"))
    assert predicted is None and "both factors random" in why


def test_the_window_grows_until_the_optimum_is_inside():
    """A start window far below the useful rates: the best cell sits on its upper edge, so the
    window grows upward (only new cells are trained) until the best cell is `margin` inside."""
    cfg = sweep.SweepConfig(seeds=1, steps=8, n_train=16, n_test=8, per_decade=1,
                            window_A=(-7, -6), window_B=(-7, -6), grow=2, max_rounds=8, margin=1,
                            target="sin")
    payload = sweep.sweep_width(16, cfg)
    assert payload["window_A"][1] > -6 and payload["window_B"][1] > -6
    keys = [(c["kA"], c["kB"]) for c in payload["cells"]]
    assert len(keys) == len(set(keys))  # no cell trained twice
    assert not payload["edge"]


def _cell(ka, kb, losses):
    return {"kA": ka, "kB": kb, "eta_A": 10.0**ka, "eta_B": 10.0**kb,
            "train": [[1.0, x] for x in losses], "test": [[1.0, x] for x in losses]}


def test_each_method_is_scored_on_seeds_it_was_not_tuned_on():
    """Cell X is best on the even seeds and bad on the odd ones, cell Y the reverse: a method
    tuned on one half and scored on the other gets the bad losses (here 0.9), never the 0.1 a
    same-seed comparison would report."""
    x, y = _cell(0, 1, [0.1, 0.9, 0.1, 0.9]), _cell(1, 2, [0.9, 0.1, 0.9, 0.1])
    diag = [_cell(0, 0, [0.5] * 4)]
    out = sweep_analysis.held_out([x, y], diag, seeds=4)
    assert out["loraplus"] == pytest.approx(0.9) and out["lora"] == pytest.approx(0.5)


def test_diverged_cells_are_inf_and_left_out_of_the_fit(tmp_path):
    """A window that reaches absurd rates: those cells diverge (inf in the records, "inf" in
    JSON), the located optimum and the summary are still computed from the finite cells."""
    cfg = sweep.SweepConfig(seeds=6, steps=8, n_train=16, n_test=8, per_decade=1,
                            window_A=(-3, 4), window_B=(-3, 4), max_rounds=1)
    payload = sweep.sweep_width(16, cfg)
    losses = [s[-1] for c in payload["cells"] for s in c["train"]]
    assert any(math.isinf(v) for v in losses) and any(math.isfinite(v) for v in losses)
    row = sweep_analysis.analyze_width(payload, cfg)
    assert row["best_cell"] is not None
    summary = sweep_analysis.summarize([payload], cfg)
    assert "inf" not in json.dumps(encode(summary["best_eta_A"]))


def test_width_sweep_command_end_to_end(tmp_path, capsys):
    """`tinylora width-sweep --fast` (two small widths): files, keys, the printed headline with
    the exponents against this readout's prediction; a rerun reuses every width."""
    argv = ["width-sweep", "--fast", "--widths", "16,32", "--steps", "8", "--readout", "mup",
            "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert KEYS <= set(summary) and summary["widths"] == [16, 32]
    assert summary["predicted"]["ratio"] == 1.0  # mup: the paper's n^1
    for name in ("width_sweep_heatmaps.png", "width_sweep_rates_vs_width.png"):
        assert (tmp_path / name).exists()
    assert len(list((tmp_path / "parts").glob("width*.json"))) == 2
    first = capsys.readouterr().out
    assert "ratio ~ n^" in first and "predicted +1" in first
    before = (tmp_path / "parts" / "width16.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (tmp_path / "parts" / "width16.json").stat().st_mtime_ns == before
    assert capsys.readouterr().out == first
