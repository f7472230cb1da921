"""Pretraining cache, the fine-tuning study end to end, and the speed-up arithmetic."""

import json
import math

import numpy as np
import pytest

from tinylora import backend, cli
from tinylora.text import finetune
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
    best_ratio,
    lr_grid,
    mean_interval,
    paired_speedup,
    ratio_interval,
    steps_to_reach,
    summarize,
    tuned,
)

SUMMARY_KEYS = {"widths", "speedup", "speedup_interval", "loss_lora", "loss_loraplus",
                "best_ratio"}


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
    saved = backend.load_npz(npz)
    lm = build_model(cfg, targets=(), trainable="all", seed=123)  # other seed: other arrays
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
        load_base(build_model(other, targets=(), trainable="all"), other, tmp_path)
    assert ensure_base(other, tmp_path, force=True, show_progress=False)["reused"] is False


@pytest.fixture(scope="module")
def fast_study(tmp_path_factory):
    """`tinylora pretrain --fast` then `tinylora finetune --fast`, through the CLI (once)."""
    root = tmp_path_factory.mktemp("study")
    cache, out = root / "cache", root / "finetune"
    assert cli.main(["pretrain", "--fast", "--cache", str(cache), "--out", str(root / "pre"),
                     "--no-progress"]) == 0
    assert cli.main(["finetune", "--fast", "--cache", str(cache), "--out", str(out),
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
    assert all(len(summary[k]) == len(summary["widths"]) for k in SUMMARY_KEYS)
    assert len(list(out.glob("*.png"))) == 3
    text = (out / "summary.md").read_text()
    assert "Frozen base (before fine-tuning)" in text and "After LoRA+ (ratio 16)" in text


def test_finetuning_beats_the_frozen_base(fast_study):
    """The point of fine-tuning: with their tuned learning rates, LoRA and LoRA+ both end below
    the frozen base's validation loss on the second text, at every width, on every seed."""
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

    monkeypatch.setattr(finetune, "finetune_run", boom)
    n = len(json.loads((out / "records.json").read_text())["runs"])
    assert cli.main(["finetune", "--fast", "--cache", str(cache), "--out", str(out),
                     "--no-progress"]) == 0
    assert len(json.loads((out / "records.json").read_text())["runs"]) == n


def test_study_refuses_records_of_another_configuration(fast_study, capsys):
    """Mixing runs of two studies in one folder is refused with a clear message (exit 2)."""
    _, cache, out = fast_study
    assert cli.main(["finetune", "--fast", "--steps", "7", "--cache", str(cache), "--out",
                     str(out), "--no-progress"]) == 2
    assert "another configuration" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point of this test
def test_diverged_run_is_recorded_as_inf(fast_study):
    """An absurd learning rate makes the run diverge: its curve and final loss are inf."""
    _, cache, _ = fast_study
    config = finetune.finetune_config(fast=True, widths=(32,), steps=6, eval_every=2)
    data = finetune.Data(config)
    run = finetune.finetune_run(config, 32, 16.0, 1e30, 0, data, cache)
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


def test_tuning_keeps_the_best_lr_per_ratio_and_the_best_ratio():
    """Each ratio keeps its lowest final loss over the lr grid; the best ratio is the lowest."""
    runs = [{"width": 8, "seed": 0, "ratio": r, "lr": lr, "final_loss": loss}
            for r, lr, loss in [(1.0, 1e-3, 2.0), (1.0, 1e-2, 1.9), (16.0, 1e-3, 1.7),
                                (16.0, 1e-2, math.inf)]]
    table = tuned(runs, 8, 0)
    assert table == {1.0: (1e-2, 1.9), 16.0: (1e-3, 1.7)} and best_ratio(table) == 16.0


def test_lr_grid_moves_with_the_ratio():
    """Plain LoRA (ratio 1) tries the grid itself; ratio R tries it divided by sqrt(R), so lr_B
    = lr_A * R runs over the grid times sqrt(R): halfway between fixing lr_A and fixing lr_B."""
    assert lr_grid([1e-3, 1e-2], 1.0) == [1e-3, 1e-2]
    assert lr_grid([1e-3, 1e-2], 16.0) == [1e-3 / 4, 1e-2 / 4]
