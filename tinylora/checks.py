"""The catalogue that `tinylora gradcheck` runs: every backward in the library, in float64,
at random points with a random, non-zero B (never the degenerate init point).

Each case is a function ``case(xp) -> list[Result]``; `run_all` runs them all. Sizes are tiny on
purpose: finite differences cost two forwards per entry.
"""

from __future__ import annotations

import itertools

from tinylora import backend, layers
from tinylora.gradcheck import check, check_model
from tinylora.models import LoRAMLP
from tinylora.transformer_checks import TRANSFORMER_CASES

F64 = "float64"


def _randn(rng, shape, xp, std=1.0):
    return backend.normal(rng, shape, std, xp, F64)


def _off_kink(rng, shape, xp):
    """Random inputs at least 0.1 away from 0, so relu's kink is never inside x +- h."""
    z = backend.host_rng(rng).standard_normal(shape)
    return xp.asarray((0.1 + abs(z)) * ((z > 0) * 2.0 - 1.0))


def case_linear(xp):
    rng = backend.host_rng(1)
    a = {"x": _randn(rng, (2, 3, 4), xp), "W": _randn(rng, (4, 5), xp), "b": _randn(rng, 5, xp)}
    cache = {}

    def forward():
        out, cache["c"] = layers.linear_forward(a["x"], a["W"], a["b"])
        return out

    def backward(g):
        forward()
        dx, dW, db = layers.linear_backward(g, cache["c"], need_dW=True, need_db=True)
        return {"x": dx, "W": dW, "b": db}

    return check("linear", forward, backward, a)


def case_lora_linear(xp, stacked: bool = False):
    """y = x W + b + scale (x A) B with B random (non-zero); stacked: A, B carry a stack axis
    of 2 models while x is shared, so dx sums both models' contributions."""
    rng = backend.host_rng(2)
    stack = (2,) if stacked else ()
    a = {"x": _randn(rng, (2, 3, 5), xp), "W": _randn(rng, (5, 4), xp), "b": _randn(rng, 4, xp),
         "A": _randn(rng, (*stack, 5, 2), xp), "B": _randn(rng, (*stack, 2, 4), xp)}
    cache = {}

    def forward():
        out, cache["c"] = layers.lora_linear_forward(a["x"], a["W"], a["b"], a["A"], a["B"], 1.5)
        return out

    def backward(g):
        forward()
        dx, dW, db, dA, dB = layers.lora_linear_backward(g, cache["c"], need_dW=True, need_db=True)
        return {"x": dx, "W": dW, "b": db, "A": dA, "B": dB}

    return check("lora_linear_stacked" if stacked else "lora_linear", forward, backward, a)


def _case_elementwise(name, fwd, bwd, x):
    a, cache = {"x": x}, {}

    def forward():
        out, cache["c"] = fwd(a["x"])
        return out

    def backward(g):
        forward()
        return {"x": bwd(g, cache["c"])}

    return check(name, forward, backward, a)


def case_relu(xp):
    return _case_elementwise("relu", layers.relu_forward, layers.relu_backward,
                             _off_kink(3, (3, 4), xp))


def case_gelu(xp):
    return _case_elementwise("gelu", layers.gelu_forward, layers.gelu_backward,
                             _randn(4, (3, 4), xp, std=2.0))


def case_mse(xp):
    rng = backend.host_rng(5)
    y = _randn(rng, (4, 3), xp)
    return _case_elementwise("mse", lambda p: layers.mse_forward(p, y), layers.mse_backward,
                             _randn(rng, (4, 3), xp))


def case_cross_entropy(xp):
    rng = backend.host_rng(6)
    targets = xp.asarray(rng.integers(0, 5, size=(2, 3)))
    return _case_elementwise("cross_entropy", lambda z: layers.cross_entropy_forward(z, targets),
                             layers.cross_entropy_backward, _randn(rng, (2, 3, 5), xp, std=2.0))


def randomize_lora(model, seed: int = 0) -> None:
    """Overwrite every LoRA factor (and bias) with random numbers: a non-degenerate point."""
    xp, rng = model.xp, backend.host_rng(seed)
    for k in [*model.adapter_keys(), *(k for k in model.params if k.endswith(".b"))]:
        p = model.params[k]
        p[...] = backend.normal(rng, tuple(p.shape), 0.5, xp, p.dtype)


def case_mlp(xp):
    """The LoRA MLP in every combination: both inits, both activations, bias on/off, rsLoRA
    on/off; then every array trainable (the frozen weights' dW derived and checked too)."""
    results = []
    x = _randn(7, (3, 4), xp)
    for init, act, bias, rs in itertools.product(("zero_B", "zero_A"), ("relu", "gelu"),
                                                 (False, True), (False, True)):
        m = LoRAMLP(4, [5, 6], 3, r=2, alpha=3.0, rslora=rs, init=init, activation=act,
                    bias=bias, seed=8, backend=xp.__name__, dtype=F64)
        randomize_lora(m, seed=9)
        tag = f"mlp[{init},{act},{'bias' if bias else 'nobias'},{'rslora' if rs else 'lora'}]"
        results += check_model(tag, m, x)
    m = LoRAMLP(4, 5, 3, r=2, targets=["fc2"], bias=True, activation="gelu", trainable="all",
                seed=10, backend=xp.__name__, dtype=F64)
    randomize_lora(m, seed=11)
    results += check_model("mlp[trainable=all]", m, x)
    return results


CASES = [case_linear, case_lora_linear, lambda xp: case_lora_linear(xp, stacked=True),
         case_relu, case_gelu, case_mse, case_cross_entropy, case_mlp, *TRANSFORMER_CASES]


def run_all(backend_name: str | None = None):
    """Run every case on `backend_name` (numpy by default). -> list of `Result`."""
    xp = backend.get_xp(backend_name)
    return [r for case in CASES for r in case(xp)]
