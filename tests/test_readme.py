"""The README's examples run as written and print what the README says they print."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```(?:\s*\n[^`]*?```text\n(.*?)```)?", re.S)


def python_blocks():
    """Each ```python block, with the ```text block that follows it (its printed output)."""
    return BLOCK.findall(README.read_text())


def test_readme_has_a_runnable_example():
    """There is at least one Python example, and it shows its output."""
    blocks = python_blocks()
    assert blocks and any(expected for _, expected in blocks)


def test_readme_examples_print_what_the_readme_says(tmp_path, monkeypatch):
    """Run every block in order (they may build on each other) and compare printed output."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code, expected in python_blocks():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(README), "exec"), namespace)  # noqa: S102
        if expected:
            assert out.getvalue().strip() == expected.strip()


FIRST_SCREEN = 60  # lines


def test_a_newcomer_installs_and_runs_within_the_first_screen():
    """The README's first screen says what tinylora is, shows one picture, how to install it
    from a clone (with the extras), the two commands and a first example with what it prints;
    the links and the name come after."""
    lines = README.read_text().splitlines()
    head = "\n".join(lines[:FIRST_SCREEN])
    assert head.count("![") == 1 and "pip install -e ." in head and "'.[test]'" in head
    assert "make demo" in head and "make test" in head
    assert re.search(r"```python\n.*loraplus_groups\(.*lr_ratio=.*```\s*\nprints\s*\n```text\n",
                     head, re.S)
    rest = "\n".join(lines[FIRST_SCREEN:])
    assert "TinyLoraConfig" in README.read_text() and "docs/results/README.md" in rest
