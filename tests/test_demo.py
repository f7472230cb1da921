"""`tinylora demo`: the whole story end to end (shrunk here so that the suite stays fast)."""

import json

from tinylora.cli import main
from tinylora.lab import coordcheck, demo, sweep, toy


def test_demo_end_to_end(tmp_path, capsys, monkeypatch):
    """The demo prints the headline (the balanced rates and the loss-optimal sweep, each against
    its own prediction, and what the difference means; coordinate check; speed-up) and writes
    summary.md with the figures of every part."""
    monkeypatch.setattr(toy, "WIDTHS", (16, 32, 64))
    monkeypatch.setattr(demo, "BALANCE_WIDTHS", (16, 32, 64))
    monkeypatch.setattr(sweep, "FAST_WIDTHS", (16, 32))
    monkeypatch.setattr(sweep, "FAST", sweep.SweepConfig(seeds=6, steps=8, n_train=16, n_test=8,
                                                         per_decade=2, window_A=(-7, -3),
                                                         window_B=(-5, -1)))
    monkeypatch.setattr(coordcheck, "FAST_WIDTHS", (16, 32))
    monkeypatch.setattr(demo, "BENCH_WIDTHS", (16,))
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    for words in ("Analytic toy", "Balanced rates", "(predicted -1)", "(predicted -0.5)",
                  "The difference", "ratio ~ n^", "one by one", "time per part"):
        assert words in out, words
    md = (tmp_path / "summary.md").read_text()
    assert md.count("![") >= 9
    for line in md.splitlines():
        if line.startswith("!["):
            assert (tmp_path / line.split("(")[1].rstrip(")")).exists(), line
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["timings_s"]) == {"analytic toy", "balanced rates", "width sweep",
                                         "coordinate check", "batched vs one by one"}
    assert summary["balance"]["settings"]["toy-sp-init1"]["predicted"]["ratio"] == 1.0
    assert summary["width_sweep"]["predicted"]["ratio"] == 0.5
