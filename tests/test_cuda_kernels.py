"""Every CUDA kernel of `tinylora.fast.cuda` computes what its reference computes (marked `gpu`).

Each test draws its inputs on the host, runs the reference on NumPy and the kernel (or the fast
twin that calls it) on CuPy, and compares: float64 to round-off, float32 to its precision. The
last tests run whole fast steps on CuPy: against the reference's numbers, with a refused step,
and captured as a CUDA graph, which CUDA refuses when anything inside the step synchronises
with the host (the proof that no step does). Without CuPy and a device every test here is
skipped, with the reason.
"""

import math

import numpy as np
import pytest

import tinylora.fast
from tinylora import attention, backend, layers, norms, optim
from tinylora.fast import cuda
from tinylora.fast import optim as fast_optim
from tinylora.fast import validate as fast_validate
from tinylora.train import loss_and_grads

pytestmark = pytest.mark.gpu

TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 2e-4, "atol": 2e-5}}
DTYPES = ["float64", "float32"]


def cp():
    return backend.get_xp("cupy")


def draw(seed, *shapes, dtype="float64", std=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * std).astype(dtype) for s in shapes]


def close(got, expected, dtype):
    """got (CuPy or NumPy) equals expected (NumPy) to dtype's tolerance, scaled by |expected|."""
    got, expected = np.asarray(backend.to_numpy(got), float), np.asarray(expected, float)
    scale = float(np.abs(expected).max()) or 1.0
    np.testing.assert_allclose(got, expected, rtol=TOL[dtype]["rtol"],
                               atol=TOL[dtype]["atol"] * scale)


def on_gpu(*arrays):
    return [cp().asarray(a) for a in arrays]


@pytest.mark.parametrize("dtype", DTYPES)
def test_count_nonfinite_counts_nan_and_inf(dtype):
    """count_nonfinite is the number of NaN, inf and -inf values, into a 0-d array or `out`."""
    (x,) = draw(0, (37, 5), dtype=dtype)
    x[1, 2], x[4, 0], x[30, 4] = np.nan, np.inf, -np.inf
    (g,) = on_gpu(x)
    assert int(cuda.count_nonfinite(g)) == 3
    out = cp().zeros(2, dtype="int64")
    cuda.count_nonfinite(g[:1], out=out[1:].reshape(()))
    assert backend.to_numpy(out).tolist() == [0, 0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["adam", "adamw", "adam_l2", "sgd", "sgd_momentum"])
def test_update_kernels_match_the_optimizers_and_write_nothing_when_refused(kind, dtype):
    """Three steps of the gated kernel equal the reference optimizer's three steps (a per-model
    learning rate of shape (S, 1, 1) included); with status[0] != 0 nothing is written."""
    p0, *gs = draw(1, (4, 6, 3), (4, 6, 3), (4, 6, 3), (4, 6, 3), dtype=dtype)
    lr = np.linspace(0.01, 0.04, 4).reshape(4, 1, 1).astype(dtype)
    make = {"adam": lambda p: optim.Adam(p, lr=lr), "adamw": lambda p: optim.AdamW(p, lr=lr),
            "adam_l2": lambda p: optim.Adam(p, lr=lr, weight_decay=0.1),
            "sgd": lambda p: optim.SGD(p, lr=lr, weight_decay=0.1),
            "sgd_momentum": lambda p: optim.SGD(p, lr=lr, momentum=0.9)}[kind]
    ref = make({"w": p0.copy()})
    for g in gs:
        ref.step({"w": g})  # fast mode is off: the reference
    (p,) = on_gpu(p0)
    opt = make({"w": p})  # its learning rate moves to the GPU with it
    status, group = cp().zeros(2, dtype="int64"), opt.groups[0]
    for t, g in enumerate(on_gpu(*gs), start=1):
        opt.t = t
        fast_optim._gated_update(opt, "w", p, g, group, status)
    close(p, ref.params["w"], dtype)
    for name, buf in ref.state.get("w", {}).items():
        close(opt.state["w"][name], buf, dtype)
    before = backend.to_numpy(p).copy()
    status[0] = 4  # a refused step 4
    fast_optim._gated_update(opt, "w", p, on_gpu(gs[0])[0], group, status)
    assert np.array_equal(backend.to_numpy(p), before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_kernels_match_the_reference(dtype):
    """gelu_forward and gelu_backward (one launch each) equal the reference's y and dx."""
    x, dy = draw(2, (8, 128, 512), (8, 128, 512), dtype=dtype)
    x *= 3
    y_ref, cache = layers.gelu_forward.reference(x)
    y, t = cuda.gelu_forward(*on_gpu(x))
    close(y, y_ref, dtype)
    close(cuda.gelu_backward(*on_gpu(dy, x), t), layers.gelu_backward.reference(dy, cache), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8, 128, 256), (3, 5, 7), (2, 1000, 2048)])
