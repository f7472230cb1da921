"""Finite-difference gradient checks: is a hand-derived backward the derivative of its forward?

The "fake loss" trick (llm.c, micrograd): draw a random g shaped like the output and use
``L = sum(out * g)``. Then dL/dout = g exactly, so backward(g) must equal the numerical dL/dθ for
every input θ. Numbers: float64, centred differences ``(L(θ+h) - L(θ-h)) / 2h`` with h = 1e-5
(truncation error ~ h^2, round-off ~ 1e-16 / h: both near 1e-10).

Never check at a degenerate point: at LoRA's init B = 0, so dA = 0 exactly and any bug in dA
would pass. The catalogue (`tinylora.checks`) always uses a random, non-zero B.
"""

from __future__ import annotations

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

    f() -> a Python float that reads `x`.
    """
    xp = backend.xp_of(x)
    grad = xp.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: writing flat[i] changes x
    for i in range(flat.size):
        old = float(flat[i])
        flat[i] = old + h
        f_plus = f()
        flat[i] = old - h
        f_minus = f()
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * h)
    return grad


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
          tol: float = TOLERANCE) -> list[Result]:
    """Check `backward` against finite differences of `forward` for each array in `keys`.

    forward() -> out, reading the arrays of `arrays` (which are changed in place and restored);
    backward(g) -> {key: dL/d arrays[key]} for the fake loss L = sum(out * g).
    """
    out = forward()
    xp = backend.xp_of(out)
    g = backend.normal(seed, tuple(out.shape), 1.0, xp, "float64")
    analytic = backward(g)
    loss = lambda: float((forward() * g).sum())  # noqa: E731
    results = []
    for k in keys or list(arrays):
        if analytic.get(k) is None:
            raise AssertionError(f"{name}: backward gave no gradient for {k!r}")
        numerical = numerical_grad(loss, arrays[k])
        results.append(Result(f"{name}/{k}", rel_error(analytic[k], numerical), tol))
    return results


def check_model(name: str, model, x, seed: int = 0, checker=check) -> list[Result]:
    """Check a model's backward for every trainable array at its current point (make it a
    random, non-degenerate one first). `checker` is `check` or a variant with the same
    arguments (the Transformer's handles the key bias, whose gradient is exactly zero)."""
    cache = {}

    def forward():
        out, cache["c"] = model.forward(x)
        return out

    def backward(g):
        forward()
        return model.backward(g, cache["c"])

    return checker(name, forward, backward, model.params, keys=list(model.trainable), seed=seed)


def worst_per_tensor(results: list[Result]) -> list[Result]:
    """One row per distinct name, keeping the largest error (names repeat across configs)."""
    worst: dict[str, Result] = {}
    for r in results:
        if r.name not in worst or r.max_rel_error > worst[r.name].max_rel_error:
            worst[r.name] = r
    return list(worst.values())
