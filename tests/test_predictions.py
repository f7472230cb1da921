"""tinylora.lab.predictions: the table is derived by a counting function (`count`), the counting's
sizes are what the fine-tuning toy measures, each prediction solves its own conditions, settings
the counting does not cover get none, and every recorded summary carries the counting's rows."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tinylora.lab import coordcheck, predictions
from tinylora.lab.deltas import projection_inputs, trajectory
from tinylora.lab.finetune_toy import toy_task
from tinylora.lab.fit import loglog_slope

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
KEYS = ("measurement", "optimizer", "readout", "init", "held")


def _conditions(row) -> dict:
    """The counting's sizes at a row's rates, as exponents of n."""
    q = predictions.count(row["optimizer"], row["readout"], row["init"], row["held"])
    return {k: float(v.at(row["eta_A"], row["eta_B"])) for k, v in q.items()}


@pytest.mark.parametrize("row", predictions.table(), ids=lambda r: "-".join(r[k] for k in KEYS))
def test_each_prediction_solves_its_own_conditions(row):
    """Balanced: delta1 and delta2 are Theta(1) at the predicted rates. Loss-optimal: each
    factor moves the output as much as the residual, or A is capped where the features stay
    Theta(1) (and then moves the output less). Ratio and product are eta_B - eta_A and
    eta_A + eta_B."""
    sizes = _conditions(row)
    if row["measurement"] == "balanced":
        assert sizes["delta1"] == sizes["delta2"] == 0
    else:
        assert sizes["output2"] == sizes["residual"]
        assert sizes["features"] <= 0
        assert sizes["output1"] == sizes["residual"] or (
            sizes["features"] == 0 and sizes["output1"] < sizes["residual"])
    assert row["ratio"] == row["eta_B"] - row["eta_A"]
    assert row["product"] == row["eta_A"] + row["eta_B"]


@pytest.mark.parametrize("setting, want", [
    (("balanced", "sp", "zero_B", "adam"), (-1, 0)),  # the paper's eta_A ~ 1/n, eta_B ~ 1
    (("balanced", "mup", "zero_A", "adam"), (-1, 0)),  # whatever the readout and the init
    (("loss_optimal", "sp", "zero_B", "adam"), (-1, -0.5)),  # the sp readout's sqrt(n) gain
    (("loss_optimal", "mup", "zero_B", "adam"), (-1, 0)),
    (("loss_optimal", "mup", "zero_A", "adam"), (-1, 0)),  # A capped by its features
    (("loss_optimal", "sp", "zero_B", "sgd"), (-1, 0)),  # the gradient's scale enters
    (("loss_optimal", "mup", "zero_B", "sgd"), (-1, 1)),
    (("loss_optimal", "mup", "zero_B", "adam", "layer"), (-1, -0.5)),  # the layer held fixed
    (("balanced", "sp", "zero_B", "sgd"), (-1.5, 0.5)),
])
def test_the_counting_gives_the_derivations_by_hand(setting, want):
    """A few rows worked out by hand in docs/width_law.md, against the counting."""
    got = predictions.exponents(*setting)
    assert (got["eta_A"], got["eta_B"]) == want


def test_alignment_enters_as_the_exponent_of_a_s_step():
    """With Z dA ~ eta_A n^a (a the measured alignment), Adam's balanced eta_A* ~ n^-a, eta_B*
    ~ n^0: a = 1/2 (inputs random to each other, n below the tokens in a batch) halves the
    ratio's exponent."""
    got = predictions.exponents("balanced", "none", alignment=0.5)
    assert got == {"eta_A": -0.5, "eta_B": 0.0, "ratio": 0.5, "product": -0.5}


def test_settings_without_a_prediction_are_refused_by_name():
    """SGD with Init[2] (the count at t = 2 does not close) and a model without a readout where
    the readout enters get no prediction; an unknown name is a clear error naming the
    argument. The table leaves the uncovered settings out."""
    with pytest.raises(predictions.NoPrediction, match="Init.2. with SGD"):
        predictions.exponents("loss_optimal", "sp", "zero_A", "sgd")
    with pytest.raises(predictions.NoPrediction, match="readout enters"):
        predictions.exponents("balanced", "none", "zero_B", "sgd")
    assert predictions.attach("loss_optimal", "sp", "zero_A", "sgd")[0] is None
    with pytest.raises(ValueError, match="readout"):
        predictions.exponents("balanced", "ntk")
    with pytest.raises(ValueError, match="optimizer"):
        predictions.exponents("balanced", "sp", optimizer="lion")
    rows = predictions.table()
    assert len({tuple(r[k] for k in KEYS) for r in rows}) == len(rows) == 24
    assert not any(r["optimizer"] == "sgd" and r["init"] == "zero_A" for r in rows)


MEASURED = [("adam", "sp", "zero_B", 0.1), ("adam", "mup", "zero_A", 0.1),
            ("sgd", "sp", "zero_B", 0.3), ("sgd", "mup", "zero_B", 0.3)]