def test_layernorm_kernels_match_the_reference(shape, dtype):
    """The fast layer norm on CuPy (a block of threads per row) equals the reference: y, and
    dx, dg, db from its own cache (rows shorter and longer than a block of threads)."""
    x, g, b, dy = draw(3, shape, shape[-1:], shape[-1:], shape, dtype=dtype)
    x = 2 * x + 1
    y_ref, c_ref = norms.layernorm_forward.reference(x, g, b)
    y, c = norms.layernorm_forward.twin(*on_gpu(x, g, b))
    close(y, y_ref, dtype)
    for got, want in zip(norms.layernorm_backward.twin(on_gpu(dy)[0], c, True, True, True),
                         norms.layernorm_backward.reference(dy, c_ref, True, True, True)):
        close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("setting", [((8, 128, 128), 4), ((2, 5, 12), 3), ((16, 64, 256), 4),
                                     ((1, 300, 64), 2)])
def test_attention_kernels_match_the_reference(setting, dtype):
    """attend_forward/backward on CuPy (the masked softmax and its backward as kernels) equal
    the reference's y, p, dq, dk, dv (rows of 5 to 300 keys)."""
    (N, T, d), H = setting
    q, k, v, dy = draw(4, *[(N, T, d)] * 4, dtype=dtype)
    y_ref, c_ref = attention.attend_forward.reference(q, k, v, H)
    y, c = attention.attend_forward.twin(*on_gpu(q, k, v), H)
    close(y, y_ref, dtype)
    close(c.p, c_ref.p, dtype)
    for got, want in zip(attention.attend_backward.twin(on_gpu(dy)[0], c),
                         attention.attend_backward.reference(dy, c_ref)):
        close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, bias", [((1024, 256), True), ((8, 128, 128), False),
                                           ((5, 7), True)])
def test_lora_sum_matches_the_reference(x_shape, bias, dtype):
    """The LoRA layer on CuPy (the bias, x W and scale z_a B accumulated by cuBLAS; its backward
    likewise) equals the reference's y, dx, dW, db, dA, dB."""
    d_in, d_out, r = x_shape[-1], 96, 8
    x, W, b, A, B, dy = draw(5, x_shape, (d_in, d_out), (d_out,), (d_in, r), (r, d_out),
                             (*x_shape[:-1], d_out), dtype=dtype)
    b = b if bias else None
    args = (x, W, b, A, B)
    y_ref, c_ref = layers.lora_linear_forward.reference(*args, 0.5)
    y, c = layers.lora_linear_forward.twin(*(None if a is None else on_gpu(a)[0] for a in args),
                                           0.5)
    close(y, y_ref, dtype)
    for got, want in zip(layers.lora_linear_backward.twin(on_gpu(dy)[0], c, True, True, bias),
                         layers.lora_linear_backward.reference(dy, c_ref, True, True, bias)):
        assert (got is None) == (want is None)
        if want is not None:
            close(got, want, dtype)


def _workload(name, backend_name, dtype):
    from tinylora.bench import workloads  # noqa: PLC0415

    build = {"mlp": workloads.build_mlp, "block": workloads.build_block}[name]
    return build(128 if name == "mlp" else 64, dtype, backend_name=backend_name)


@pytest.mark.parametrize("name", ["mlp", "block"])
def test_the_fast_step_on_a_gpu_trains_as_the_reference(name):
    """Five fast steps on CuPy (every kernel above, the device-decided update) give the
    reference's parameters on NumPy, float64, to round-off."""
    fast, ref = _workload(name, "cupy", "float64"), _workload(name, "numpy", "float64")
    with tinylora.fast.enabled():
        for _ in range(5):
            fast.step()
        fast.opt.settle()
    for _ in range(5):
        ref.step()
    for k in ref.model.trainable:
        close(fast.model.params[k], ref.model.params[k], "float64")


def test_a_refused_step_on_a_gpu_writes_nothing_and_settle_reports_it():
    """A NaN gradient on CuPy: the fast step writes nothing (nor do the steps after it), and
    settle raises the reference's error and puts t back."""
    wl = _workload("mlp", "cupy", "float64")
    with tinylora.fast.enabled():
        wl.step()
        wl.opt.settle()
        before = {k: backend.to_numpy(v).copy() for k, v in wl.model.params.items()}
        _, grads = loss_and_grads(wl.model, wl.x, wl.y)
        grads["fc2.B"][0, 0] = math.nan
        wl.opt.step(grads)
        wl.step()
        with pytest.raises(ValueError, match=r"grads\['fc2.B'\]: expected finite values, got 1"):
            wl.opt.settle()
    assert wl.opt.t == 1
    for k, v in before.items():
        assert np.array_equal(backend.to_numpy(wl.model.params[k]), v), k


@pytest.mark.parametrize("name", ["mlp", "block"])
def test_the_fast_step_captures_as_a_cuda_graph(name):
    """A fast step (forward, backward, the device-decided update) is captured as a CUDA graph:
    CUDA refuses a capture in which the host reads the device, so no step synchronises. The
    replay runs and leaves finite parameters."""
    from tinylora.bench.graph import capture  # noqa: PLC0415

    wl = _workload(name, "cupy", "float32")
    with tinylora.fast.enabled():
        replay = capture(wl.step)
        for _ in range(3):
            replay()
    cp().cuda.Device().synchronize()
    fast_validate._pending.clear()
    for k in wl.model.trainable:
        assert bool(cp().isfinite(wl.model.params[k]).all()), k
