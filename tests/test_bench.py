"""`tinylora bench`: the timed workloads are the library's own training steps, the PyTorch mirror
computes the same thing, and the command's rows have the documented shape. No timing asserts:
speed is judged by the benchmark, not by the suite."""

import json
from pathlib import Path

import numpy as np
import pytest
from test_readme_results import bench_table

from tinylora import layers
from tinylora.bench import profile, timing, torch_mirror
from tinylora.bench import run as bench
from tinylora.bench.profile import block_parts
from tinylora.bench.workloads import build_block, build_grid, build_mlp, build_tinylm
from tinylora.block import BlockConfig, TransformerBlock
from tinylora.groups import loraplus_groups
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import Adam
from tinylora.run import cli
from tinylora.train import loss_and_grads


def _plain_training(width, dtype, x, y, steps):
    """A LoRAMLP trained the plain way: loss_and_grads + Adam.step with the LoRA+ groups."""
    model = LoRAMLP(MLPConfig(width, width, width), LoRAConfig(r=8), seed=0, dtype=dtype)
    params = model.trainable_params()
    opt = Adam(params, groups=loraplus_groups(params, lr=1e-3, lr_ratio=16.0))
    for _ in range(steps):
        _, grads = loss_and_grads(model, x, y)
        opt.step(grads)
    return model


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_timed_mlp_step_is_the_plain_training_step(dtype):
    """A timed step changes every parameter bit for bit as a plain training step does: the
    benchmark measures what the library trains with, not a special fast path."""
    wl = build_mlp(16, dtype)
    for _ in range(3):
        wl.step()
    ref = _plain_training(16, dtype, wl.x, wl.y, steps=3)
    assert sorted(wl.model.params) == sorted(ref.params)
    for k, v in ref.params.items():
        assert wl.model.params[k].dtype == np.dtype(dtype), k
        np.testing.assert_array_equal(wl.model.params[k], v, err_msg=k)


def test_float32_step_stays_float32_and_reuses_optimizer_state():
    """No silent float64 promotion in a float32 run, and Adam's moments are allocated once:
    the same arrays, updated in place, from one step to the next."""
    wl = build_mlp(16, "float32")
    wl.step()
    state = {k: {n: id(a) for n, a in s.items()} for k, s in wl.opt.state.items()}
    loss = wl.step()
    assert loss.dtype == np.float32
    assert all(a.dtype == np.float32 for s in wl.opt.state.values() for a in s.values())
    assert all(p.dtype == np.float32 for p in wl.model.params.values())
    assert {k: {n: id(a) for n, a in s.items()} for k, s in wl.opt.state.items()} == state
    assert set(wl.opt.state) == set(wl.model.trainable)  # no state for the frozen W


@pytest.mark.parametrize("build, mirror, width, tol", [
    (build_mlp, torch_mirror.mlp_step, 16, {"rtol": 1e-9, "atol": 1e-12}),
    (build_block, torch_mirror.block_step, 8, {"rtol": 1e-8, "atol": 1e-11}),
    (build_tinylm, torch_mirror.tinylm_step, 8, {"rtol": 1e-8, "atol": 1e-11}),
], ids=["mlp", "block", "tinylm"])
def test_torch_mirror_trains_the_same_numbers(build, mirror, width, tol):
    """The PyTorch mirror (the MLP; the block with layer norm, causal SDPA, tanh gelu; TinyLM
    with its embeddings, head and cross-entropy) starts from the same weights and data and,
    after three Adam steps, holds the same A and B (float64, to rounding): like with like."""
    pytest.importorskip("torch")
    wl = build(width, "float64")
    step, tparams = mirror(wl)
    for _ in range(3):
        wl.step()
        step()
    for k in wl.model.trainable:
        np.testing.assert_allclose(tparams[k].detach().numpy(), wl.model.params[k], **tol,
                                   err_msg=k)


def test_interleaved_timer_calls_each_function_the_stated_number_of_times():
    """Every contender runs warm-up + rounds * inner times, so medians compare equal samples."""
    calls = {"a": 0, "b": 0}

    def make(name):
        def fn():
            calls[name] += 1
        return fn

    med = timing.time_interleaved({"a": make("a"), "b": make("b")}, rounds=3, inner=2, warmup=1)
    assert calls == {"a": 7, "b": 7}
    assert set(med) == {"a", "b"} and all(v >= 0 for v in med.values())


