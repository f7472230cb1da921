"""Pretraining cache, the fine-tuning study end to end, and the speed-up arithmetic."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinylora.fast
from tinylora import backend, checkpoint
from tinylora.lora import LoRAConfig
from tinylora.run import cli
from tinylora.text import finetune, study
from tinylora.text.corpus import (
    PRETRAIN_TEXT,
    eval_windows,
    load_text,
    shipped_tokenizer,
    train_val_split,
)
from tinylora.text.pretrain import (
    base_paths,
    build_model,
    ensure_base,
    load_base,
    mean_loss,
    pretrain_config,
)
from tinylora.text.report import (
    mean_interval,
    paired_speedup,
    ratio_interval,
    steps_to_reach,
    summarize,
    tuning_table,
)

PER_ROW = {"widths", "init", "speedup", "speedup_interval", "loss_lora", "loss_lora_interval",
           "loss_loraplus", "loss_loraplus_interval", "tuned_lr_ratio", "loss_tuned_lr_ratio",
           "speedup_tuned_lr_ratio", "speedup_tuned_lr_ratio_interval", "best_lr_ratio",
           "best_lr_ratio_interval", "best_lr_ratio_identifiable", "best_lr_ratio_note",
           "overstatement"}
FIXTURE = ["--init", "zero_B"]
PER_INIT = {"lr_ratio_exponent", "lr_ratio_exponent_interval", "lr_ratio_exponent_widths",
            "predicted_lr_ratio_exponent"}
SUMMARY_KEYS = PER_ROW | PER_INIT | {"tuning_seeds", "eval_seeds", "baselines",
                                          "prediction_note"}


def _tiny(steps=3, **kw):
    return pretrain_config(16, fast=True, steps=steps, **kw)


def test_saved_base_reloads_bit_identically(tmp_path):
    """A cached base loads back exactly: every array equals the file bit for bit, and the
    validation loss recomputed from the loaded arrays equals the one measured at training time
    (so fine-tuning starts from precisely the model that was pretrained)."""
    cfg = _tiny()
    record = ensure_base(cfg, tmp_path, show_progress=False)
    assert record["reused"] is False
    npz, _ = base_paths(cfg, tmp_path)
    saved, _ = checkpoint.read(npz)  # the arrays (beside them: the model's settings)
    lm = build_model(cfg, lora=LoRAConfig(targets=()), trainable="all", seed=123)  # another seed
    load_base(lm, cfg, tmp_path)
    assert sorted(saved) == sorted(lm.base_keys())
    for k, v in saved.items():
        assert np.array_equal(backend.to_numpy(lm.params[k]), v) and lm.params[k].dtype == v.dtype
    _, val = train_val_split(shipped_tokenizer().encode(load_text(PRETRAIN_TEXT)))
    assert mean_loss(lm, eval_windows(val, cfg.context, cfg.n_eval)) == record["val_loss"]


def test_matching_base_is_reused_not_retrained(tmp_path):
    """Rerunning with the same configuration reuses the file (it is not rewritten)."""
    cfg = _tiny()
    ensure_base(cfg, tmp_path, show_progress=False)
    npz, _ = base_paths(cfg, tmp_path)
    before = npz.stat().st_mtime_ns
    again = ensure_base(cfg, tmp_path, show_progress=False)
    assert again["reused"] is True and npz.stat().st_mtime_ns == before


def test_mismatching_configuration_is_refused(tmp_path):
    """A cached base trained with other settings is refused (naming the difference), never
    silently used; --force retrains it."""
    ensure_base(_tiny(steps=3), tmp_path, show_progress=False)
    other = _tiny(steps=4)
    with pytest.raises(ValueError, match="steps: saved 3, asked 4"):
        ensure_base(other, tmp_path, show_progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        load_base(build_model(other, lora=LoRAConfig(targets=()), trainable="all"), other, tmp_path)
    assert ensure_base(other, tmp_path, force=True, show_progress=False)["reused"] is False


@pytest.fixture(scope="module")
def fast_study(tmp_path_factory):
    """`tinylora pretrain --fast` then `tinylora finetune --fast` (Init[1] only, for time; the
    fake-run tests below take both inits), through the CLI (once)."""
    root = tmp_path_factory.mktemp("study")
    cache, out = root / "cache", root / "finetune"
    assert cli.main(["pretrain", "--fast", "--cache", str(cache), "--out", str(root / "pre"),
                     "--no-progress"]) == 0
    assert cli.main(["finetune", "--fast", *FIXTURE, "--cache", str(cache), "--out", str(out),
                     "--no-progress"]) == 0
    return root, cache, out


def test_fast_commands_write_every_output(fast_study):
    """Both commands run end to end and leave records, summary (exactly the documented keys, one
    entry per width), summary.md and the figures."""
    root, _, out = fast_study
    written = {p.name for p in (root / "pre").iterdir()}
    assert {"records.json", "summary.json", "summary.md"} <= written
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == SUMMARY_KEYS
    config = finetune.finetune_config(fast=True, inits=("zero_B",))
    assert len(summary["widths"]) == len(config.widths)
    assert all(len(summary[k]) == len(summary["widths"]) for k in PER_ROW)
    assert all(set(summary[k]) == set(config.inits) for k in PER_INIT)
    assert summary["predicted_lr_ratio_exponent"] == {"zero_B": None}  # none for TinyLM: why
    assert summary["prediction_note"].startswith("none: ")
    assert {b["label"] for b in summary["baselines"]} >= {"full fine-tuning", "LoRA rank 2",
                                                         "rsLoRA rank 2"}
    assert len(list(out.glob("*.png"))) == 5
    text = (out / "summary.md").read_text()
    assert "Frozen base (before fine-tuning)" in text and "After LoRA+ (ratio 16)" in text


def test_finetuning_beats_the_frozen_base(fast_study):
    """The point of fine-tuning: with their tuned learning rates, LoRA and LoRA+ both start at
    the frozen base (B A = 0 under either init) and end below its validation loss on the second
    text, at every width, under both inits, on every evaluation seed."""
    _, _, out = fast_study
    records = json.loads((out / "records.json").read_text())
    _, details = summarize(records)
    for d in details:
        base = d["base"]["loss_finetune_text"]
        for m in d["methods"].values():
            for run in m["runs"]:
                assert run["val_loss"][0] == pytest.approx(base, rel=1e-5)  # B = 0: the base
                assert run["final_loss"] < base, (d["width"], m["label"], run["seed"])


def test_study_resumes_without_rerunning(fast_study, monkeypatch):
    """A rerun with the same configuration finds every run in records.json and trains nothing."""
    _, cache, out = fast_study

    def boom(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(study, "finetune_run", boom)
    n = len(json.loads((out / "records.json").read_text())["runs"])
    assert cli.main(["finetune", "--fast", *FIXTURE, "--cache", str(cache), "--out", str(out),
                     "--no-progress"]) == 0
    assert len(json.loads((out / "records.json").read_text())["runs"]) == n


def test_study_refuses_records_of_another_configuration(fast_study, capsys):
    """Mixing runs of two studies in one folder is refused with a clear message (exit 2)."""
    _, cache, out = fast_study
    assert cli.main(["finetune", "--fast", *FIXTURE, "--steps", "7", "--cache", str(cache), "--out",
                     str(out), "--no-progress"]) == 2
    assert "another configuration" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point of this test
def test_diverged_run_is_recorded_as_inf(fast_study):
    """An absurd learning rate makes the run diverge: its curve and final loss are inf."""
    _, cache, _ = fast_study
    config = finetune.finetune_config(fast=True, widths=(32,), steps=6, eval_every=2)
    data = finetune.Data(config)
    run = finetune.finetune_run(config, finetune.Setting(32, lr_ratio=16.0), 1e30, 0, data, cache)
    assert run["diverged"] and math.isinf(run["final_loss"])
    after = [v for t, v in zip(run["eval_steps"], run["val_loss"]) if t > run["diverged_at"]]
    assert after and all(math.isinf(v) for v in after)


def test_steps_to_reach_interpolates_between_evaluations():
    """The crossing is placed linearly between the two evaluations around it."""
    assert steps_to_reach([0, 10, 20], [3.0, 2.0, 1.0], 1.5) == 15.0
    assert steps_to_reach([0, 10, 20], [3.0, 2.0, 1.0], 0.5) == math.inf


def test_speedup_is_lora_steps_over_loraplus_steps():
    """LoRA+ reaching LoRA's final loss in half the steps is a speed-up of 2; ending worse
    gives a speed-up below 1; a diverged LoRA+ run never gets there (0)."""
    steps = [0, 50, 100]
    lora = {"eval_steps": steps, "val_loss": [3.0, 2.5, 2.0], "final_loss": 2.0}
    fast = {"eval_steps": steps, "val_loss": [3.0, 2.0, 1.8], "final_loss": 1.8}
    slow = {"eval_steps": steps, "val_loss": [3.0, 2.8, 2.25], "final_loss": 2.25}
    dead = {"eval_steps": steps, "val_loss": [3.0, math.inf, math.inf], "final_loss": math.inf}
    assert paired_speedup(lora, fast)["speedup"] == 2.0
    assert paired_speedup(lora, slow)["speedup"] < 1.0
    assert paired_speedup(lora, dead)["speedup"] == 0.0


def test_intervals_cover_the_mean_and_respect_ratios():
    """Mean intervals contain the mean; ratio intervals stay positive and are symmetric in log."""
    m, lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert lo < m == 2.0 < hi
    g, glo, ghi = ratio_interval([0.5, 2.0])
    assert g == pytest.approx(1.0) and 0 < glo and glo * ghi == pytest.approx(1.0)
    assert mean_interval([1.0, math.inf])[0] == math.inf


def test_tuning_table_keeps_the_lowest_mean_over_the_tuning_seeds():
    """A setting's kept lr is the lowest mean over the tuning seeds; runs on other seeds (the
    evaluation seeds) are never read, and a diverged seed makes its lr inf."""
    lr = [3e-3 * 2 ** (k / 2) for k in range(4)]
    runs = [{"width": 8, "lr_ratio": 1.0, "seed": s, "lr": lr[k], "final_loss": loss}
            for k, s, loss in [(0, 0, 2.0), (0, 1, 2.2), (1, 0, 1.9), (1, 1, 2.0),
                               (2, 0, 1.5), (2, 1, math.inf), (3, 0, 2.5), (3, 1, 2.5),
                               (2, 5, 0.1), (3, 5, 0.0)]]  # seed 5: an evaluation seed
    table = tuning_table(runs, (0, 1), width=8, lr_ratio=1.0)
    assert table["lr"] == lr[1] and table["loss"] == pytest.approx(1.95) and table["interior"]


def fake_run(config, setting, lr, seed, data, cache=None, backend_name=None, sample=False):
    """A run without a model: a bowl in log lr around 1e-2 / sqrt(ratio), shifted per seed;
    the evaluation seeds' losses are set by FAKE_EVAL (the 'data' a test may change)."""
    x = math.log2(lr * math.sqrt(setting.lr_ratio) / 1e-2)
    loss = 2.0 + 0.01 * x * x + 0.001 * seed + FAKE_EVAL.get(seed, 0.0) * math.sin(7 * lr)
    return {**finetune.run_fields(setting), "lr": lr, "seed": seed, "eval_steps": [0, 1],
            "val_loss": [2.5, loss], "final_loss": loss, "diverged": False, "diverged_at": None,
            "seconds": 0.0}


