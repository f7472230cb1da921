"""The fine-tuning ladder's protocol and report (`tinylora.text.ladder`, `.ladder_report`,
`tinylora finetune-ladder`): choices, the bootstrap that redoes them, resuming, the time limit."""

import json
import math
import re

import numpy as np
import pytest

from tinylora.run.cli import main
from tinylora.run.records import read_json
from tinylora.text import ladder, ladder_command
from tinylora.text.ladder_report import (
    chain_estimates,
    choice_set,
    choose,
    lattice_index,
    lattice_lr,
    paired_gain,
    summarize,
)

# ------------------------------------------------------------------------------------------
# The choices and the bootstrap, on tables written by hand


def test_the_lattice_is_quarter_octaves_and_round_trips():
    """lr(k) = lr0 2^(k/4): four points an octave, and the index of a rate is its k."""
    assert lattice_lr(1e-3, 4, 4) == 2e-3
    assert all(lattice_index(1e-3, lattice_lr(1e-3, k, 4), 4) == k for k in range(-9, 9))


def test_the_kept_point_is_the_lowest_mean_with_every_seed_and_ties_go_low():
    """`choose` keeps the lowest mean over the given seeds (repeats count twice), ignores a
    point some seed lacks, counts a diverged seed as inf, and breaks ties to the smaller k."""
    points = {0: {0: 1.0, 1: 3.0}, 1: {0: 2.0, 1: 1.0}, 2: {0: 0.5}, 3: {0: math.inf, 1: 0.0}}
    assert choose(points, [0, 1]) == 1  # means 2, 1.5 (2 lacks seed 1, 3 diverged)
    assert choose(points, [0, 0]) == 2
    assert choose(points, [1, 1]) == 3
    assert choose({0: {0: 1.0}, 1: {0: 1.0}}, [0]) == 0


def test_the_choice_set_holds_every_point_a_tuning_bootstrap_can_keep():
    """With two tuning seeds a bootstrap draws (0, 0), (1, 1) or (0, 1): the choice set is the
    lowest point of each seed alone and of the mean, nothing else."""
    points = {-1: {0: 1.0, 1: 2.0}, 0: {0: 1.5, 1: 1.0}, 1: {0: 1.1, 1: 1.1}, 2: {0: 3, 1: 3}}
    assert choice_set(points, [0, 1]) == [-1, 0, 1]  # seed 0: -1, seed 1: 0, mean: 1 (1.1)
    seen = {choose(points, [a, b]) for a in (0, 1) for b in (0, 1)}
    assert seen == set(choice_set(points, [0, 1]))


def test_a_paired_gain_is_signed_and_says_which_run_diverged():
    """gain = mean(base - other): > 0 when `other` ends lower; -inf when only `other`
    diverged; nan when the baseline itself diverged."""
    assert paired_gain([2.0, 3.0], [1.0, 1.0]) == 1.5
    assert paired_gain([2.0, 3.0], [1.0, math.inf]) == -math.inf
    assert math.isnan(paired_gain([math.inf, 3.0], [1.0, 1.0]))


def _table(disagree: bool) -> dict:
    """Ratio 1 and ratio 4, three lattice points each, two tuning and six evaluation seeds.
    With `disagree` the tuning seeds keep different points at ratio 4, where the evaluation
    seeds' loss differs by 0.1."""
    rng = np.random.default_rng(0)
    noise = {s: 0.002 * rng.standard_normal() for s in range(8)}
    one = {k: {s: 1.0 + 0.01 * k * k + noise[s] for s in range(8)} for k in (-1, 0, 1)}
    four = {k: {s: {-1: 1.0, 0: 0.99, 1: 1.04}[k] + noise[s] for s in range(8)}
            for k in (-1, 0, 1)}
    if disagree:  # seed 0 and the mean keep k = 1 (worse held out), seed 1 keeps k = 0
        four[1][0] = 0.90
    return {1.0: one, 4.0: four}


def test_the_bootstrap_redoes_the_lr_choice_in_every_draw():
    """When the two tuning seeds keep different rates, the draws keep both (so the tuned
    ratio's gain varies across draws and its interval widens); when they agree, one rate."""
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    split = chain_estimates(_table(True), [0, 1], range(2, 8), rng(), boot=200)
    agree = chain_estimates(_table(False), [0, 1], range(2, 8), rng(), boot=200)
    assert split["kept_changes"][4.0] == 2 and agree["kept_changes"][4.0] == 1
    width = lambda e: e["gain_interval"][4.0][1] - e["gain_interval"][4.0][0]  # noqa: E731
    assert width(split) > 5 * width(agree)
    assert agree["point"]["tuned"] == 4.0 and agree["tuned_share"][4.0] == 1.0


