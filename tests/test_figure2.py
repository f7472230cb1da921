"""`tinylora toy-heatmap`: the paper's Figure 2 setting and the fine-tuning variant."""

import json

import pytest

from tinylora.lab.figure2 import SETTINGS
from tinylora.run.cli import main


def test_toy_heatmap_command_end_to_end(tmp_path, capsys):
    """--fast runs the three settings; each gets a heatmap figure and a summary entry saying
    where the best cell lies relative to the eta_A = eta_B diagonal; a rerun reuses them."""
    argv = ["toy-heatmap", "--fast", "--steps", "12", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["settings"]) == {f"{name}_n100" for name in SETTINGS}
    for result in summary["settings"].values():
        assert {"train_t10", "test_t10", "train_t12", "test_t12"} == set(result)
        assert result["train_t12"]["best"] is not None
    assert len(list(tmp_path.glob("toy_heatmap_*.png"))) == 3
    text = capsys.readouterr().out
    assert "diagonal" in text
    assert main(argv) == 0 and capsys.readouterr().out == text


def test_unknown_setting_is_a_clear_error(tmp_path, capsys):
    """An unknown --settings value exits with code 2 and a message naming the option, before
    anything runs (argparse refuses it)."""
    with pytest.raises(SystemExit) as stop:
        main(["toy-heatmap", "--fast", "--settings", "paper_adam", "--out", str(tmp_path)])
    assert stop.value.code == 2
    assert "argument --settings: expected one of paper_gd" in capsys.readouterr().err