FAKE_EVAL = {}


def test_tuning_never_reads_the_evaluation_seeds(fast_study, monkeypatch, tmp_path):
    """Changing what the evaluation seeds' runs return (their data) leaves every tuned rate
    unchanged: the rates are chosen on the tuning seeds alone."""
    _, cache, _ = fast_study
    monkeypatch.setattr(study, "finetune_run", fake_run)
    config = finetune.finetune_config(fast=True, baselines=False)
    kept = []
    for poison in (0.0, 5.0):
        FAKE_EVAL.clear()
        FAKE_EVAL.update({s: poison for s in config.eval_seeds})
        records = study.run_study(config, tmp_path / f"poison{poison}", cache, None, False)
        _, details = summarize(records)
        kept.append([(d["width"], d["init"], d["tuning"]) for d in details])
        assert {r["seed"] for d in details for m in d["methods"].values()
                for r in m["runs"]} == set(config.eval_seeds)  # reported: evaluation seeds only
    FAKE_EVAL.clear()
    assert kept[0] == kept[1]


def test_fast_study_locates_the_fake_optimum(fast_study, monkeypatch, tmp_path):
    """End to end on the fake runs: every ratio's kept lr is the bowl's bottom, bracketed."""
    _, cache, _ = fast_study
    monkeypatch.setattr(study, "finetune_run", fake_run)
    config = finetune.finetune_config(fast=True, baselines=False)
    _, details = summarize(study.run_study(config, tmp_path, cache, None, False))
    for d in details:
        for lr_ratio, t in d["lattice"].items():
            x = math.log2(t["lr"] * math.sqrt(lr_ratio) / 1e-2)
            assert abs(x) <= 0.25 and t["interior"], (d["width"], lr_ratio, t)


