"""tinylora.lessons.exercises, the checker every lesson's exercises use: it says right or not yet
without stopping a lesson, a wrong answer names its case, the call, what was expected and what
came back, and under TINYLORA_CHECK_EXERCISES=1 it holds the shipped stub and the solution to
their promises (the stub wrong, the solution right)."""

import numpy as np
import pytest

from tinylora.lessons import exercises
from tinylora.lessons.exercises import Exercises


def stub(x):
    """A shipped stub: the student replaces the body."""
    raise NotImplementedError("your line")


stub.__name__ = "double"  # the exercise's name (a solution of that name lives in solutions/)
CASES = [("a small number", (2,), 4), ("a larger one", (5,), 10)]


@pytest.fixture(autouse=True)
def no_check_mode(monkeypatch):
    monkeypatch.delenv("TINYLORA_CHECK_EXERCISES", raising=False)


def test_check_says_not_yet_and_right_without_stopping(capsys):
    """A stub that raises, or answers wrong, prints `not yet` and returns False; a right answer
    prints `right.` and returns True; none of them raises (the lesson goes on)."""
    ex = Exercises("00_test")
    assert ex.check(stub, CASES) is False
    out = capsys.readouterr().out
    assert "not yet, case 1 of 2: a small number" in out
    assert "raised:   NotImplementedError: your line" in out

    def double(x):  # the student's first try, wrong
        return x + 2

    assert ex.check(double, CASES) is False

    def double(x):  # noqa: F811 - the second try, right
        return 2 * x

    assert ex.check(double, CASES) is True
    assert capsys.readouterr().out.splitlines()[-1] == "Exercise `double`: right."


def test_a_wrong_answer_names_the_case_the_call_the_expected_and_the_got(capsys):
    """The report of a wrong answer: the first failing case (2 of 2 here: case 1 is right), the
    call with its arguments named, the expected value, the value that came back, the gap."""
    def double(x):
        return x + 2  # right for 2, wrong for 5

    Exercises("00_test").check(double, CASES)
    out = capsys.readouterr().out
    assert "case 2 of 2: a larger one" in out
    assert "call:     double(x=5)" in out
    assert "expected: 10" in out and "got:      7" in out
    assert "max |got - expected| = 3.00e+00" in out


def test_arrays_report_shape_and_where_they_differ(capsys):
    """An array of the wrong shape is named by both shapes; one of the right shape by the largest
    gap and its index."""
    expected = np.arange(6.0).reshape(2, 3)

    def grad(a):
        return a.T  # the wrong shape

    Exercises("00_test").check(grad, [("a 2 x 3 array", (expected,), expected)])
    assert "shape (3, 2), expected (2, 3)" in capsys.readouterr().out

    def grad(a):  # noqa: F811 - the right shape, one wrong entry
        out = a.copy()
        out[1, 2] += 0.5
        return out

    Exercises("00_test").check(grad, [("a 2 x 3 array", (expected,), expected)])
    assert "max |got - expected| = 5.00e-01 at [1, 2]" in capsys.readouterr().out


def test_choices_tuples_and_dicts_are_compared_item_by_item():
    """A choice ignores case and spaces; a tuple or dict is wrong when one item is, and says which;
    None or a string where a number is expected is wrong, not an error."""
    assert exercises.difference(" dB ", "db", 1e-9, 0) is None
    assert exercises.difference("dA", "dB", 1e-9, 0) == "not the same"
    assert exercises.difference((1.0, 2.0), (1.0, 3.0), 1e-9, 0).startswith("item 1:")
    assert "['b']" in exercises.difference({"a": 1, "b": 2}, {"a": 1, "b": 3}, 1e-9, 0)
    assert exercises.difference({"a": 1}, {"a": 1, "b": 2}, 1e-9, 0).startswith("expected the keys")
    assert exercises.difference(None, 1.0, 1e-9, 0) == "not the same"
    assert exercises.difference(True, True, 0, 0) is None
    assert exercises.difference(np.True_, False, 0, 0) == "not the same"


def test_a_custom_comparison_is_used_when_given(capsys):
    """`compare(got, expected)` replaces the closeness rule (a relative error, a set)."""
    def keys():
        return ["b", "a"]

    same_set = Exercises("00_test").check(keys, [("", (), ["a", "b"])],
                                           compare=lambda g, e: set(g) == set(e))
    assert same_set is True


@pytest.fixture
def solutions(tmp_path, monkeypatch):
    """A solutions folder with one lesson's file: `double` right, `half` wrong."""
    (tmp_path / "00_test.py").write_text("def double(x):\n    return 2 * x\n\n\n"
                                         "def half(x):\n    return x\n")
    monkeypatch.setenv("TINYLORA_SOLUTIONS", str(tmp_path))
    monkeypatch.setenv("TINYLORA_CHECK_EXERCISES", "1")
    return tmp_path


def test_check_mode_passes_a_failing_stub_with_a_right_solution(solutions, capsys):
    """Under TINYLORA_CHECK_EXERCISES=1 a wrong stub with a right solution passes, and says so."""
    Exercises("00_test").check(stub, CASES)
    assert "[exercise] 00_test/double: stub fails, solution passes" in capsys.readouterr().out


def test_check_mode_refuses_a_stub_that_gives_the_answer_away(solutions):
    """A stub that already passes its checker is an error in check mode."""
    def double(x):
        return 2 * x

    with pytest.raises(AssertionError, match="stub of `double` as shipped passes"):
        Exercises("00_test").check(double, CASES)


def test_check_mode_refuses_a_wrong_solution(solutions):
    """A solution that fails its own checker is an error in check mode, with the failing case."""
    def half(x):
        raise NotImplementedError

    with pytest.raises(AssertionError, match=r"solution of `half` fails its checker: case 1"):
        Exercises("00_test").check(half, [("four", (4,), 2)])


def test_solutions_are_found_beside_the_lesson_or_in_the_checkout(tmp_path, monkeypatch):
    """Without TINYLORA_SOLUTIONS, ./solutions/ (beside a lesson run from its folder) comes first,
    then the repository's lessons/solutions/; a lesson with neither gets an error naming both."""
    monkeypatch.delenv("TINYLORA_SOLUTIONS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert exercises.solutions_folder("01_lora_by_hand") == exercises.REPOSITORY_SOLUTIONS
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_lora_by_hand.py").write_text("")
    assert exercises.solutions_folder("01_lora_by_hand") == tmp_path / "solutions"
    with pytest.raises(FileNotFoundError, match="TINYLORA_SOLUTIONS"):
        exercises.solutions_folder("99_no_such_lesson")
