"""`tinylora finetune`'s warm-up, decay and clipping flags: off by default, used when given."""

import math

import pytest

from tinylora.run import cli
from tinylora.text import finetune, study
from tinylora.text.pretrain import ensure_base, pretrain_config

PLAIN = {"warmup": 0, "decay": "constant", "clip": None}  # no schedule, no clipping


def test_defaults_are_todays_study():
    """Without the flags the study is today's: no warm-up, a constant rate, no clipping; the
    configuration a run is stored with names the schedule either way."""
    config = finetune.finetune_config(fast=True)
    assert {k: getattr(config, k) for k in PLAIN} == PLAIN
    assert {k: study.config_key(config)[k] for k in PLAIN} == PLAIN
    warm = finetune.finetune_config(fast=True, warmup=3, decay="cosine", clip=1.0)
    assert {k: study.config_key(warm)[k] for k in PLAIN} == {"warmup": 3, "decay": "cosine",
                                                             "clip": 1.0}


def test_schedule_and_clipping_change_a_run(tmp_path):
    """A run with warm-up, cosine decay and clipping trains (finite losses) and differs from the
    plain run from the same seed: the flags reach the training loop."""
    ensure_base(pretrain_config(16, fast=True, steps=3), tmp_path, show_progress=False)
    kw = {"fast": True, "widths": (16,), "steps": 6, "eval_every": 3, "pretrain_steps": 3}
    plain = finetune.finetune_config(**kw)
    warm = finetune.finetune_config(**kw, warmup=2, decay="cosine", clip=0.5)
    data = finetune.Data(plain)
    a = finetune.finetune_run(plain, finetune.Setting(16, lr_ratio=16.0), 1e-2, 0, data,
                               tmp_path)
    b = finetune.finetune_run(warm, finetune.Setting(16, lr_ratio=16.0), 1e-2, 0, data,
                               tmp_path)
    assert a["val_loss"][0] == b["val_loss"][0] and a["val_loss"][-1] != b["val_loss"][-1]
    assert all(math.isfinite(v) for v in b["val_loss"])


@pytest.mark.parametrize("argv, message", [
    (["--steps", "10", "--warmup", "11"], "warmup: expected an integer in [0, 10]"),
    (["--clip", "0"], "argument --clip: expected a finite number > 0, got '0'"),
    (["--decay", "exp"], "argument --decay: invalid choice: 'exp'"),
])
def test_bad_flags_are_one_clear_line(argv, message, capsys, tmp_path):
    """A warm-up longer than the run, a clipping norm <= 0, an unknown decay: exit code 2 and
    a message naming the flag, before anything trains."""
    try:
        code = cli.main(["finetune", "--fast", "--out", str(tmp_path / "o"), *argv])
    except SystemExit as err:  # argparse refuses an option value by exiting
        code = err.code
    assert code == 2 and message in capsys.readouterr().err
