"""`tinylora demo`: the whole story end to end (shrunk here so that the suite stays fast)."""

import argparse
import dataclasses
import json

import pytest

from tinylora.bench import run as bench_run
from tinylora.lab import (
    analytic_toy,
    analytic_toy_report,
    balance_report,
    coordcheck,
    demo,
    figure2,
    sweep,
    sweep_report,
)
from tinylora.run import cli
from tinylora.run.cli import main
from tinylora.run.options import options_from_args
from tinylora.run.records import ResultsDir
from tinylora.text import ladder_command, pretrain_report, study


def test_demo_end_to_end(tmp_path, capsys, monkeypatch):
    """The demo prints the headline (the balanced rates and the loss-optimal sweep, each against
    its own prediction, and what the difference means; coordinate check; speed-up) and writes
    summary.md with the figures of every part."""
    monkeypatch.setattr(analytic_toy, "WIDTHS", (16, 32, 64))
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


DEMO_PARTS = [(analytic_toy_report, analytic_toy_report.ToyOptions),
              (balance_report, balance_report.BalanceOptions),
              (sweep_report, sweep_report.SweepOptions),
              (coordcheck, coordcheck.CoordcheckOptions)]
COMMANDS = [(demo, demo.DemoOptions), *DEMO_PARTS, (figure2, figure2.HeatmapOptions),
            (pretrain_report, pretrain_report.PretrainOptions), (study, study.FinetuneOptions),
            (ladder_command, ladder_command.LadderOptions),
            (bench_run, bench_run.BenchOptions)]  # the ten commands but gradcheck


def _parser(module) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser


def _argv(parser, options) -> list[str]:
    """The command line that gives `options`: every field that differs from its default."""
    flags = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}
    argv = []
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if value != f.default:
            argv += [flags[f.name]] if value is True else [flags[f.name], *(
                map(str, value) if isinstance(value, tuple) else [str(value)])]
    return argv


@pytest.mark.parametrize(("module", "cls"), COMMANDS, ids=lambda x: getattr(x, "__name__", ""))
def test_each_options_dataclass_is_its_commands_parser(module, cls):
    """A frozen dataclass with one field per CLI option and the same defaults: the parser's
    defaults, read by `options_from_args`, give ``cls()``; the module runs it with `execute`."""
    parser = _parser(module)
    assert cls.__dataclass_params__.frozen
    assert {f.name for f in dataclasses.fields(cls)} == set(vars(parser.parse_args([])))
    assert options_from_args(cls, parser.parse_args([])) == cls()
    assert callable(module.execute) and callable(module.main)


def test_every_command_of_the_cli_has_an_options_dataclass():
    """The rows of `tinylora.run.cli.COMMANDS` are exactly the commands pinned above, each named
    with whether a rerun resumes it (only the benchmark does not)."""
    assert {row.module for row in cli.COMMANDS} == {
        module.__name__.removeprefix("tinylora.") for module, _ in COMMANDS}
    assert [row.name for row in cli.COMMANDS if not row.resumable] == ["bench"]


def test_the_demo_builds_its_options_without_argparse(tmp_path, monkeypatch):
    """The demo constructs each command's dataclass directly (no parser is made), and each
    round-trips through the command's own parser and `options_from_args` with the same values."""
    real = argparse.ArgumentParser

    def refuse(*a, **k):
        raise AssertionError("the demo built an argparse parser")

    monkeypatch.setattr(argparse, "ArgumentParser", refuse)
    built = demo.part_options(demo.DemoOptions(backend="numpy", no_progress=True),
                              ResultsDir(tmp_path, {}))
    monkeypatch.setattr(argparse, "ArgumentParser", real)
    assert [type(o) for o in built.values()] == [cls for _, cls in DEMO_PARTS]
    for (module, cls), options in zip(DEMO_PARTS, built.values()):
        assert options.fast and options.no_progress and options.backend == "numpy"
        parser = _parser(module)
        assert options_from_args(cls, parser.parse_args(_argv(parser, options))) == options