@pytest.mark.parametrize("optimizer, readout, init, tol", MEASURED)
def test_the_countings_sizes_are_what_the_toy_measures(optimizer, readout, init, tol):
    """At rates off every prediction (eta_A = 1e-3 n^-0.7, eta_B = 1e-3 n^-0.2), the slopes of
    RMS(delta1) and RMS(delta2) at step 2 against n (fine-tuning toy, sin target, widths
    128..2048, geometric mean over 6 seeds) are the counting's exponents, within 0.1 for Adam
    and 0.3 for SGD (whose sizes carry the random residual's scale, seed to seed)."""
    widths, alpha, beta = (128, 512, 2048), -0.7, -0.2
    sizes = {"delta1": [], "delta2": []}
    for n in widths:
        per_seed = {k: [] for k in sizes}
        for seed in range(6):
            task = toy_task(n, "finetune", optimizer, steps=1, record_steps=(), n_train=64,
                            n_test=1, model_seed=seed, readout=readout, init=init, cached=True)
            model = task.build((1,))
            for k, v in task.adapter_init(seed).items():
                model.params[k][...] = v
            setup = coordcheck.CoordSetup(model, task.x_train, task.y_train, projection_inputs)
            step2 = trajectory(setup, [1e-3 * n**alpha], [1e-3 * n**beta], 2, optimizer)[1]
            for k in sizes:
                per_seed[k].append(step2["fc2"][k][0])
        for k in sizes:
            sizes[k].append(math.exp(np.mean(np.log(per_seed[k]))))
    counted = predictions.count(optimizer, readout, init)
    for k, values in sizes.items():
        assert abs(loglog_slope(widths, values).slope - counted[k].at(alpha, beta)) < tol, k


def _recorded(folder):
    path = RESULTS / folder / "summary.json"
    if not path.exists():
        pytest.skip(f"{path} is not recorded")
    return json.loads(path.read_text())


def _counted(row) -> dict:
    """The counting's prediction for a recorded row (rows recorded before the optimizer and the
    convention were keys are Adam's, with the output held fixed)."""
    return predictions.exponents(row["measurement"], row["readout"], row["init"],
                                 row.get("optimizer", "adam"), row.get("held", "output"))


SUMMARIES = ["width-sweep", "width-sweep-mup", "width-sweep-init2", "width-sweep-sgd",
             "width-sweep-layer", "balance", "balance-mlp", "balance-block",
             "balance-block-1024"]


@pytest.mark.parametrize("folder", SUMMARIES)
def test_every_recorded_summary_carries_the_countings_predictions(folder):
    """Each row of a recorded summary's "predictions" is what the counting gives for it."""
    for row in _recorded(folder)["predictions"]:
        assert {k: row[k] for k in predictions.RATES} == _counted(row), row


@pytest.mark.parametrize("folder", [f for f in SUMMARIES if f.startswith("width-sweep")])
def test_recorded_sweeps_compare_with_their_own_settings_prediction(folder):
    """A recorded width sweep is set against the loss-optimal row of the optimizer, readout,
    init and convention it ran (so n^1/2 for Adam with sp, n^1 with mup, n^1 for SGD with sp)."""
    s = _recorded(folder)
    cfg = s["config"]
    assert s["predicted"] == predictions.exponents(
        "loss_optimal", cfg["readout"], cfg["init"], cfg["optimizer"], cfg.get("held", "output"))
    assert s["theory_exponent"] == s["predicted"]["ratio"]


@pytest.mark.parametrize("folder", [f for f in SUMMARIES if f.startswith("balance")])
def test_recorded_balance_runs_compare_with_the_balanced_prediction(folder):
    """Every setting of a recorded `tinylora balance` run is set against Adam's balanced row
    (-1, 0, +1), whatever its readout (the block has none)."""
    for setting in _recorded(folder)["settings"].values():
        assert setting["predicted"] == predictions.exponents("balanced", setting["readout"],
                                                             setting["init"])


def test_the_recorded_product_exponents_tell_sp_from_mup():
    """The product eta_A* eta_B* is the sweep's sharpest number, and the readouts predict it
    apart (n^-3/2 with sp, n^-1 with mup): in the recorded sweeps each product interval holds
    its own readout's prediction and not the other's, over every located width and from
    n = 128 on."""
    sp, mup = _recorded("width-sweep"), _recorded("width-sweep-mup")
    for mine, other in ((sp, mup), (mup, sp)):
        for fit in ((mine["exponent_product"], mine["exponent_product_interval"]),
                    ((mine["from_128"]["product"] or {}).get("slope"),
                     (mine["from_128"]["product"] or {}).get("interval"))):
            lo, hi = fit[1]
            assert lo <= mine["predicted"]["product"] <= hi
            assert not lo <= other["predicted"]["product"] <= hi
