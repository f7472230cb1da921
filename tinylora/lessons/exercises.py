"""Exercises with checkers: one small mechanism for every lesson.

A lesson ships a *stub*, a function whose body the student writes, and a *checker* cell that
calls it on a few cases, each ``(what the case is, the arguments, the expected answer)``:

    from tinylora.lessons.exercises import Exercises
    ex = Exercises("01_lora_by_hand")               # once, near the top of the lesson

    def grad_B(u, dy):                              # the stub: the student replaces the body
        raise NotImplementedError("dB = ...")

    ex.check(grad_B, [("a random u and dy", (u, dy), u.T @ dy)])

A right answer prints ``right.``. A wrong one prints which case failed, the call, what was
expected, what came back and by how much they differ (or the error it raised), and the lesson
goes on: no later cell uses an exercise's answer. Numbers and arrays are compared with
``numpy.allclose(got, expected, rtol, atol)`` after a shape check; booleans and None must be
equal, and strings (a choice) equal but for case and spaces; tuples, lists and dicts are compared
item by item. A checker may pass its own ``compare(got, expected) -> bool`` (a relative error,
a set).

The solution is a function of the same name in ``lessons/solutions/<lesson>.py``, out of sight
until wanted. With ``TINYLORA_CHECK_EXERCISES=1`` (what ``tests/test_lessons.py`` sets) every
checker also runs the solution on the same cases, and raises if the solution fails or if the stub
as shipped already passes (an exercise that gives its answer away); it prints one ``[exercise]``
line per check, which the test counts. The solutions are looked for in ``$TINYLORA_SOLUTIONS``,
then in ``solutions/`` beside the running lesson, then in the repository's ``lessons/solutions``.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from pathlib import Path

import numpy as np

REPOSITORY_SOLUTIONS = Path(__file__).resolve().parents[2] / "lessons" / "solutions"


def solutions_folder(lesson: str) -> Path:
    """Where the solutions of `lesson` are: $TINYLORA_SOLUTIONS, ./solutions or the checkout's."""
    places = [Path(p) for p in (os.environ.get("TINYLORA_SOLUTIONS"),) if p]
    places += [Path.cwd() / "solutions", REPOSITORY_SOLUTIONS]
    for place in places:
        if (place / f"{lesson}.py").exists():
            return place
    raise FileNotFoundError(
        f"no solutions of {lesson} in {', '.join(str(p) for p in places)}: they are in the "
        "repository's lessons/solutions/ (set TINYLORA_SOLUTIONS to that folder)")


def show(value, width: int = 6) -> str:
    """A short description of a value: an array's shape and first entries, a number to 6 digits."""
    if isinstance(value, np.ndarray):
        flat = np.array2string(value.ravel()[:width], precision=4, separator=", ")
        more = ", ..." if value.size > width else ""
        return f"array {value.shape} [{flat[1:-1]}{more}]"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, tuple):
        inner = ", ".join(show(v, width) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(show(v, width) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {show(v, width)}" for k, v in value.items()) + "}"
    return repr(value)


def difference(got, expected, rtol: float, atol: float) -> str | None:
    """None when `got` matches `expected` (see the module's rules); else how they differ."""
    if isinstance(expected, (bool, np.bool_)):
        same = isinstance(got, (bool, np.bool_)) and bool(got) == bool(expected)
        return None if same else "not the same"
    if isinstance(expected, str):  # a choice: case and surrounding spaces do not matter
        same = isinstance(got, str) and got.strip().lower() == expected.strip().lower()
        return None if same else "not the same"
    if expected is None or got is None or isinstance(got, str):
        return None if got is expected else "not the same"
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected {len(expected)} items, got {show(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            why = difference(g, e, rtol, atol)
            if why:
                return f"item {i}: {why}"
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            keys = sorted(got) if isinstance(got, dict) else got
            return f"expected the keys {sorted(expected)}, got {keys}"
        for key in expected:
            why = difference(got[key], expected[key], rtol, atol)
            if why:
                return f"[{key!r}]: {why}"
        return None
    try:
        g, e = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        return f"not a number or an array: {show(got)}"
    if g.shape != e.shape:
        return f"shape {g.shape}, expected {e.shape}"
    if np.allclose(g, e, rtol=rtol, atol=atol):
        return None
    gap = np.abs(g - e)
    gap = np.where(np.isnan(gap), np.inf, gap)
    where = np.unravel_index(int(np.argmax(gap)), gap.shape) if gap.ndim else ()
    at = f" at {list(map(int, where))}" if where else ""
    return (f"max |got - expected| = {float(gap.max()):.2e}{at} (tolerance "
            f"{atol:g} + {rtol:g} |expected|)")


def call_text(fn, args) -> str:
    """``name(arg=value, ...)``, the arguments named as the function names them."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    parts = [f"{names[i]}={show(a, 3)}" if i < len(names) else show(a, 3)
             for i, a in enumerate(args)]
    return f"{fn.__name__}({', '.join(parts)})"


def first_failure(fn, cases, rtol: float, atol: float, compare=None) -> str | None:
    """None when `fn` answers every case; else a report of the first case it gets wrong.
    `cases` may also be a predicate, ``cases(fn) -> bool`` (a check that names no expected
    value: prefer cases)."""
    if callable(cases):
        try:
            return None if cases(fn) else "the check does not hold"
        except Exception as err:  # noqa: BLE001 - any error in the student's code is "not yet"
            return f"{type(err).__name__}: {err}"
    for i, (what, args, expected) in enumerate(cases, start=1):
        head = f"case {i} of {len(cases)}: {what}\n  call:     {call_text(fn, args)}\n"
        try:
            got = fn(*args)
        except Exception as err:  # noqa: BLE001 - any error in the student's code is "not yet"
            return f"{head}  raised:   {type(err).__name__}: {err}"
        try:
            why = (None if compare(got, expected) else "the comparison does not hold"
                   ) if compare else difference(got, expected, rtol, atol)
        except Exception as err:  # noqa: BLE001 - an answer of the wrong kind is "not yet"
            why = f"could not compare ({type(err).__name__}: {err})"
        if why:
            return (f"{head}  expected: {show(expected)}\n  got:      {show(got)}\n"
                    f"  so:       {why}")
    return None


class Exercises:
    """The exercises of one lesson: `check` each stub on its cases."""

    def __init__(self, lesson: str):
        self.lesson = lesson
        self.checked: list[str] = []

    def solution(self, name: str):
        """The solution of exercise `name` (a function in the lesson's solutions file)."""
        path = solutions_folder(self.lesson) / f"{self.lesson}.py"
        spec = importlib.util.spec_from_file_location(f"solutions_{self.lesson}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)

    def check(self, fn, cases, *, rtol: float = 1e-9, atol: float = 1e-12, compare=None) -> bool:
        """Say whether `fn` (the student's) answers every case ``(what, args, expected)``."""
        name = fn.__name__
        failure = first_failure(fn, cases, rtol, atol, compare)
        print(f"Exercise `{name}`: " + ("right." if failure is None else f"not yet, {failure}"))
        if os.environ.get("TINYLORA_CHECK_EXERCISES") == "1":
            sol_failure = first_failure(self.solution(name), cases, rtol, atol, compare)
            if sol_failure:
                raise AssertionError(f"the solution of `{name}` fails its checker: {sol_failure}")
            if failure is None:
                raise AssertionError(f"the stub of `{name}` as shipped passes its checker")
            print(f"[exercise] {self.lesson}/{name}: stub fails, solution passes")
        self.checked.append(name)
        return failure is None
