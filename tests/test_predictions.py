"""tinylora.lab.predictions: the predicted exponents are the derivation's, and every recorded
summary carries them and compares with its own setting's row."""

import json
from pathlib import Path

import pytest

from tinylora.lab import predictions

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
DERIVED = {  # (measurement, readout): (eta_A*, eta_B*), the same for Init[1] and Init[2]
    ("balanced", "sp"): (-1.0, 0.0), ("balanced", "mup"): (-1.0, 0.0),
    ("loss_optimal", "sp"): (-1.0, -0.5), ("loss_optimal", "mup"): (-1.0, 0.0)}


@pytest.mark.parametrize("init", predictions.INITS)
@pytest.mark.parametrize("setting", sorted(DERIVED))
def test_each_setting_predicts_what_the_derivation_gives(setting, init):
    """eta_A*, eta_B* as derived in the module docstring; ratio = eta_B - eta_A and product =
    eta_A + eta_B (exponents of n add and subtract)."""
    a, b = DERIVED[setting]
    assert predictions.exponents(*setting, init) == {"eta_A": a, "eta_B": b, "ratio": b - a,
                                                     "product": a + b}


def test_the_table_has_every_setting_once_and_rejects_unknown_ones():
    """8 rows (2 measurements x 2 readouts x 2 inits); a typo is a clear error."""
    rows = predictions.table()
    assert len({(r["measurement"], r["readout"], r["init"]) for r in rows}) == len(rows) == 8
    with pytest.raises(ValueError, match="readout"):
        predictions.exponents("balanced", "ntk")


def _recorded(folder):
    path = RESULTS / folder / "summary.json"
    if not path.exists():
        pytest.skip(f"{path} is not recorded")
    return json.loads(path.read_text())


@pytest.mark.parametrize("folder", ["width-sweep", "width-sweep-mup", "width-sweep-init2"])
def test_recorded_sweeps_compare_with_their_own_readouts_prediction(folder):
    """A recorded width sweep carries the whole table and, as "predicted", the loss-optimal row
    of the readout and init it ran (so n^1/2 for sp, n^1 for mup)."""
    s = _recorded(folder)
    assert s["predictions"] == predictions.table()
    cfg = s["config"]
    assert s["predicted"] == predictions.exponents("loss_optimal", cfg["readout"], cfg["init"])
    assert s["theory_exponent"] == s["predicted"]["ratio"]


@pytest.mark.parametrize("folder", ["balance", "balance-mlp", "balance-block"])
def test_recorded_balance_runs_compare_with_the_balanced_prediction(folder):
    """Every setting of a recorded `tinylora balance` run is set against (-1, 0, 1)."""
    s = _recorded(folder)
    assert s["predictions"] == predictions.table()
    for setting in s["settings"].values():
        assert setting["predicted"] == predictions.exponents("balanced", "sp", setting["init"])