def test_peak_memory_sees_numpy_allocations():
    """The peak-memory column relies on NumPy reporting to tracemalloc: an 8 MB array shows."""
    peak = timing.peak_bytes(lambda: np.ones(2**20))  # 2^20 float64 = 8 MiB
    assert peak >= 8 * 2**20


def test_quick_json_rows_have_the_documented_keys(capsys):
    """`tinylora bench --quick --json` prints one row per workload, width and dtype with exactly
    the documented keys; torch_ms is null exactly when PyTorch is absent."""
    code = cli.main(["bench", "--workloads", "mlp", "block", "grid", "--quick", "--json",
                     "--widths", "8", "--no-progress"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["workload"], r["width"], r["dtype"]) for r in rows] == [
        (w, 8, dt) for w in ("mlp", "block", "grid") for dt in ("float32", "float64")]
    has_torch = torch_mirror.available()[0]
    for r in rows:
        assert tuple(r) == bench.ROW_KEYS
        assert r["step_ms"] > 0 and r["floor_ms"] > 0 and r["peak_mb"] >= 0
        assert r["ratio_floor"] == pytest.approx(r["step_ms"] / r["floor_ms"])
        assert (r["torch_ms"] is None) == (not has_torch) == (r["ratio_torch"] is None)


def test_table_prints_every_ratio(capsys):
    """The plain output is a table with the step/floor and step/torch columns (printed as
    aligned columns, within 100 columns)."""
    assert cli.main(["bench", "--quick", "--widths", "16", "--dtype", "float32", "--no-torch",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert any(r[:3] == ["workload", "width", "dtype"] and "step/floor" in r
               and "step/torch" in r for r in rows)
    assert any(r[:3] == ["mlp", "16", "float32"] for r in rows)
    reason = "--no-torch" if torch_mirror.available()[0] else "PyTorch is not installed"
    flat = " ".join(out.split())
    assert f"PyTorch column skipped: {reason}" in flat  # says why, whether torch is here or not


def test_timed_block_step_is_the_plain_training_step():
    """The block workload's step is loss_and_grads + Adam.step on a TransformerBlock, bit for
    bit: the benchmark times the library's own block training."""
    wl = build_block(8, "float64")
    wl.step()
    wl.step()
    model = TransformerBlock(BlockConfig(8, 4), LoRAConfig(r=8), seed=0, dtype="float64")
    params = model.trainable_params()
    opt = Adam(params, groups=loraplus_groups(params, lr=1e-3, lr_ratio=16.0))
    for _ in range(2):
        _, grads = loss_and_grads(model, wl.x, wl.y)
        opt.step(grads)
    for k, v in model.params.items():
        np.testing.assert_array_equal(wl.model.params[k], v, err_msg=k)


def test_outer_product_fast_path_is_exact():
    """A rank-1 LoRA on a layer of output width 1 takes the broadcast (outer product) path that
    the grid benchmark motivated: its output and gradients equal the plain matmul formulas
    (x shared by a stack of 2 models, as in the grid)."""
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((7, 5)), rng.standard_normal((5, 1)), rng.standard_normal(1)
    A, B = rng.standard_normal((2, 5, 1)), rng.standard_normal((2, 1, 1))
    dy = rng.standard_normal((2, 7, 1))
    y, cache = layers.lora_linear_forward(x, W, b, A, B, 0.5)
    u = 0.5 * np.matmul(x, A)  # [2, 7, 1]
    np.testing.assert_allclose(y, np.matmul(x, W) + b + np.matmul(u, B), rtol=1e-14)
    dx, _, _, dA, dB = layers.lora_linear_backward(dy, cache)
    dz_a = 0.5 * np.matmul(dy, B.swapaxes(-1, -2))
    ref_dx = (np.matmul(dy, W.T) + np.matmul(dz_a, A.swapaxes(-1, -2))).sum(axis=0)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-14)
    np.testing.assert_allclose(dA, np.matmul(x.T, dz_a), rtol=1e-14)
    np.testing.assert_allclose(dB, np.matmul(u.swapaxes(-1, -2), dy), rtol=1e-14)


def test_grid_batched_cells_equal_cells_one_by_one():
    """The grid workload's stacked step and its one-by-one reference train the same 16 cells:
    after two steps each cell's A and B agree (float64, to rounding), and the stacked step is
    loss_and_grads + Adam.step with learning rates of shape (16, 1, 1)."""
    wl = build_grid(8, "float64")
    for _ in range(2):
        wl.step()
        wl.floor()
    assert [tuple(g["lr"].shape) for g in wl.opt.groups] == [(16, 1, 1), (16, 1, 1)]
    for s, (one, _) in enumerate(wl.singles):
        for k in ("fc2.A", "fc2.B"):
            np.testing.assert_allclose(wl.model.params[k][s], one.params[k], rtol=1e-12,
                                       atol=1e-15, err_msg=f"cell {s} {k}")


def test_torch_grid_mirror_trains_the_same_numbers():
    """The PyTorch grid (one leaf per cell factor, one Adam group per cell and factor) holds the
    same factors as the NumPy stacked step after three steps (float64)."""
    pytest.importorskip("torch")
    wl = build_grid(8, "float64")
    step, tparams = torch_mirror.grid_step(wl)
    for _ in range(3):
        wl.step()
        step()
    for k in ("fc2.A", "fc2.B"):
        got = np.stack([t.detach().numpy() for t in tparams[k]])
        np.testing.assert_allclose(got, wl.model.params[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_repetitions_fit_the_budget_and_never_drop_below_the_least_rounds():
    """Fast rows get many calls, slow rows one call per round, and every row at least the
    fewest rounds: medians always come from interleaved samples."""
    for quick in (True, False):
        budget, least, most, max_inner = timing.BUDGETS["quick" if quick else "full"]
        assert timing.plan_repetitions(1e-5, quick) == (most, max_inner)
        assert timing.plan_repetitions(10.0, quick) == (least, 1)
        per_call = budget / 20
        rounds, inner = timing.plan_repetitions(per_call, quick)
        assert least <= rounds <= most and 1 <= inner <= max_inner
        assert rounds * inner * per_call <= budget


def test_out_folder_holds_records_summary_and_table(tmp_path):
    """--out writes the rows (records.json), the rows with the machine and versions
    (summary.json) and the Markdown table (summary.md): a run can be recorded as it printed."""
    assert cli.main(["bench", "--quick", "--workloads", "mlp", "--widths", "8", "--dtype",
                     "float64", "--no-torch", "--no-progress", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "records.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows"] == rows and len(rows) == 1
    assert {"cpu", "cores", "numpy", "torch", "malloc"} <= set(summary["environment"])
    assert "| mlp | 8 | float64 |" in (tmp_path / "summary.md").read_text()


def test_profile_parts_are_the_step_s_own_computations():
    """`bench --profile` times the block step's own calls: run in order, its parts give exactly
    the gradients that loss_and_grads gives for the same model and data."""
    wl, parts = block_parts(8, "float64")
    grads = parts[-1][2][0]  # the Adam part's argument: what the backward parts wrote
    model = TransformerBlock(BlockConfig(8, 4), LoRAConfig(r=8), seed=0, dtype="float64")
    _, ref = loss_and_grads(model, wl.x, wl.y)
    assert sorted(grads) == sorted(ref) == sorted(model.trainable)
    for k, v in ref.items():
        np.testing.assert_allclose(grads[k], v, rtol=1e-12, atol=1e-15, err_msg=k)


def test_profile_names_every_part_of_the_step():
    """The profile has a row for each part the overhead can hide in: layer norms, gelu, softmax,
    the mask, residuals, the loss and Adam, forward and backward, and every projection."""
    names = " | ".join(p[0] for p in block_parts(8, "float64")[1])
    for word in ("ln1 fwd", "ln2 fwd", "ln2 bwd", "gelu fwd", "gelu bwd", "softmax fwd",
                 "softmax bwd", "causal mask", "residual x + attn", "residual sum", "loss fwd",
                 "loss bwd", "Adam", "scores", "weighted sum", "dp = ", "dq = ", "dk = ", "dv = "):
        assert word in names, word
    for layer in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc1", "mlp.fc2"):
        assert f"{layer} fwd" in names and f"{layer} bwd" in names, layer


def test_profile_command_writes_parts_that_add_up_to_the_step(tmp_path, capsys):
    """`bench --profile --out` prints and writes the table; each row's time above its floor is
    its time minus its products, and the glue row is the step minus the parts."""
    assert cli.main(["bench", "--profile", "--widths", "8", "--dtype", "float64", "--quick",
                     "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()  # the table as aligned columns
    assert any(line.startswith("glue (step - sum of parts) ") for line in printed)
    assert "| glue (step - sum of parts) |" in (tmp_path / "profile.md").read_text()
    prof = json.loads((tmp_path / "profile.json").read_text())["profiles"][0]
    assert (prof["width"], prof["dtype"]) == (8, "float64")
    for r in prof["rows"]:
        assert r["above_ms"] == pytest.approx(r["ms"] - r["floor_ms"]) and r["mb"] > 0
    assert prof["glue_ms"] == pytest.approx(prof["step_ms"] - sum(r["ms"] for r in prof["rows"]))
    assert "whole step" in (tmp_path / "profile.md").read_text()


def test_docs_and_readme_quote_the_recorded_xeon_run():
    """docs/benchmarks.md shows the Intel Xeon run's table and its width-256 profile exactly as
    recorded (docs/results/bench-xeon/), with its CPU, and the results page quotes the same
    table."""
    root = Path(__file__).resolve().parents[1]
    folder = root / "docs" / "results" / "bench-xeon"
    summary = json.loads((folder / "summary.json").read_text())
    profs = json.loads((folder / "profile.json").read_text())["profiles"]
    docs = (root / "docs" / "benchmarks.md").read_text()
    cpu = summary["environment"]["cpu"]
    assert "Intel(R) Xeon(R)" in cpu and cpu in docs
    assert bench.table(summary["rows"]) in docs
    assert profile.table(next(p for p in profs if p["width"] == 256)) in docs
    assert bench_table(summary) in (root / "docs" / "results" / "README.md").read_text()


def test_the_gpu_benchmark_rehearses_on_the_cpu(tmp_path, capsys):
    """scripts/gpu_bench.py on NumPy (its CPU rehearsal), every workload at a tiny width, with the
    parts' profile: one table row per workload and width, the documented JSON keys, and a row
    per part of each step."""
    import importlib.util  # noqa: PLC0415

    path = Path(__file__).resolve().parents[1] / "scripts" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", path)
    gpu_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_bench)
    out = tmp_path / "bench.json"
    assert gpu_bench.main(["--backend", "numpy", "--no-torch", "--mlp-widths", "16",
                           "--block-widths", "16,32", "--tinylm-widths", "16", "--batch", "32",
                           "--rounds", "1", "--inner", "1", "--profile", "--json-out",
                           str(out)]) == 0
    table = capsys.readouterr().out
    assert table.count("\n| mlp | 16 |") == 1 and table.count("\n| block |") == 2
    result = json.loads(out.read_text())
    assert [(r["workload"], r["width"]) for r in result["rows"]] == [
        ("mlp", 16), ("block", 16), ("block", 32), ("tinylm", 16)]
    assert set(result["rows"][0]) == {
        "workload", "width", "dtype", "backend", "step_ms", "reference_ms", "floor_ms",
        "torch_ms", "graph_ms", "ratio_floor", "ratio_torch", "target", "met", "torch"}
    assert {r["part"] for r in result["profile"]} == {
        "step", "floor", "forward", "loss_and_grads", "opt.step", "opt.settle"}


def test_the_split_kept_the_speed_in_the_recorded_rounds():
    """docs/benchmarks.md quotes the table the recorded rounds of scripts/bench_trees.py give
    (tree before the split against after, fast twins on), and those rounds support its claim:
    new/old step/floor within 10 % for the MLP at widths >= 512 and every block width."""
    import importlib.util  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_trees",
                                                  root / "scripts" / "bench_trees.py")
    bench_trees = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_trees)
    rounds = json.loads((root / "docs" / "results" / "bench-reference-first" / "rounds.json")
                        .read_text())
    table = bench_trees.summary_table(rounds)
    assert table in (root / "docs" / "benchmarks.md").read_text()
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    kept = {(w.strip(), int(n)): float(change) for w, n, _, _, change, _ in rows}
    assert {k for k in kept if k[0] == "block" or k[1] >= 512} <= {
        k for k, change in kept.items() if change <= 1.10}
    assert ("mlp", 128) in kept and len(kept) == 6
