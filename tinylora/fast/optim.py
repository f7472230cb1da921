"""Fast twins of `tinylora.optim`: Adam's update with one pass over a buffer per line, the check of
the gradients by array type, and the optimizer's step decided on the device.

**A step with no read on the host.** The reference `Optimizer.step` checks every gradient's
values on the host before it writes: on a GPU that read waits for the whole forward and backward
(a synchronisation) in every step. The twin `step` keeps the promise that a refused step writes
nothing, but decides it where the gradients are:

    status = [t of the first refused step since the last read (0: none), bad values per gradient]
    step t:  count each gradient's NaN/inf on the device; the first step with one writes
             (t, counts) into status; every update kernel runs only while status[0] == 0
    settle:  read status on the host (the one read); a refused step t puts t back at t - 1 and
             raises the reference's error, naming the first bad gradient

A refusal is sticky: the steps after it write nothing either, until the host has read it, so the
parameters, the moments and t are exactly those before the refused step. The host reads status
where the caller reads anyway (`train_step` calls `settle` with the loss it reads), and at the
latest every `SETTLE_EVERY` steps. On NumPy the same status is kept with the same `merge`, but
its values are read at once (a read on the host costs nothing there) and the update is skipped
by the host. On CuPy the updates are the gated kernels of `tinylora.fast.cuda`. Call `settle`
before switching fast mode off: the reference step knows nothing of a refusal still unread.
Tested against the reference in `tests/test_fast_paths.py` and `tests/test_device_step.py`.
"""

from __future__ import annotations

import math
import weakref

from tinylora import backend, validate
from tinylora.fast import cuda
from tinylora.fast import validate as fast_validate
from tinylora.fast.blocking import on_host
from tinylora.optim import SGD, Adam

SETTLE_EVERY = 32  # a step that is never settled by its caller is read at least this often


def adam_update(p, g, m, v, lr, beta1: float, beta2: float, eps: float, t: int) -> None:
    """The reference is `tinylora.optim.adam_update`, in PyTorch's order:

        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    each line one pass over one buffer (written as expressions, NumPy makes a temporary per
    operator)."""
    xp = backend.xp_of(p)
    tmp = xp.empty_like(p)
    m *= beta1
    xp.multiply(g, 1.0 - beta1, out=tmp)
    m += tmp  # m = b1 m + (1 - b1) g
    v *= beta2
    xp.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp  # v = b2 v + (1 - b2) g^2
    xp.sqrt(v, out=tmp)
    tmp *= 1.0 / math.sqrt(1.0 - beta2**t)
    tmp += eps  # sqrt(v_hat) + eps
    xp.divide(m, tmp, out=tmp)  # m / (sqrt(v_hat) + eps)
    tmp *= lr / (1.0 - beta1**t) if isinstance(lr, float) else lr * (1.0 / (1.0 - beta1**t))
    p -= tmp


def _same_kind(g, p) -> bool:
    """Whether gradient `g` can update `p` as it is: a real floating array of p's exact shape on
    p's backend. A gradient of p's own array type (the usual case) is on p's backend and has a
    dtype and a shape, so only those two are compared."""
    if type(g) is type(p):
        return g.dtype.kind == "f" and g.shape == p.shape
    return (hasattr(g, "dtype") and hasattr(g, "shape") and g.dtype.kind == "f"
            and tuple(g.shape) == tuple(p.shape) and backend.xp_of(g) is backend.xp_of(p))


def check_kinds(grads, params: dict) -> None:
    """`check_gradients` without the values: keys, array types, dtypes and shapes, which the
    host knows without reading the device. The message of the reference for a refused one."""
    if not isinstance(grads, dict) or grads.keys() != params.keys():  # as sets
        keys = sorted(grads) if isinstance(grads, dict) else grads
        validate.fail("grads", f"a dict with keys {sorted(params)}", keys)
    for k, p in params.items():
        g = grads[k]
        if not _same_kind(g, p):  # the message is built only for a refused gradient
            validate.array(g, f"grads[{k!r}]", f"a finite float array of shape "
                           f"{tuple(p.shape)} (its parameter's)", xp=backend.xp_of(p),
                           finite=False)
            validate.fail(f"grads[{k!r}]", f"shape {tuple(p.shape)} (its parameter's)", g)


def check_gradients(grads, params: dict) -> None:
    """The reference is `tinylora.optim.check_gradients`: each gradient's type, dtype and shape
    compared directly (the full check, and its message, only for one that fails), then their
    finiteness with one read on the host (`validate.all_finite`, itself fast)."""
    check_kinds(grads, params)
    if not validate.all_finite(grads.values()):
        for k in params:
            validate.finite_values(grads[k], f"grads[{k!r}]")


# --------------------------------------------------------------------------------------------
# The step decided on the device


