"""tinylora.lab.coordcheck: the coordinate check as assertions (a plot that cannot fail tests
nothing)."""

import json

import numpy as np
import pytest

from tinylora.lab import coordcheck, deltas
from tinylora.norms import layernorm_forward
from tinylora.run.cli import main


def test_deltas_add_up_to_the_change_of_the_adapter_output():
    """delta1 + delta2 + delta3 = scale (Z A1 B1 - Z A0 B0) for any step, on any input shape."""
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((3, 5, 8))
    A0, A1 = rng.standard_normal((8, 2)), rng.standard_normal((8, 2))
    B0, B1 = rng.standard_normal((2, 6)), rng.standard_normal((2, 6))
    d = deltas.deltas(Z, A0, B0, A1, B1, scale=1.5)
    np.testing.assert_allclose(d["delta1"] + d["delta2"] + d["delta3"],
                               1.5 * (Z @ A1 @ B1 - Z @ A0 @ B0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d["Z_B"], 1.5 * Z @ A1 @ B1)


def test_step_one_under_init1_moves_only_b():
    """B = 0 at the start, so A's gradient is 0: at t = 1 delta1 = delta3 = 0 exactly."""
    setup = coordcheck.mlp_setup(32, seed=0)
    rows = coordcheck.measure(setup, 1e-2, 1e-2, steps=1)
    values = {(r["layer"], r["quantity"]): r["value"] for r in rows}
    assert values[("fc2", "delta1")] == 0.0 and values[("fc2", "delta3")] == 0.0
    assert values[("fc2", "delta2")] > 0.0


def test_theory_schedule_is_flat_where_a_shared_rate_explodes():
    """What the figure shows, as numbers: with a shared rate (and LoRA+ x16) delta1 grows with
    the width; with eta_A ~ 1/n it does not (log-log slope at the last step)."""
    rows = coordcheck.run(widths=(64, 128, 256, 512), seeds=(0, 1), steps=3)
    slopes = coordcheck.slopes(rows)
    for layer in ("fc2", "fc3"):
        assert slopes["shared"][f"{layer}.delta1"] > 0.6
        assert slopes["loraplus16"][f"{layer}.delta1"] > 0.6
        assert abs(slopes["theory"][f"{layer}.delta1"]) < 0.3


def test_unknown_model_is_a_clear_error():
    """Only the models in coordcheck.MODELS can be checked; a typo names the argument."""
    with pytest.raises(ValueError, match="model"):
        coordcheck.run("transformer", widths=(16,))
    with pytest.raises(ValueError, match="schedule"):
        coordcheck.rates("muP", 64, 0.1)


def test_coordcheck_command_end_to_end(tmp_path, capsys):
    """`tinylora coordcheck --fast`: {"slopes": {schedule: {quantity: s}}} and one figure per
    schedule."""
    argv = ["coordcheck", "--fast", "--widths", "16,32,64", "--n-seeds", "1", "--out",
            str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["slopes"]) == set(coordcheck.SCHEDULES)
    assert {"fc2.delta1", "fc2.Z_B", "fc3.delta2"} <= set(summary["slopes"]["theory"])
    assert len(list(tmp_path.glob("coordcheck_mlp_*.png"))) == 3
    assert "Slope of log(RMS)" in capsys.readouterr().out


def test_block_inputs_are_the_inputs_of_each_lora_projection():
    """For the Transformer block, Z of q, k, v is ln1(x) and Z of fc1 is ln2(x1): read out of the
    forward cache, they equal the same quantities recomputed with the library's pieces."""
    setup = coordcheck.block_setup(16, seed=0)
    out, cache = setup.model.forward(setup.x)
    Z = setup.inputs(setup.model, cache)
    assert sorted(Z) == sorted(setup.model.targets)
    p = setup.model.params
    h1, _ = layernorm_forward(setup.x, p["ln1.g"], p["ln1.b"])
    for t in ("attn.q", "attn.k", "attn.v"):
        np.testing.assert_array_equal(Z[t], h1)
    assert Z["mlp.fc2"].shape[-1] == 4 * 16  # fc2 reads the d_ff = 4 d_model hidden layer


def test_block_coordcheck_runs_end_to_end(tmp_path):
    """`tinylora coordcheck --model block`: slopes for every LoRA projection of the block, with
    delta1 of q growing under a shared rate and not under eta_A ~ 1/n."""
    argv = ["coordcheck", "--model", "block", "--widths", "16,32,64", "--n-seeds", "1",
            "--steps", "3", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    slopes = json.loads((tmp_path / "summary.json").read_text())["slopes"]
    assert {"attn.q.delta1", "attn.o.Z_B", "mlp.fc2.delta2"} <= set(slopes["shared"])
    assert slopes["shared"]["attn.q.delta1"] > slopes["theory"]["attn.q.delta1"] + 0.5