def test_the_ratio_one_loss_is_ratio_ones_when_the_grid_grew_below_it():
    """A grid grown to ratio 0.5 still reports plain LoRA's (ratio 1's) loss and gains over
    ratio 1, never over the grid's first ratio."""
    table = _table(False)
    table[0.5] = {k: {s: v + 0.5 for s, v in seeds.items()} for k, seeds in table[1.0].items()}
    point = chain_estimates(table, [0, 1], range(2, 8), np.random.default_rng(0))["point"]
    assert point["loss_ratio1"] == np.mean([table[1.0][0][s] for s in range(2, 8)])
    assert point["gains"][1.0] == 0.0 and abs(point["gains"][0.5] + 0.5) < 1e-12


def test_a_chain_missing_an_evaluation_run_is_not_finished():
    """No estimate is made from a chain whose kept point lacks an evaluation seed."""
    table = _table(False)
    del table[4.0][0][7]
    assert chain_estimates(table, [0, 1], range(2, 8), np.random.default_rng(0)) is None


# ------------------------------------------------------------------------------------------
# The protocol on real runs (a tiny ladder, fast bases)


def _tiny(**kw):
    return ladder.ladder_config(True, **{"widths": (32,), "steps": 3,
                                         "lr_ratios": (1.0, 4.0, 16.0), "control_width": 0,
                                         **kw})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny ladder run once, uninterrupted: (config, cache, out, records)."""
    cache, out = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("out")
    config = _tiny()
    return config, cache, out, ladder.run_ladder(config, out, cache, show_progress=False)


def test_the_ladder_tunes_on_the_tuning_seeds_and_evaluates_the_choice_set(tiny_run):
    """Every lattice of the finished chain is bracketed or at its budget; the evaluation seeds
    ran exactly at each ratio's choice set, and the tuning seeds nowhere else."""
    config, _, _, records = tiny_run
    assert records["stopped"] is None
    row = summarize(records)["chains"][0]
    grown = set(row["lr_ratios"]) - {1.0, 4.0, 16.0}  # at most one octave past an end
    assert row["finished"] and grown <= {0.5, 32.0} and len(grown) <= 1
    assert all(b or n == config.max_points
               for b, n in zip(row["lr_bracketed"], row["lattice_points"]))
    runs = records["runs"]
    for x in row["lr_ratios"]:
        tune = {}
        for r in runs:
            if r["lr_ratio"] == x and r["seed"] in config.tune_seeds:
                tune.setdefault(lattice_index(config.lr0, r["lr"], 4), {})[r["seed"]] = \
                    r["final_loss"]
        evals = {lattice_index(config.lr0, r["lr"], 4) for r in runs
                 if r["lr_ratio"] == x and r["seed"] in config.eval_seeds}
        assert evals == set(choice_set(tune, list(config.tune_seeds)))


def test_a_stopped_ladder_resumes_to_the_same_records(tiny_run, tmp_path):
    """A time limit stops the ladder between passes (what it finished is saved, `stopped` says
    why); the same call again finishes it with exactly the uninterrupted run's records."""
    config, cache, _, whole = tiny_run
    first = ladder.run_ladder(config, tmp_path, cache, time_limit=1e-9, show_progress=False)
    assert first["stopped"].startswith("stopped at the time limit")
    assert len(first["runs"]) < len(whole["runs"])
    done = ladder.run_ladder(config, tmp_path, cache, show_progress=False)
    key = lambda r: (r["lr_ratio"], r["lr"], r["seed"])  # noqa: E731
    assert sorted(map(json.dumps, (dict(r, seconds=0) for r in sorted(done["runs"], key=key)))) \
        == sorted(map(json.dumps, (dict(r, seconds=0) for r in sorted(whole["runs"], key=key))))


def test_records_in_resume_a_ladder_on_another_machine(tiny_run, tmp_path):
    """`--records-in` copies the runs of a records.json into a fresh --out, so nothing is
    rerun and the summary is the same; a records file of another configuration is refused."""
    _, cache, out, whole = tiny_run
    options = ladder_command.LadderOptions(
        fast=True, widths=(32,), steps=3, lr_ratios=(1.0, 4.0, 16.0), control_width=0,
        records_in=(str(out / "records.json"),), cache=str(cache), out=str(tmp_path / "b"),
        no_progress=True)
    (out / "records.json").write_text(json.dumps({**whole, "config": {
        **whole["config"], "lr0": 1.0}}))  # a protocol field (which runs), not in the key
    result = ladder_command.execute(options)
    assert result["summary"]["chains"][0]["finished"]
    assert sorted(map(json.dumps, result["records"]["runs"])) == sorted(map(json.dumps,
                                                                            whole["runs"]))
    assert set(read_json(tmp_path / "b" / "summary.json")) >= {"chains", "lr_ratio_exponent"}
    (out / "records.json").write_text(json.dumps({**whole, "config": {**whole["config"],
                                                                      "steps": 4}}))
    with pytest.raises(ValueError, match=r"records_in: .* another configuration \(steps: "):
        ladder_command.execute(options)


