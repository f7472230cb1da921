"""tinylora.lab.sweep: the width sweep - resumable, honest about edges, with the documented keys."""

import json

import pytest

from tinylora.cli import main
from tinylora.lab import sweep
from tinylora.records import ResultsDir, encode

TINY = sweep.SweepConfig(seeds=2, steps=10, n_train=16, n_test=8, per_decade=2,
                         window_A=(-5, -3), window_B=(-3, -1), grow=1, max_rounds=6)
WIDTHS = (16, 32, 64)
KEYS = {"widths", "best_ratio", "ratio_interval", "loss_lora", "loss_loraplus", "exponent",
        "exponent_interval", "theory_exponent"}


class Stop(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_summary(tmp_path, monkeypatch):
    """Killed after the first width, then rerun: finished widths are reused (not retrained)
    and summary.json is identical to an uninterrupted run's."""
    whole = sweep.summarize(sweep.run(WIDTHS, TINY, ResultsDir(tmp_path / "a", {}),
                                      show_progress=False), TINY)

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
    resumed = sweep.summarize(sweep.run(WIDTHS, TINY, out, show_progress=False), TINY)
    assert trained == list(WIDTHS[1:])
    assert json.dumps(encode(resumed)) == json.dumps(encode(whole))


def test_summary_has_the_documented_keys(tmp_path):
    """Anything can check a sweep: the keys named in the issue, one entry per width."""
    summary = sweep.summarize(sweep.run(WIDTHS, TINY, ResultsDir(tmp_path, {}),
                                        show_progress=False), TINY)
    assert KEYS <= set(summary) and summary["theory_exponent"] == 1.0
    for key in ("best_ratio", "ratio_interval", "loss_lora", "loss_loraplus"):
        assert len(summary[key]) == len(WIDTHS)
    for ratio, (lo, hi) in zip(summary["best_ratio"], summary["ratio_interval"]):
        assert lo < ratio < hi
    assert summary["exponent_interval"][0] <= summary["exponent"] <= summary["exponent_interval"][1]
    assert all(p <= q for p, q in zip(summary["loss_loraplus"], summary["loss_lora"]))


def test_the_window_grows_until_the_optimum_is_interior():
    """A start window far below the useful rates: the best cell sits on its upper edge, so the
    window grows upward (only new cells are trained) until the optimum is inside."""
    cfg = sweep.SweepConfig(seeds=1, steps=8, n_train=16, n_test=8, per_decade=1,
                            window_A=(-7, -6), window_B=(-7, -6), grow=2, max_rounds=6)
    payload = sweep.sweep_width(16, cfg)
    assert payload["window_A"][1] > -6 and payload["window_B"][1] > -6
    keys = [(c["kA"], c["kB"]) for c in payload["cells"]]
    assert len(keys) == len(set(keys))  # no cell trained twice
    analysis = sweep.analyze_width(payload, cfg)
    best = analysis["best"]
    assert payload["window_A"][0] < best["kA"] < payload["window_A"][1] or payload["edge"]


def test_width_sweep_command_end_to_end(tmp_path, capsys):
    """`tinylora width-sweep --fast` (two small widths): files, keys, the printed headline;
    a rerun with the same arguments reuses every width."""
    argv = ["width-sweep", "--fast", "--widths", "16,32", "--steps", "8", "--seeds", "1",
            "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert KEYS <= set(summary) and summary["widths"] == [16, 32]
    assert (tmp_path / "width_sweep_best_ratio_vs_width.png").exists()
    assert len(list((tmp_path / "parts").glob("width*.json"))) == 2
    first = capsys.readouterr().out
    assert "best ratio" in first and "width^" in first
    before = (tmp_path / "parts" / "width16.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (tmp_path / "parts" / "width16.json").stat().st_mtime_ns == before
    assert capsys.readouterr().out == first
