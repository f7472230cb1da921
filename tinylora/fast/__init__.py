"""The fast implementations: the same functions as the reference in `tinylora/`, with the same
signatures and the same numbers (to rounding), faster. Each module opens with the reference it
stands beside, and every pair is tested against each other in `tests/test_fast_paths.py`.

    import tinylora.fast
    tinylora.fast.enable()           # every reference marked @has_fast_twin runs its twin
    with tinylora.fast.enabled():    # ... or only inside the block
        ...
    tinylora.fast.disable()          # the reference again (the default after `import tinylora`)

Importing this package installs the twins (`tinylora.twins.install`) and switches nothing on.
The `tinylora` commands and the benchmark turn fast mode on; a notebook may. What each twin
saves, measured, is in `docs/benchmarks.md`.
"""

from __future__ import annotations

import contextlib

import tinylora.attention
import tinylora.layers
import tinylora.norms
import tinylora.optim
import tinylora.validate
from tinylora import twins
from tinylora.fast import attention, layers, norms, optim, validate

TWINS = [  # (the reference, its fast twin)
    (tinylora.layers.linear_forward, layers.linear_forward),
    (tinylora.layers.linear_backward, layers.linear_backward),
    (tinylora.layers.lora_linear_forward, layers.lora_linear_forward),
    (tinylora.layers.lora_linear_backward, layers.lora_linear_backward),
    (tinylora.layers.gelu_forward, layers.gelu_forward),
    (tinylora.layers.gelu_backward, layers.gelu_backward),
    (tinylora.layers.mse_forward, layers.mse_forward),
    (tinylora.norms.layernorm_forward, norms.layernorm_forward),
    (tinylora.norms.layernorm_backward, norms.layernorm_backward),
    (tinylora.attention.attend_forward, attention.attend_forward),
    (tinylora.attention.attend_backward, attention.attend_backward),
    (tinylora.optim.adam_update, optim.adam_update),
    (tinylora.optim.check_gradients, optim.check_gradients),
    (tinylora.optim.Optimizer.step, optim.step),
    (tinylora.optim.Optimizer.settle, optim.settle),
    (tinylora.validate.all_finite, validate.all_finite),
    (tinylora.validate.finite_values, validate.finite_values),
    (tinylora.validate.input_values, validate.input_values),
]
for _reference, _twin in TWINS:
    twins.install(_reference, _twin)


def enable() -> None:
    """Fast mode on: every reference with a twin runs the twin, until `disable`."""
    twins.use(True)


def disable() -> None:
    """Fast mode off: the reference runs (the default)."""
    twins.use(False)


def is_enabled() -> bool:
    """Whether fast mode is on."""
    return twins.fast_mode()


@contextlib.contextmanager
def enabled(on: bool = True):
    """Fast mode `on` (or off, with False) inside a ``with`` block; the previous mode after it."""
    before = twins.fast_mode()
    twins.use(on)
    try:
        yield
    finally:
        twins.use(before)