def merge(status, counts, t: int) -> None:
    """status <- [t, *counts] when no step is refused yet and this one has a bad value (the first
    refusal since the last read: kept until `settle`); on any backend, with no read."""
    xp = backend.xp_of(status)
    fresh = (status[0] == 0) & (counts.sum() > 0)
    xp.copyto(status[1:], counts, where=fresh)
    xp.copyto(status[:1], t, where=fresh)


class Gate:
    """One optimizer's status on its backend, and what the host needs to report a refusal."""

    def __init__(self, params: dict):
        self.keys, self.params = list(params), params
        self.xp = backend.xp_of(next(iter(params.values())))
        self.status = self.xp.zeros(1 + len(self.keys), dtype="int64")
        self.counts = self.xp.zeros(len(self.keys), dtype="int64")
        self.slots = [self.counts[i:i + 1].reshape(()) for i in range(len(self.keys))]  # 0-d views
        self.kinds: dict = {}  # step t -> (array type, dtype) of each gradient, for the message
        self.pending = 0  # steps taken since the host last read status

    def record(self, grads: dict, t: int):
        """Step t's gradients into status. -> whether to update (NumPy: read at once), or None
        on a GPU (the update kernels read status themselves)."""
        self.pending += 1
        if on_host(self.xp):
            if self.status[0] == 0 and fast_validate.all_finite(grads.values()):
                return True  # the usual step: finite, nothing refused before it
            self.counts[...] = [int((~self.xp.isfinite(grads[k])).sum()) for k in self.keys]
        else:
            for k, slot in zip(self.keys, self.slots):
                cuda.count_nonfinite(grads[k], out=slot)
        self.kinds[t] = [(type(grads[k]), grads[k].dtype) for k in self.keys]
        merge(self.status, self.counts, t)
        return bool(self.status[0] == 0) if on_host(self.xp) else None

    def read(self, opt) -> str | None:
        """Read status on the host; after a refusal, t as it was before it and the reference's
        error message (None when every step since the last read was taken)."""
        host = backend.to_numpy(self.status).tolist()  # the one read
        kinds, self.kinds, self.pending = self.kinds, {}, 0
        if host[0] == 0:
            return None
        self.status[...] = 0
        opt.t = host[0] - 1  # the refused step and every one after it wrote nothing
        if opt.t == 0:
            opt.state.clear()  # the moments made for the refused first step: zeros, unused
        i = next(i for i, n in enumerate(host[1:]) if n)
        k, p = self.keys[i], self.params[self.keys[i]]
        kind, dtype = kinds[host[0]][i]
        return fast_validate.finite_message(
            f"grads[{k!r}]", host[1 + i], p.size,
            f"{kind.__module__.split('.')[0]} array of shape {tuple(p.shape)}, dtype {dtype}")


_GATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # optimizer -> its Gate


def step(opt, grads: dict) -> None:
    """The reference is `tinylora.optim.Optimizer.step`: the same update, but the gradients'
    values are judged on the device and read later (`settle`; the module's docstring). Their
    keys, types, dtypes and shapes are checked here, at once, as the reference does."""
    check_kinds(grads, opt.params)
    gate = _GATES.get(opt) or _GATES.setdefault(opt, Gate(opt.params))
    t = opt.t + 1
    update = gate.record(grads, t)
    opt.t = t  # put back by settle if the step is refused
    if update is None and not isinstance(opt, (SGD, Adam)):
        settle(opt)  # no gated kernel for this optimizer: read now (raises for a refused step)
        update = True
    if update is None:
        for group in opt.groups:
            for k in group["params"]:
                _gated_update(opt, k, opt.params[k], grads[k], group, gate.status)
    elif update:
        for group in opt.groups:
            for k in group["params"]:
                opt._update(k, opt.params[k], grads[k], group)
    if gate.pending >= SETTLE_EVERY:
        settle(opt)


def _gated_update(opt, key, p, grad, group, status) -> None:
    """`opt._update` as one kernel that writes nothing unless status[0] == 0."""
    lr, wd = group["lr"], group["weight_decay"]
    if isinstance(opt, Adam):
        s = opt._buffers(key, p, ("m", "v"))
        cuda.adam(p, grad, s["m"], s["v"], lr, opt.beta1, opt.beta2, opt.eps, opt.t, wd,
                  opt.decoupled, status)
    else:
        buf = opt._buffers(key, p, ("v",))["v"] if opt.momentum else None
        cuda.sgd(p, grad, buf, lr, wd, opt.momentum, opt.t == 1, status)


def settle(opt) -> None:
    """The reference is `tinylora.optim.Optimizer.settle`: read the device's answers on the host
    (one read), put t back before a refused step, and raise its error (a step's input that was
    not finite first: it is the cause)."""
    gate = _GATES.get(opt)
    refused = gate.read(opt) if gate is not None and gate.pending else None
    fast_validate.settle_checks()
    if refused is not None:
        raise ValueError(refused)
