"""SGD, Adam and AdamW from their equations, with parameter groups; the LoRA+ grouping.

An optimizer holds the model's trainable arrays by key and updates them **in place** (so the
model sees every step), with its state (momenta) allocated once, on the first step.
Each parameter belongs to exactly one *group*, and each group has its own learning rate and
weight decay. LoRA+ is nothing more than groups: ``*.B`` at ``lr * lr_ratio``, A at ``lr``
(`tinylora.groups.loraplus_groups`, by tinylora's rule or PEFT's).

A learning rate may be a Python float or an array that broadcasts against the parameter, e.g.
shape ``(S, 1, 1)`` for a stack of S models with one rate each (the grids of `tinylora.lab.grid`).
Learning rates stay Python floats where they can, so float32 runs are never promoted to float64.
"""

from __future__ import annotations

from tinylora import backend, checkpoint, validate
from tinylora.twins import has_fast_twin

_check_lr = validate.learning_rate  # a finite rate >= 0: a number, or an array of them


class Optimizer:
    """Base class: groups, validation, lazily allocated state, ``step(grads)``, saved state."""

    moments: tuple = ()  # the state each parameter keeps, by name ("m", "v" for Adam)

    def __init__(self, params: dict, lr=1e-3, weight_decay=0.0, groups=None):
        if not isinstance(params, dict) or not params:
            validate.fail("params", "a non-empty dict of arrays by key", params)
        for k, p in params.items():  # updated in place: each must be a float array already
            validate.array(p, f"params[{k!r}]", "a float array (updated in place)", finite=False)
        self.params = params
        if groups is None:
            groups = [{"params": list(params)}]
        if isinstance(groups, (str, dict)) or not hasattr(groups, "__iter__"):
            validate.fail("groups", "a list of dicts, each with a 'params' list of keys", groups)
        self.groups, seen = [], set()
        for i, g in enumerate(groups):
            if not isinstance(g, dict) or not isinstance(g.get("params"), (list, tuple)) \
                    or not all(isinstance(k, str) for k in g["params"]):
                validate.fail(f"groups[{i}]", "a dict with a 'params' list of keys", g)
            unknown = [k for k in g["params"] if k not in params]
            if unknown:
                raise ValueError(f"groups[{i}]: unknown parameters {unknown}")
            twice = seen.intersection(g["params"])
            if twice:
                raise ValueError(f"groups[{i}]: parameters {sorted(twice)} are in two groups")
            seen.update(g["params"])
            group = {"lr": lr, "weight_decay": weight_decay, **g}
            group["lr"] = self._as_rate(_check_lr(group["lr"], f"groups[{i}].lr"), g["params"])
            group["weight_decay"] = validate.non_negative(group["weight_decay"],
                                                          f"groups[{i}].weight_decay")
            self.groups.append(group)
        missing = [k for k in params if k not in seen]
        if missing:
            raise ValueError(f"groups: parameters {missing} are in no group")
        self.state: dict = {}
        self.t = 0  # steps taken; Adam counts from 1

    def _as_rate(self, lr, keys):
        """Python floats stay floats; arrays move to the parameters' backend and dtype."""
        if isinstance(lr, float):
            return lr
        p = self.params[keys[0]]
        return backend.xp_of(p).asarray(backend.to_numpy(lr), dtype=p.dtype)

    @has_fast_twin
    def step(self, grads: dict) -> None:
        """One update of every parameter, in place. `grads` has exactly the parameters' keys,
        each a finite real array of its parameter's shape on its backend. Every gradient is
        checked before anything is written: a refused step leaves parameters, state and t as
        they were. (The fast twin decides on the device and reports at `settle`.)"""
        check_gradients(grads, self.params)
        self.t += 1
        for g in self.groups:
            for k in g["params"]:
                self._update(k, self.params[k], grads[k], g)

    @has_fast_twin
    def settle(self) -> None:
        """Report a refused step not yet reported. Here there is none: `step` checks on the host
        and refuses at once. The fast twin decides on the device, writing nothing for a refused
        step, and raises that step's error here, where the caller reads anyway."""

    def _update(self, key, p, grad, group):
        raise NotImplementedError

    def state_dict(self) -> dict:
        """What a resumed run needs, as copies: the class, ``t`` (steps taken: a `Schedule`'s
        position), ``groups`` (keys, lr, weight_decay, name, and ``initial_lr``: a Schedule's
        base rate), ``state``: each moment as ``<moment>.<key>`` ("m.fc1.A", "v.fc1.A")."""
        return {"kind": type(self).__name__, "t": self.t,
                "groups": [{**g, "params": list(g["params"])} for g in self.groups],
                "state": {f"{n}.{k}": a.copy() for k, s in self.state.items()
                          for n, a in s.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict`, all or nothing: the same class and groups of keys and, after a
        step, every moment of every parameter, finite, of its shape (to its backend and dtype)."""
        kind, keys = type(self).__name__, [list(g["params"]) for g in self.groups]
        if state.get("kind") != kind:
            validate.fail("state['kind']", repr(kind), state.get("kind"))
        if [list(g["params"]) for g in state.get("groups", [])] != keys:
            validate.fail("state['groups']", f"groups of the keys {keys}", state.get("groups"))
        t = validate.integer(state.get("t"), "state['t']", low=0)
        groups = [{**{n: self._as_rate(_check_lr(g[n], f"groups[{i}].{n}"), g["params"])
                      for n in ("lr", "initial_lr") if n in g},
                   "weight_decay": validate.non_negative(g.get("weight_decay"),
                                                         f"groups[{i}].weight_decay")}
                  for i, g in enumerate(state["groups"])]
        moments = {f"{n}.{k}": backend.xp_of(p).zeros_like(p) for k, p in self.params.items()
                   for n in (self.moments if t else ())}  # what a step leaves, to be filled
        checkpoint.load(moments, tuple(moments), state.get("state", {}), "state['state']")
        for g, new in zip(self.groups, groups):  # every check passed: now write
            g.update(new)
        self.t, self.state = t, {}
        for name, a in moments.items():
            n, _, k = name.partition(".")
            self.state.setdefault(k, {})[n] = a

    def save(self, path):
        """`state_dict` to a .npz file: the moments as arrays, the rest as the file's settings
        (`tinylora.checkpoint`). -> the path written."""
        state = self.state_dict()
        return checkpoint.save(state.pop("state"), path, state)

    def load(self, path) -> None:
        """`load_state_dict` what `save` wrote to `path` (a stack's rates come back as lists)."""
        arrays, state = checkpoint.read(path)
        for g in (state or {}).get("groups", []):
            g.update({n: backend.to_numpy(g[n]) for n in ("lr", "initial_lr")
                      if isinstance(g.get(n), list)})
        self.load_state_dict({**(state or {}), "state": arrays})

    def _buffers(self, key, p, names):
        """State arrays for `key`, zero-initialised once, on first use (never per step)."""
        if key not in self.state:
            xp = backend.xp_of(p)
            self.state[key] = {n: xp.zeros_like(p) for n in names}
        return self.state[key]

    def __repr__(self) -> str:
        groups = ", ".join(f"{g.get('name', i)}: {len(g['params'])} arrays at lr={_fmt(g['lr'])}"
                           for i, g in enumerate(self.groups))
        return f"{type(self).__name__}(t={self.t}; {groups})"


@has_fast_twin
def check_gradients(grads, params: dict) -> None:
    """Refuse `grads` unless it has exactly the keys of `params`, each a finite real float array
    of its parameter's exact shape (never broadcast) on its backend. The error names the first
    bad gradient."""
    if not isinstance(grads, dict) or grads.keys() != params.keys():  # as sets
        keys = sorted(grads) if isinstance(grads, dict) else grads
        validate.fail("grads", f"a dict with keys {sorted(params)}", keys)
    for k, p in params.items():
        expected = f"a finite float array of shape {tuple(p.shape)} (its parameter's)"
        validate.array(grads[k], f"grads[{k!r}]", expected, xp=backend.xp_of(p), finite=False)
        if tuple(grads[k].shape) != tuple(p.shape):
            validate.fail(f"grads[{k!r}]", f"shape {tuple(p.shape)} (its parameter's)", grads[k])
    if not validate.all_finite(grads.values()):
        for k in params:  # name the bad one
            validate.finite_values(grads[k], f"grads[{k!r}]")


def _fmt(lr):
    return f"{lr:g}" if isinstance(lr, float) else f"array{tuple(lr.shape)}"


class SGD(Optimizer):
    """p <- p - lr * v,   v <- momentum * v + (g + wd * p)   (PyTorch's form; v = g at t = 1)."""

    def __init__(self, params, lr=1e-2, momentum=0.0, weight_decay=0.0, groups=None):
        self.momentum = validate.number(momentum, "momentum", low=0.0, low_ok=True, high=1.0)
        self.moments = ("v",) if self.momentum else ()
        super().__init__(params, lr, weight_decay, groups)

    def _update(self, key, p, grad, group):
        lr, wd = group["lr"], group["weight_decay"]
        if wd:
            grad = grad + wd * p  # L2 penalty folded into the gradient
        if self.momentum:
            s = self._buffers(key, p, ("v",))
            if self.t == 1:
                s["v"][...] = grad
            else:
                s["v"] *= self.momentum
                s["v"] += grad
            grad = s["v"]
        p -= lr * grad


class Adam(Optimizer):
    """Adam, as PyTorch documents it (t counts from 1):

        g <- g + wd * p                       (Adam's L2 weight decay; AdamW decouples it)
        m <- beta1 m + (1 - beta1) g          v <- beta2 v + (1 - beta2) g^2
        m_hat = m / (1 - beta1^t)             v_hat = v / (1 - beta2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    At t = 1, m_hat = g and v_hat = g^2, so the first step is -lr * g / (|g| + eps): a sign-like
    step of size lr per coordinate, whatever the gradient's scale.
    """

    decoupled = False
    moments = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 groups=None):
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            validate.fail("betas", "two numbers (beta1, beta2) in [0, 1)", betas)
        self.beta1, self.beta2 = (validate.number(b, f"betas[{i}]", low=0.0, low_ok=True,
                                                  high=1.0) for i, b in enumerate(betas))
        self.eps = validate.positive(eps, "eps")  # eps = 0: 0 / 0 where a gradient is 0
        super().__init__(params, lr, weight_decay, groups)

    def _update(self, key, p, grad, group):
        lr, wd = group["lr"], group["weight_decay"]
        s = self._buffers(key, p, ("m", "v"))
        if wd and self.decoupled:  # AdamW: p <- p (1 - lr wd), before the moments
            p -= lr * wd * p
        elif wd:  # Adam: L2 penalty in the gradient
            grad = grad + wd * p
        adam_update(p, grad, s["m"], s["v"], lr, self.beta1, self.beta2, self.eps, self.t)


@has_fast_twin
def adam_update(p, g, m, v, lr, beta1: float, beta2: float, eps: float, t: int) -> None:
    """One Adam step of parameter p, in place on p and its moments m and v (t counts from 1)."""
    m[...] = beta1 * m + (1 - beta1) * g  # the first moment: a running mean of g
    v[...] = beta2 * v + (1 - beta2) * g * g  # the second moment: a running mean of g^2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)  # the bias corrections
    p -= lr * m_hat / (backend.xp_of(p).sqrt(v_hat) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p <- p (1 - lr wd) first,
    then the Adam step on the raw gradient. PyTorch's AdamW default weight decay is 0.01."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 groups=None):
        super().__init__(params, lr, betas, eps, weight_decay, groups)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, params: dict, **kwargs) -> Optimizer:
    """An optimizer by name: 'sgd', 'adam' or 'adamw' (anything else lists the valid ones)."""
    validate.choice(name, "optimizer", sorted(OPTIMIZERS))
    return OPTIMIZERS[name](params, **kwargs)
