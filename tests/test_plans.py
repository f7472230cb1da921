"""Long work says what it is before it starts, then counts down: every command that can take
over a minute prints how much work it is and about how long it will take here (from timing a
piece of its own work, never a constant), then draws one bar with the total and the time left.
These tests pin the line's presence and shape and the bar's bookkeeping, never a timing."""

import os
import re

import pytest

from tinylora.run import progress
from tinylora.run.cli import main
from tinylora.run.progress import Plan, duration

PLAN_LINE = re.compile(r"^tinylora (?P<command>[\w-]+): (?P<count>\d+) (?P<unit>[a-z ]+)"
                       r"( \(\d+ more done already\))?; (about|at least) "
                       r"(?P<time>\d+ s|\d+ min|\d+\.\d h) here\n?\s*\((?P<basis>.+timed.*)\)$",
                       re.M)


def test_a_duration_is_said_the_way_a_person_plans_with_it():
    """Seconds under 90 as seconds, minutes under 90 as minutes, then hours to a tenth."""
    assert [duration(s) for s in (0.2, 42, 89, 91, 3000, 5400, 9000)] == [
        "1 s", "42 s", "89 s", "2 min", "50 min", "1.5 h", "2.5 h"]


def test_the_plan_line_counts_the_units_left_and_adds_their_estimates():
    """The line counts the units still to do (a finished one is said apart) and adds up only
    their estimates; a long basis goes on a second line, so no line passes 100 columns."""
    plan = Plan("balance", "root searches", {"a": 30.0, "b": 50.0, "c": 900.0},
                "one timed: 4 s", done=["c"])
    assert plan.line() == ("tinylora balance: 2 root searches (1 more done already); about 80 s "
                           "here (one timed: 4 s)")
    long = Plan("finetune", "bases and chains", {"a": 1e4}, "x" * 80, at_least=True)
    first = long.line().splitlines()[0]
    assert first == "tinylora finetune: 1 bases and chains; at least 2.8 h here"
    assert all(len(line) <= 100 for line in long.line().splitlines())
    for p in (plan, long):
        assert PLAN_LINE.match(p.line().replace("x" * 80, "x timed"))


def test_the_bar_weighs_units_by_their_estimates_and_grows_with_a_search(monkeypatch):
    """The bar's length is the estimated seconds: finishing a unit credits its estimate; an
    inner counter credits its share as it goes; a search that grows its count grows the unit's
    estimate (and the bar) in proportion."""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    plan = Plan("width-sweep", "widths", {"width64": 10.0, "width128": 30.0}, "timed")
    with plan.bar() as bar:
        bar.tqdm.n = 0
        bar.tqdm.update = lambda s: setattr(bar.tqdm, "n", bar.tqdm.n + s)
        part = bar.part("width64", 100)
        part.update(50)
        assert bar.tqdm.n == pytest.approx(10.0 * 0.5 * 0.98)
        part.total = 200  # the window grew: twice the runs, twice the estimate
        assert plan.costs["width64"] == pytest.approx(20.0)
        bar.done("width64")
        assert bar.tqdm.n == pytest.approx(20.0) and bar.finished == ["width64"]
        bar.done("width64")
        bar.done("not in the plan")
        assert bar.tqdm.n == pytest.approx(20.0) and bar.finished == ["width64"]


def test_bars_are_within_100_columns(monkeypatch):
    """A bar is never wider than 100 columns, however wide the terminal."""
    pytest.importorskip("tqdm")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    bar = progress.bar(total=10, show=True, file=open(os.devnull, "w"))  # noqa: SIM115
    assert bar.ncols == 100
    bar.close()


# The long commands, each at its smallest: the plan line comes first, on stderr; every line a
# command prints (its plan, its tables, its summary) is within 100 columns.
TINY = {
    "toy-heatmap": ["--fast", "--settings", "finetune_gd", "--steps", "4", "--per-decade", "1"],
    "width-sweep": ["--fast", "--widths", "16,32", "--steps", "4", "--n-seeds", "2",
                    "--n-train", "8"],
    "balance": ["--widths", "16,32", "--at-steps", "2", "--sizes", "0.01", "--n-seeds", "2",
                "--readout", "sp", "--init", "zero_B"],
    "pretrain": ["--fast", "--widths", "16", "--steps", "3"],
    "finetune": ["--fast", "--widths", "16", "--init", "zero_B", "--steps", "3",
                 "--no-baselines", "--lr-ratios", "1,16"],
    "finetune-ladder": ["--fast", "--widths", "32", "--steps", "3", "--lr-ratios", "1,4,16",
                        "--control-width", "0"],
    "coordcheck": ["--model", "block", "--widths", "16,32", "--n-seeds", "1", "--steps", "2"],
    "bench": ["--quick", "--workloads", "mlp", "--widths", "8", "--dtype", "float64",
              "--no-torch"],
}


@pytest.mark.parametrize("command", sorted(TINY))
def test_a_long_command_says_its_plan_first_and_prints_within_100_columns(
        command, tmp_path, monkeypatch, capsys):
    """`tinylora <command>` (at its smallest) exits 0; its stderr opens with the plan line:
    the count of units, about how long here, and what was timed to say so; no line of its
    output is wider than 100 columns."""
    monkeypatch.setenv("TINYLORA_CACHE", str(tmp_path / "cache"))
    argv = [command, *TINY[command], "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    match = PLAN_LINE.search(err)
    assert match and match.group("command") == command, err
    assert err.startswith(match.group(0).split("\n")[0]), err
    assert int(match.group("count")) >= 1
    wide = [line for line in (out + err).splitlines() if len(line) > 100]
    assert wide == []


def test_a_short_command_prints_within_100_columns_too(tmp_path, capsys):
    """The analytic toy (seconds, so no plan) prints its table as columns within 100 columns:
    every command prints through the same filter (`tinylora.run.printout.Fitted`)."""
    assert main(["toy-analytic", "--fast", "--out", str(tmp_path), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert not any(line.startswith("|") for line in out.splitlines()) and "delta1" in out
    assert [line for line in (out + err).splitlines() if len(line) > 100] == []


def test_fit_aligns_a_wide_table_in_blocks_and_wraps_long_lines():
    """`fit`: a Markdown table becomes aligned columns, split into blocks (first column repeated)
    when wider than 100; a long line wraps with its continuation indented; short text stays."""
    from tinylora.run.printout import fit

    table = "| name | " + " | ".join(f"column {i:02d}" for i in range(12)) + " |\n|---|\n"
    table += "| row | " + " | ".join(f"{i * 1.5:9.3f}" for i in range(12)) + " |"
    lines = fit(table).splitlines()
    assert max(map(len, lines)) <= 100 and sum(line.startswith("name") for line in lines) == 2
    assert fit("  " + "word " * 40).splitlines()[1].startswith("    word")
    assert fit("short\nlines") == "short\nlines"
