"""`tinylora balance` and its measurement: end to end, resumable, diverged runs as inf."""

import json
import math

import pytest

from tinylora.lab import balance, balance_report, coordcheck, deltas
from tinylora.lab.finetune_toy import toy_task
from tinylora.run.cli import main
from tinylora.run.records import ResultsDir, encode

CFG = balance.BalanceConfig(steps=(2, 3), sizes=(0.01,), seeds=4)
WIDTHS = (16, 32, 64)


class Stop(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_summary(tmp_path, monkeypatch):
    """Killed after the first width, then rerun: the finished width is read back (not solved
    again) and the summary equals an uninterrupted run's."""
    whole = balance_report.summarize(CFG, balance.run(CFG, WIDTHS, ResultsDir(tmp_path / "a", {})))

    def stop_after_first(width):
        if width == WIDTHS[0]:
            raise Stop

    out = ResultsDir(tmp_path / "b", {})
    with pytest.raises(Stop):
        balance.run(CFG, WIDTHS, out, on_width_done=stop_after_first)
    solved = []
    real = balance.solve_width
    monkeypatch.setattr(balance, "solve_width",
                        lambda cfg, w, *a, **k: solved.append(w) or real(cfg, w, *a, **k))
    resumed = balance_report.summarize(CFG, balance.run(CFG, WIDTHS, out))
    assert solved == list(WIDTHS[1:])
    drop = ("seconds",)  # wall time differs between runs, nothing else may
    assert json.dumps(encode({k: v for k, v in resumed.items() if k not in drop})) == \
        json.dumps(encode({k: v for k, v in whole.items() if k not in drop}))


def test_a_diverged_copy_is_inf_and_leaves_the_others_alone():
    """Three copies of the toy in one stack, the middle one at absurd rates: its sizes are inf
    from the step it diverges, the others' sizes equal those of a stack without it."""
    s3 = balance.setup(CFG, 32, 0, 3)
    rows = deltas.trajectory(s3, [1e-2, 1e6, 1e-2], [1e-2, 1e6, 1e-3], 4)
    s2 = balance.setup(CFG, 32, 0, 2)
    ref = deltas.trajectory(s2, [1e-2, 1e-2], [1e-2, 1e-3], 4)
    assert math.isinf(rows[-1]["fc2"]["delta2"][1])
    for t in range(4):
        for q in ("delta1", "delta2", "Z_A"):
            got = rows[t]["fc2"][q]
            assert [got[0], got[2]] == pytest.approx(ref[t]["fc2"][q], rel=1e-12)


def test_a_stack_measures_what_one_model_at_a_time_measures():
    """The stacked toy (two rate pairs at once) gives the sizes `coordcheck.measure` gives for
    each pair alone, through the plain LoRA MLP: the Gram-matrix RMS and the cached frozen part
    change nothing."""
    rows = deltas.trajectory(balance.setup(CFG, 32, 1, 2), [3e-3, 1e-2], [1e-2, 3e-3], 3)
    task = balance._toy_task(CFG, 32, 1, None)
    for i, (ea, eb) in enumerate([(3e-3, 1e-2), (1e-2, 3e-3)]):
        plain = toy_task(32, "finetune", "adam", 1, (), n_train=CFG.n_points, n_test=1,
                         model_seed=1)
        model = plain.build(())
        for k, v in plain.adapter_init(1).items():
            model.params[k][...] = v
        one = coordcheck.measure(coordcheck.CoordSetup(model, plain.x_train, plain.y_train,
                                                       deltas.projection_inputs), ea, eb, 3)
        for r in one:
            assert rows[r["step"] - 1][r["layer"]][r["quantity"]][i] == pytest.approx(
                r["value"], rel=1e-10, abs=1e-15)
    assert task.x_train.shape == (CFG.n_points, 5)


def test_balance_command_end_to_end(tmp_path, capsys):
    """`tinylora balance --fast` (toy, both readouts and inits): the documented keys, figures,
    the headline against the prediction; a rerun reuses every part."""
    argv = ["balance", "--fast", "--widths", "16,32,64", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["settings"]) == {"toy-sp-init1", "toy-mup-init1", "toy-sp-init2",
                                        "toy-mup-init2"}
    for s in summary["settings"].values():
        assert s["predicted"] == {"eta_A": -1.0, "eta_B": 0.0, "ratio": 1.0, "product": -1.0}
        row = s["rows"][0]
        assert {"exponents", "status", "eta_A", "eta_B", "eta_A_n", "follows"} <= set(row)
        assert all(e is None or e < 1e-3 for e in row["size_error"])
        assert s["forward_check"] and {"a", "b", "T_flat"} <= set(s["forward_check"][0])
    assert len(list(tmp_path.glob("balance_*_rates.png"))) == 4
    first = capsys.readouterr().out
    assert "predicted -1" in first
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "parts").glob("*.json"))
    assert main(argv) == 0
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "parts").glob("*.json")) == before


@pytest.mark.parametrize("model", ["mlp", "block"])
def test_the_mlp_and_the_block_find_a_root_per_layer(tmp_path, model):
    """Two LoRA layers (mlp) or six (block): a root for each layer at t = 2 at two small widths."""
    argv = ["balance", "--model", model, "--widths", "16,32", "--at-steps", "2", "--sizes", "0.01",
            "--n-seeds", "2", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    (s,) = json.loads((tmp_path / "summary.json").read_text())["settings"].values()
    layers = {r["layer"] for r in s["rows"]}
    assert layers == ({"fc2", "fc3"} if model == "mlp" else
                      {"attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc1", "mlp.fc2"})
    assert all(st == "ok" for r in s["rows"] for st in r["status"])


def test_bad_options_are_one_clear_error(tmp_path, capsys):
    """t = 1 cannot balance (one term is exactly 0 there); a readout the block does not have is
    refused: exit 2 and one line naming the option."""
    assert main(["balance", "--at-steps", "1,2", "--out", str(tmp_path)]) == 2
    assert "--at-steps" in capsys.readouterr().err
    assert main(["balance", "--model", "block", "--readout", "sp", "--out", str(tmp_path)]) == 2
    assert "--readout" in capsys.readouterr().err
    assert main(["balance", "--model", "block", "--tokens", "100", "--out", str(tmp_path)]) == 2
    assert "--tokens: expected a multiple of 16" in capsys.readouterr().err


def test_tokens_set_the_blocks_batch_and_the_alignment_follows_it(tmp_path):
    """--tokens 256 gives the block 16 sequences of 16 tokens; every row records the alignment
    of A's first step per width, its exponent, and the balanced prediction with that exponent
    in place of the counting's 1: eta_A* ~ n^-a."""
    options = balance_report.BalanceOptions(model="block", tokens=256, widths="16,32",
                                            at_steps="2", sizes="0.01", n_seeds=1,
                                            out=str(tmp_path), no_progress=True)
    (cfg,) = balance_report.configs(options)
    assert cfg.n_points == 256 and balance.setup(cfg, 16, 0, 1).x.shape == (16, 16, 16)
    (s,) = balance_report.execute(options)["summary"]["settings"].values()
    assert s["tokens"] == 256
    for row in s["rows"]:
        a = row["alignment_exponent"]
        assert len(row["alignment"]) == 2 and all(v > 1 for v in row["alignment"])
        assert row["predicted_from_alignment"]["eta_A"] == pytest.approx(-a, abs=1e-3)
        assert row["predicted_from_alignment"]["eta_B"] == 0
