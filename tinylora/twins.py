"""A reference function and its fast twin: the one switch between the two.

Everything in `tinylora/` is the reference: plain lines, one per equation, the code to read. A
few functions have a *fast twin* in `tinylora.fast`, with the same signature and the same numbers
(to rounding), each tested against its reference (`tests/test_fast_paths.py`). A reference
marked ``@has_fast_twin`` runs its twin while fast mode is on, and itself otherwise (the user
imports ``tinylora.fast``; this module never does):

    with tinylora.fast.enabled():    # or tinylora.fast.enable() ... tinylora.fast.disable()
        losses = train(model, opt, x, y, steps=100)

Fast mode is off after ``import tinylora``: the code a student opens is the code that runs. The
`tinylora` commands and the benchmark switch it on. A forward's cache goes back to the backward
of the same implementation: switch between steps, never between a forward and its backward.
"""

from __future__ import annotations

import functools

_DISPATCHERS: list = []  # every function marked @has_fast_twin, in the order they were defined


def has_fast_twin(reference):
    """Mark `reference` as having a twin in `tinylora.fast`: the returned function runs the
    reference, or the installed twin while fast mode is on. ``f.reference`` is the plain one."""
    slot = [reference]  # the implementation that runs now

    @functools.wraps(reference)
    def dispatch(*args, **kwargs):
        return slot[0](*args, **kwargs)

    dispatch.reference, dispatch.twin, dispatch.slot = reference, None, slot
    _DISPATCHERS.append(dispatch)
    return dispatch


def install(dispatch, twin) -> None:
    """Give the reference `dispatch` (a function marked @has_fast_twin) its fast `twin`; it runs
    once fast mode is on (`use`). Called by `tinylora.fast` when it is imported."""
    if dispatch not in _DISPATCHERS:
        raise ValueError(f"install: expected a function marked @has_fast_twin, got {dispatch!r}")
    dispatch.twin = twin
    dispatch.slot[0] = twin if fast_mode() else dispatch.reference


_MODE = {"fast": False}


def use(fast: bool) -> None:
    """Fast mode on (every installed twin runs) or off (every reference runs)."""
    if not isinstance(fast, bool):
        raise ValueError(f"fast: expected True or False, got {fast!r} ({type(fast).__name__})")
    _MODE["fast"] = fast
    for d in _DISPATCHERS:
        d.slot[0] = d.twin if (fast and d.twin is not None) else d.reference


def fast_mode() -> bool:
    """Whether fast mode is on."""
    return _MODE["fast"]


def pairs() -> list:
    """(reference, twin) for every function marked @has_fast_twin whose twin is installed."""
    return [(d.reference, d.twin) for d in _DISPATCHERS if d.twin is not None]


def dispatchers() -> list:
    """Every function marked @has_fast_twin (installed or not)."""
    return list(_DISPATCHERS)