@pytest.mark.parametrize("prefer, grid", [(40.0, {1.0, 4.0, 16.0, 32.0}), (5.0, {1.0, 4.0, 16.0}),
                                          (0.1, {0.5, 1.0, 4.0, 16.0})])
def test_lr_ratio_grid_grows_only_past_an_end_that_wins(fast_study, monkeypatch, tmp_path,
                                                        prefer, grid):
    """When the tuning seeds' best lr_ratio is the grid's largest (or smallest), the grid grows
    by an octave there (fast: at most one); when it is inside, nothing is added."""
    _, cache, _ = fast_study

    def run(config, setting, lr, seed, *args, **kwargs):
        record = fake_run(config, setting, lr, seed, *args, **kwargs)
        record["final_loss"] += 0.01 * math.log2(setting.lr_ratio / prefer) ** 2
        return record

    monkeypatch.setattr(study, "finetune_run", run)
    config = finetune.finetune_config(fast=True, widths=(32,), inits=("zero_B",), baselines=False)
    records = study.run_study(config, tmp_path, cache, None, False)
    assert {r["lr_ratio"] for r in records["runs"]} == grid


def test_parallel_chains_give_the_same_runs(fast_study, tmp_path):
    """--jobs 2 runs the (width, init) chains in two processes; every run it makes is the run
    one process makes, number for number (same seeds, same code, parts written apart; the
    workers run the implementations the parent runs: the command's fast ones here)."""
    _, cache, out = fast_study
    config = finetune.finetune_config(fast=True, inits=("zero_B",), baselines=False)
    with tinylora.fast.enabled():
        records = study.run_study(config, tmp_path, cache, None, False, jobs=2)
    def key(r):
        return (r["width"], r["init"], r["lr_ratio"], r["r"], r["rule"], r["alpha"], r["lr"],
                r["seed"])

    serial = {key(r): r["val_loss"] for r in json.loads((out / "records.json").read_text())["runs"]}
    parallel = {key(r): r["val_loss"] for r in records["runs"]}
    bad = [(k, v, serial.get(k)) for k, v in parallel.items() if serial.get(k) != v]
    assert parallel and not bad, (len(bad), len(parallel), bad[:2])


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a process group")
def test_ctrl_c_with_jobs_stops_every_process_and_keeps_finished_runs(fast_study, tmp_path):
    """Ctrl-C (SIGINT to the whole process group) during --jobs 2: exit 130 with the one-line
    message after the plan and no worker traceback; the runs finished so far are parts a rerun
    reuses."""
    _, cache, _ = fast_study
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinylora.run", "finetune", "--fast", "--jobs", "2", "--cache",
         str(cache), "--out", str(out), "--no-progress"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: (os.setpgrp(), signal.signal(signal.SIGINT, signal.SIG_DFL)))
    deadline = time.monotonic() + 120
    while not list(out.glob("parts/run_*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    plan = err.splitlines()[:-1]  # the plan's lines, said before the work started
    assert all(line.startswith(("tinylora finetune: ", "  (")) for line in plan), err
    assert proc.returncode == 130 and "Traceback" not in err and err.splitlines()[-1:] == [
        f"tinylora finetune: interrupted; the work it had finished is kept in {out}/ (and, for "
        "the text commands, the base cache); run the same command again to resume from there"]
    kept = list(out.glob("parts/run_*.json"))
    assert kept and all("payload" in json.loads(p.read_text()) for p in kept)
