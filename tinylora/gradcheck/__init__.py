"""Finite-difference gradient checks: is a hand-derived backward the derivative of its forward?

The "fake loss" trick (llm.c, micrograd): draw a random g shaped like the output and use
``L = sum(out * g)``. Then dL/dout = g exactly, so backward(g) must equal the numerical dL/dθ for
every input θ. Numbers: float64, centred differences ``(L(θ+h) - L(θ-h)) / 2h`` with h = 1e-5
(truncation error ~ h^2, round-off ~ 1e-16 / h: both near 1e-10).

Never check at a degenerate point: at LoRA's init B = 0, so dA = 0 exactly and any bug in dA
would pass. The catalogue (`tinylora.gradcheck.catalogue`) always uses a random, non-zero B.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from tinylora import backend

TOLERANCE = 1e-7  # smooth paths in float64 land near 1e-10; a real bug lands above 1e-3


def rel_error(analytic, numerical) -> float:
    """||a - n|| / max(1e-8, ||a|| + ||n||)  (Frobenius norms over the whole tensor).

    Norms rather than entries: an entry that is almost zero carries the finite differences'
    round-off (1e-11) in its relative error; the tensor as a whole does not.
    """
    a, n = backend.to_numpy(analytic).astype(float), backend.to_numpy(numerical).astype(float)
    num = float(((a - n) ** 2).sum() ** 0.5)
    den = float((a**2).sum() ** 0.5 + (n**2).sum() ** 0.5)
    return num / max(1e-8, den)


def numerical_grad(f, x, h: float = 1e-5):
    """dF/dx by centred differences, changing `x` in place entry by entry (and restoring it).

    f() -> a Python float that reads `x`. `x` may be any writable array, a strided view (a
    slice, a transpose) included: each entry is written through `x[index]`, never through a
    reshaped copy that f would not read.
    """
    grad = backend.xp_of(x).zeros_like(x)
    for index in itertools.product(*(range(k) for k in x.shape)):
        old = float(x[index])
        x[index] = old + h
        f_plus = f()
        x[index] = old - h
        f_minus = f()
        x[index] = old
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def randomize_lora(model, seed: int = 0) -> None:
    """Move a model to a non-degenerate point: every LoRA factor and bias random (std 0.5),
    every layer-norm gain ``*.g`` random around 1 (std 0.3). At init B = 0 (or A = 0) and a
    bug in the other factor's gradient would pass unseen."""
    xp, rng = model.xp, backend.host_rng(seed)
    for k in [*model.adapter_keys(), *(k for k in model.params if k.endswith(".b"))]:
        p = model.params[k]
        p[...] = backend.normal(rng, tuple(p.shape), 0.5, xp, p.dtype)
    for k in (k for k in model.params if k.endswith(".g")):
        p = model.params[k]
        p[...] = 1.0 + backend.normal(rng, tuple(p.shape), 0.3, xp, p.dtype)


@dataclass
class Result:
    """One tensor's check: its name, the relative error, and whether it is within tolerance."""

    name: str
    max_rel_error: float
    tol: float = TOLERANCE

    @property
    def ok(self) -> bool:
        return self.max_rel_error <= self.tol

    def as_dict(self) -> dict:
        return {"name": self.name, "max_rel_error": self.max_rel_error, "ok": self.ok}

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.max_rel_error:9.2e}  {self.name}"


def check(name: str, forward, backward, arrays: dict, keys=None, seed: int = 0,
          tol: float = TOLERANCE, zero: tuple[str, ...] = ()) -> list[Result]:
    """Check `backward` against finite differences of `forward` for each array in `keys`.

    forward() -> out, reading the arrays of `arrays` (which are changed in place and restored);
    backward(g) -> {key: dL/d arrays[key]} for the fake loss L = sum(out * g).
    `zero`: key suffixes whose gradient is exactly zero by a symmetry (the attention's key bias:
    softmax ignores a shift of a row). A relative error would compare two round-offs, so for
    those both gradients must vanish: the larger absolute entry is the reported error.
    """
    out = forward()
    g = backend.normal(seed, tuple(out.shape), 1.0, backend.xp_of(out), "float64")
    analytic = backward(g)
    loss = lambda: float((forward() * g).sum())  # noqa: E731
    results = []
    for k in list(arrays) if keys is None else list(keys):
        if analytic.get(k) is None:
            raise AssertionError(f"{name}: backward gave no gradient for {k!r}")
        numerical = numerical_grad(loss, arrays[k])
        if k.endswith(zero) and zero:
            err = max(float(abs(backend.to_numpy(analytic[k])).max()),
                      float(abs(backend.to_numpy(numerical)).max()))
            results.append(Result(f"{name}/{k} (exactly 0)", err, tol))
        else:
            results.append(Result(f"{name}/{k}", rel_error(analytic[k], numerical), tol))
    return results


def _pair(fwd, bwd):
    """forward() and backward(g) sharing one cache; backward reruns forward first, so its cache
    is from the arrays as they are now (finite differences nudge them in between)."""
    cache = {}

    def forward():
        out, cache["c"] = fwd()
        return out

    def backward(g):
        forward()
        return bwd(g, cache["c"])

    return forward, backward


def check_layer(name: str, fwd, bwd, arrays: dict, tol: float = TOLERANCE,
                zero: tuple[str, ...] = ()) -> list[Result]:
    """Check a layer function pair: fwd(arrays) -> (out, cache); bwd(g, cache) -> {key: grad}."""
    forward, backward = _pair(lambda: fwd(arrays), bwd)
    return check(name, forward, backward, arrays, tol=tol, zero=zero)


def check_model(name: str, model, x, seed: int = 0, tol: float = TOLERANCE,
                zero: tuple[str, ...] = ()) -> list[Result]:
    """Check a model's backward for every trainable array at its current point (make it a
    random, non-degenerate one first: `randomize_lora`)."""
    forward, backward = _pair(lambda: model.forward(x), model.backward)
    return check(name, forward, backward, model.params, keys=list(model.trainable), seed=seed,
                 tol=tol, zero=zero)


def worst_per_tensor(results: list[Result]) -> list[Result]:
    """One row per distinct name, keeping the largest error (names repeat across configs)."""
    worst: dict[str, Result] = {}
    for r in results:
        if r.name not in worst or r.max_rel_error > worst[r.name].max_rel_error:
            worst[r.name] = r
    return list(worst.values())
