"""Exercises with checkers: one small mechanism for every lesson.

A lesson ships a *stub*, a function whose body the student writes, and a *checker* cell:

    from exercises import Exercises
    ex = Exercises("01_lora_by_hand")           # once, near the top of the lesson

    def grad_B(u, dy):                          # the stub: the student replaces the body
        raise NotImplementedError("dB = ...")

    ex.check(grad_B, lambda f: np.allclose(f(u, dy), dB))   # prints "right" or "not yet"

The checker takes a function of the student's function that returns True when it is right (an
exception counts as wrong). The solution is a function of the same name in
`lessons/solutions/01_lora_by_hand.py`, out of sight until wanted. A wrong answer never stops the
lesson: the checker says so and the lesson goes on (no later cell uses an exercise's answer).

With `TINYLORA_CHECK_EXERCISES=1` (what `tests/test_lessons.py` sets) every checker also runs the
solution in the lesson's own context, and raises if the solution fails or if the stub as shipped
already passes (an exercise that gives its answer away); it prints one `[exercise]` line per
check, which the test counts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parent / "solutions"


def _passes(expect, fn) -> tuple[bool, str]:
    """(True, "") when expect(fn) is True; (False, why) when it is not or raises."""
    try:
        ok = bool(expect(fn))
    except Exception as err:  # noqa: BLE001 - any error in the student's code is "not yet"
        return False, f"{type(err).__name__}: {err}"
    return ok, "" if ok else "the check does not hold"


class Exercises:
    """The exercises of one lesson: `check` each stub against its checker."""

    def __init__(self, lesson: str):
        self.lesson = lesson
        self.checked: list[str] = []

    def solution(self, name: str):
        """The solution of exercise `name` (a function in lessons/solutions/<lesson>.py)."""
        path = SOLUTIONS / f"{self.lesson}.py"
        spec = importlib.util.spec_from_file_location(f"solutions_{self.lesson}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)

    def check(self, fn, expect) -> bool:
        """Say whether `fn` (the student's) is right: expect(fn) must be True."""
        name = fn.__name__
        ok, why = _passes(expect, fn)
        print(f"Exercise `{name}`: " + ("right." if ok else f"not yet ({why})."))
        if os.environ.get("TINYLORA_CHECK_EXERCISES") == "1":
            sol_ok, sol_why = _passes(expect, self.solution(name))
            if not sol_ok:
                raise AssertionError(f"the solution of `{name}` fails its checker: {sol_why}")
            if ok:
                raise AssertionError(f"the stub of `{name}` as shipped passes its checker")
            print(f"[exercise] {self.lesson}/{name}: stub fails, solution passes")
        self.checked.append(name)
        return ok
