"""The command line: `tinylora` and `python -m tinylora.run` are the same program."""

import subprocess
import sys

from tinylora.run.cli import main


def test_python_dash_m_runs_the_cli():
    """`python -m tinylora.run --help` lists the commands (the console script calls that main)."""
    out = subprocess.run([sys.executable, "-m", "tinylora.run", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "gradcheck" in out and "demo" in out


def test_bad_backend_is_one_clear_line(capsys):
    """A wrong choice is refused by argparse with the valid choices listed, exit code 2."""
    try:
        main(["gradcheck", "--backend", "jax"])
    except SystemExit as err:
        assert err.code == 2
    assert "invalid choice: 'jax'" in capsys.readouterr().err



# --------------------------------------------------------------------------------------------
# One program: a version, a paragraph per command, one syntax and one name per option

import argparse  # noqa: E402
import re  # noqa: E402

import pytest  # noqa: E402

import tinylora  # noqa: E402
from tinylora.run import cli, options  # noqa: E402

NAMES = ["gradcheck"] + [row.name for row in cli.COMMANDS]


def _parser(name: str) -> argparse.ArgumentParser:
    """The parser of `tinylora <name>` (its module imported, its options defined)."""
    top = cli.build_parser(name)
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _options(name: str) -> dict:
    return {s: a for a in _parser(name)._actions for s in a.option_strings
            if s.startswith("--") and s != "--help"}


def test_version_prints_the_package_version(capsys):
    """`tinylora --version` prints `tinylora <__version__>` and exits 0."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"tinylora {tinylora.__version__}\n"


@pytest.mark.parametrize("name", NAMES)
def test_every_command_says_what_it_does_and_how_long_it_takes(name, monkeypatch, capsys):
    """`tinylora <command> --help` opens with a paragraph that ends with its usual run time here
    and closes with what each exit status means; no line is wider than 100 columns, however
    wide the terminal."""
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    assert re.search(r"(About [\d.]+( to [\d.]+)? (s|min)( of runs)?|A few minutes) here", flat)
    assert "Exit status: 0 done, 1 the run failed" in flat and "2 bad usage" in flat
    assert max(map(len, text.splitlines())) <= 100


def test_the_top_level_help_lists_every_command_within_100_columns(monkeypatch, capsys):
    """`tinylora --help` names every command, each with its one line, within 100 columns."""
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in NAMES)
    assert max(map(len, text.splitlines())) <= 100


SAMPLES = {options.positive_int: ("2", "3"), options.non_negative_int: ("0", "1"),
           options.positive_float: ("0.5", "2"), str: ("a.json", "b.json")}


def _sample(action) -> tuple[str, str]:
    """Two valid items for a list option (for a choice, two of its names)."""
    if action.kind in SAMPLES:
        return SAMPLES[action.kind]
    names = action.kind.__closure__[0].cell_contents  # choice_of(*names)
    return names[0], names[-1]


LIST_OPTIONS = [(name, flag) for name in NAMES for flag, a in _options(name).items()
                if isinstance(a, options.ListOf)]


def test_there_are_list_options_in_most_commands():
    """The check below has something to check: list options in at least six commands."""
    assert len({name for name, _ in LIST_OPTIONS}) >= 6


@pytest.mark.parametrize("name, flag", LIST_OPTIONS)
def test_every_list_option_takes_commas_or_spaces_alike(name, flag):
    """`--widths 64,128`, `--widths 64 128` and `--widths 64, 128` give the same tuple, in
    every command and for every list option."""
    action = _options(name)[flag]
    a, b = _sample(action)
    parser = _parser(name)
    forms = [[f"{a},{b}"], [a, b], [f"{a},", b]]
    values = [getattr(parser.parse_args([flag, *form]), action.dest) for form in forms]
    assert values[0] == values[1] == values[2] and len(values[0]) == 2


@pytest.mark.parametrize("name", NAMES)
def test_every_option_with_several_values_is_a_list_option(name):
    """No option takes several values any other way (nargs='+' without `ListOf` would refuse
    commas; a bare string would refuse spaces)."""
    bad = [flag for flag, a in _options(name).items()
           if a.nargs not in (None, 0) and not isinstance(a, options.ListOf)]
    assert bad == []


def _kind(action) -> tuple:
    """What an option takes: a list or one value, checked by which type, from which choices."""
    kind = getattr(action, "kind", None) or action.type
    choices = getattr(kind, "__closure__", None)
    names = choices[0].cell_contents if choices else action.choices
    inits = tuple(n for n in names or () if n != "both")  # "both": the default, spelled out
    return (isinstance(action, options.ListOf), getattr(kind, "__name__", None),
            inits if "zero_B" in inits else None)


def test_an_option_name_means_one_thing_in_every_command():
    """An option shared by several commands takes the same kind of value in each (a list or
    one value, the same type, the same init names): `--seeds` was a count in some commands and
    `*-seeds` a list in others, the toy's `--init` was 1 or 2 where others said zero_B."""
    seen: dict = {}
    for name in NAMES:
        for flag, action in _options(name).items():
            seen.setdefault(flag, {})[name] = _kind(action)
    mixed = {flag: kinds for flag, kinds in seen.items() if len(set(kinds.values())) > 1}
    assert mixed == {}
    plural = sorted(f for f in seen if f.endswith("s") and f[:-1] in seen)
    assert plural == [], "one name per option: --dtype and --dtypes were two"
    counts = [f for f in seen if f.endswith("seeds") and not all(
        isinstance(_options(n)[f], options.ListOf) for n in seen[f])]
    assert counts == ["--n-seeds"], "a name ending in seeds lists seeds; the count is --n-seeds"
