"""The gradient checker itself: it passes correct gradients and, just as important, fails
wrong ones. `tinylora gradcheck` runs the whole catalogue."""

import json

import numpy as np

from tinylora import layers
from tinylora.gradcheck import TOLERANCE, catalogue, check, numerical_grad, rel_error
from tinylora.run.cli import main


def test_numerical_grad_of_a_known_function():
    """d/dx sum(x^3) = 3 x^2: centred differences get it to about 1e-10."""
    x = np.array([0.5, -1.2, 2.0])
    g = numerical_grad(lambda: float((x**3).sum()), x)
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-9)
    assert np.array_equal(x, [0.5, -1.2, 2.0])  # restored after every perturbation


def test_numerical_grad_writes_through_views_transposes_and_slices():
    """A strided view (a transpose, a column slice) is nudged in place too: no silent zeros."""
    base = np.random.default_rng(1).standard_normal((4, 6))
    for name, view in [("transpose", base.T), ("column slice", base[:, 1::2]),
                       ("row slice", base[1:3])]:
        before = base.copy()
        g = numerical_grad(lambda v=view: float((v**3).sum()), view)
        np.testing.assert_allclose(g, 3 * view**2, rtol=1e-7, atol=1e-8, err_msg=name)
        assert np.array_equal(base, before), name  # restored


def test_rel_error_is_zero_for_equal_and_one_for_opposite():
    """The scale-free error: 0 for a perfect match, 1 for a gradient with the wrong sign."""
    a = np.array([1.0, -2.0, 3.0])
    assert rel_error(a, a) == 0.0
    assert np.isclose(rel_error(a, -a), 1.0)


def test_the_check_catches_a_wrong_backward():
    """A backward that forgets the LoRA scale in dA fails the check: the checker can fail."""
    rng = np.random.default_rng(0)
    a = {"x": rng.standard_normal((3, 4)), "W": rng.standard_normal((4, 5)),
         "A": rng.standard_normal((4, 2)), "B": rng.standard_normal((2, 5))}
    cache = {}

    def forward():
        out, cache["c"] = layers.lora_linear_forward(a["x"], a["W"], None, a["A"], a["B"], 2.0)
        return out

    def wrong_backward(g):
        forward()
        _, _, _, dA, dB = layers.lora_linear_backward(g, cache["c"])
        return {"A": dA / 2.0, "B": dB}  # the bug: scale dropped from dA

    results = {r.name: r for r in check("buggy", forward, wrong_backward, a, keys=["A", "B"])}
    assert not results["buggy/A"].ok and results["buggy/A"].max_rel_error > 0.1
    assert results["buggy/B"].ok


def test_the_whole_catalogue_passes():
    """Every tensor that `tinylora gradcheck` checks is within tolerance on NumPy."""
    results = catalogue.run_all("numpy")
    bad = [r.line() for r in results if not r.ok]
    assert not bad, "\n".join(bad)
    assert all(r.tol <= 1e-6 for r in results)
    assert min(r.tol for r in results) == TOLERANCE


def test_gradcheck_command_json_reports_every_tensor_ok(capsys):
    """`tinylora gradcheck --json` prints a list of {implementation, name, max_rel_error, ok}
    and exits 0: every tensor checked once with the reference and once with the fast twins."""
    assert main(["gradcheck", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(set(r) == {"implementation", "name", "max_rel_error", "ok"} for r in rows)
    assert all(r["ok"] for r in rows)
    assert any(r["name"].endswith("fc1.A") for r in rows)
    names = {i: [r["name"] for r in rows if r["implementation"] == i]
             for i in ("reference", "fast")}
    assert names["reference"] == names["fast"] and len(names["fast"]) * 2 == len(rows)
