"""lessons/exercises.py, the checker every lesson's exercises use: it says right or not yet
without stopping a lesson, and under TINYLORA_CHECK_EXERCISES=1 it holds the shipped stub and the
solution to their promises (the stub wrong, the solution right)."""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "lessons" / "exercises.py"
spec = importlib.util.spec_from_file_location("lesson_exercises", PATH)
exercises = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exercises)


def stub(x):
    """A shipped stub: the student replaces the body."""
    raise NotImplementedError("your line")


stub.__name__ = "double"  # the exercise's name (a solution of that name lives in solutions/)


def test_check_says_not_yet_and_right_without_stopping(monkeypatch, capsys):
    """A stub that raises, or answers wrong, prints `not yet` and returns False; a right answer
    prints `right.` and returns True; none of them raises (the lesson goes on)."""
    monkeypatch.delenv("TINYLORA_CHECK_EXERCISES", raising=False)
    ex = exercises.Exercises("00_test")
    assert ex.check(stub, lambda f: f(2) == 4) is False
    assert "not yet (NotImplementedError: your line)" in capsys.readouterr().out

    def double(x):  # the student's first try, wrong
        return x + 1

    assert ex.check(double, lambda f: f(2) == 4 and f(5) == 10) is False

    def double(x):  # noqa: F811 - the second try, right
        return 2 * x

    assert ex.check(double, lambda f: f(2) == 4 and f(5) == 10) is True
    assert capsys.readouterr().out.splitlines()[-1] == "Exercise `double`: right."


@pytest.fixture
def solutions(tmp_path, monkeypatch):
    """A solutions folder with one lesson's file: `double` right, `half` wrong."""
    (tmp_path / "00_test.py").write_text("def double(x):\n    return 2 * x\n\n\n"
                                         "def half(x):\n    return x\n")
    monkeypatch.setattr(exercises, "SOLUTIONS", tmp_path)
    monkeypatch.setenv("TINYLORA_CHECK_EXERCISES", "1")
    return tmp_path


def test_check_mode_passes_a_failing_stub_with_a_right_solution(solutions, capsys):
    """Under TINYLORA_CHECK_EXERCISES=1 a wrong stub with a right solution passes, and says so."""
    exercises.Exercises("00_test").check(stub, lambda f: f(3) == 6)
    assert "[exercise] 00_test/double: stub fails, solution passes" in capsys.readouterr().out


def test_check_mode_refuses_a_stub_that_gives_the_answer_away(solutions):
    """A stub that already passes its checker is an error in check mode."""
    def double(x):
        return 2 * x

    with pytest.raises(AssertionError, match="stub of `double` as shipped passes"):
        exercises.Exercises("00_test").check(double, lambda f: f(3) == 6)


def test_check_mode_refuses_a_wrong_solution(solutions):
    """A solution that fails its own checker is an error in check mode."""
    def half(x):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="solution of `half` fails its checker"):
        exercises.Exercises("00_test").check(half, lambda f: f(4) == 2)