TINY_ARGS = ["finetune-ladder", "--fast", "--widths", "32", "--steps", "3", "--lr-ratios",
             "1,4,16", "--control-width", "0", "--no-progress"]
PLAN = re.compile(r"^tinylora finetune-ladder: (\d+) bases and runs"
                  r"(?: \((\d+) more done already\))?; at least .* here\n.*at least (\d+) runs")


def _ladder_plan(tmp_path, capsys) -> tuple[int, int, int]:
    """Run the tiny ladder's command into tmp_path/out. -> (units left, done, fewest runs)."""
    argv = [*TINY_ARGS, "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    match = PLAN.match(capsys.readouterr().err)
    assert match, "no plan line first on stderr"
    return int(match[1]), int(match[2] or 0), int(match[3])


def test_finetune_ladder_says_its_runs_and_time_here_before_the_work(tmp_path, capsys):
    """`tinylora finetune-ladder` opens stderr with its plan: the base and the runs at their
    fewest (3 ratios x (3 points x 2 tuning seeds + 1 point x 2 evaluation seeds)), timed here."""
    left, done, fewest = _ladder_plan(tmp_path, capsys)
    assert (left, done, fewest) == (1 + 24, 0, 24)


def test_a_rerun_of_finetune_ladder_counts_the_saved_runs_as_done(tmp_path, capsys):
    """Over the same --out, a finished ladder's rerun plans nothing left: its base and every
    counted run are done already."""
    _ladder_plan(tmp_path, capsys)
    assert _ladder_plan(tmp_path, capsys) == (0, 1 + 24, 24)


def test_ladder_config_refuses_a_protocol_it_cannot_run():
    """Clear errors for a grid without ratio 1, a tuning set that is not two seeds, and
    evaluation seeds the tuning saw."""
    with pytest.raises(ValueError, match="lr_ratios: expected at least 3 ratios including 1"):
        ladder.ladder_config(True, lr_ratios=(2.0, 4.0, 8.0))
    with pytest.raises(ValueError, match="tune_seeds, eval_seeds: expected 2 tuning seeds"):
        ladder.ladder_config(True, tune_seeds=(0, 1, 2))
    with pytest.raises(ValueError, match="tune_seeds, eval_seeds"):
        ladder.ladder_config(True, eval_seeds=(1, 2))


# ------------------------------------------------------------------------------------------
# scripts/gpu_text_ladder.sh, rehearsed on the CPU


def _script(out, work, limit="390", *previous):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "LADDER_REHEARSAL": "1", "LADDER_WORK": str(work),
           "LADDER_TIME_LIMIT": limit, "PYTHON": sys.executable,
           "LADDER_EXTRA": "--widths 32 --control-width 0 --lr-ratios 1 4 16 --init zero_B "
                           "--steps 3"}
    return subprocess.run(["bash", str(root / "scripts" / "gpu_text_ladder.sh"), str(out),
                           *map(str, previous)], env=env, capture_output=True, text=True,
                          timeout=600).returncode


def test_the_gpu_script_stops_resumes_and_writes_a_compact_result(tmp_path):
    """Rehearsed on the CPU: a call past its time limit exits 3 with what it has; the next
    finishes (exit 0) into at most 8 files under 16 MiB each; and a call on a fresh machine
    (empty work folder) given that result retrains nothing: its records are the same runs."""
    out, work = tmp_path / "out", tmp_path / "work"
    assert _script(out, work, "1e-9") == 3
    assert read_json(out / "summary.json")["not_finished"] == [[32, "zero_B", 128]]
    assert _script(out, work) == 0
    files = list(out.iterdir())
    assert len(files) <= 8 and all(f.stat().st_size < 16 * 2**20 for f in files)
    runs = read_json(out / "records.json")["runs"]
    assert read_json(out / "summary.json")["chains"][0]["finished"] and runs
    again = tmp_path / "again"
    assert _script(again, tmp_path / "fresh-work", "390", out) == 0
    assert read_json(again / "records.json")["runs"] == runs
