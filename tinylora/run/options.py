"""Types for the commands' options: each turns the text typed on the command line into a checked
value, or into argparse's own error (``tinylora <command>: error: argument --seeds: expected an
integer >= 1, got '0'``, exit code 2, no traceback).

    parser.add_argument("--steps", type=options.positive_int, default=None)
    parser.add_argument("--widths", action=options.ListOf, kind=options.positive_int)
    parser.add_argument("--out", type=options.out_folder, default="width-sweep-out")

Every list option has one syntax: items separated by commas, spaces or both (``--widths 64,128``
and ``--widths 64 128`` are the same), each checked by its type, all distinct.

A default of None means "the command's default"; commands read it as
``DEFAULT if args.x is None else args.x``, never ``args.x or DEFAULT`` (which turns 0 into the
default instead of refusing it).

Each command keeps its options in a frozen dataclass (one field per option, the same defaults);
`options_from_args` builds it from the parsed Namespace, and code that runs a command directly
(the demo, a lesson) constructs the dataclass itself: ``execute(SweepOptions(fast=True))``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path


def _integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """'3' -> 3; '0', '-5', '2.5', 'x' -> an argparse error saying what was expected."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """'0' -> 0 (a seed, say); '-1', '2.5', 'x' -> an argparse error."""
    return _integer(text, 0)


def positive_float(text: str) -> float:
    """'1e-3' -> 0.001; '0', '-1', 'nan', 'inf', 'x' -> an argparse error."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def choice_of(*names: str):
    """An argparse type accepting one of `names`: 'x' -> an error listing them."""
    def choice(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(names)}, got {text!r}")
        return text
    return choice


def out_folder(text: str) -> str:
    """A folder the command can write into: an existing writable folder, or a path whose
    nearest existing parent is one (the folder is made when the command writes). Writability
    is tried, not read from the permission bits: a temporary file is made and removed in the
    nearest existing folder (root ignores the bits; a read-only disk does not)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a folder, got {text!r}, which is a file")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(
            f"expected a folder, got {text!r}: {str(existing)!r} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise argparse.ArgumentTypeError(
            f"expected a writable folder, got {text!r}: {str(existing)!r} is not writable "
            f"({err.strerror or err})") from None
    return text


def _items(value, kind) -> tuple:
    """'64,128', '64 128', ['64,', '128'] or (64, 128) -> (64, 128): split on commas and
    spaces, each item through `kind` (an argparse type), all distinct."""
    texts = [value] if isinstance(value, str) else [str(v) for v in value]
    items = tuple(kind(t) for text in texts for t in text.replace(",", " ").split())
    if not items:
        raise argparse.ArgumentTypeError(f"expected at least one value, got {value!r}")
    twice = sorted({v for v in items if items.count(v) > 1}, key=str)
    if twice:
        raise argparse.ArgumentTypeError(
            f"expected distinct values, got {' '.join(map(str, items))} "
            f"({', '.join(map(str, twice))} twice)")
    return items


class ListOf(argparse.Action):
    """A list option (``nargs="+"``): ``--widths 64,128`` or ``--widths 64 128`` -> (64, 128),
    each item checked by ``kind=`` (an argparse type such as `positive_int` or `choice_of`)."""

    def __init__(self, option_strings, dest, kind=None, **kwargs):
        kwargs.setdefault("metavar", dest.upper().removesuffix("S"))  # --widths WIDTH [WIDTH ...]
        super().__init__(option_strings, dest, nargs="+", **kwargs)
        self.kind = kind or positive_int

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, _items(values, self.kind))
        except argparse.ArgumentTypeError as err:
            parser.error(f"argument {option_string}: {err}")


def options_from_args(cls, args: argparse.Namespace):
    """The options dataclass `cls` of a command, its fields read by name from the Namespace its
    parser gave (the Namespace's other attributes, such as ``command`` and ``func``, are left)."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def parse_list(value, kind=None, name: str = "--widths") -> tuple | None:
    """A list option's value as a tuple, for code that builds the options itself: a tuple from
    the CLI (`ListOf`) or a string '64,128' / '64 128'; None stays None (the default). Bad items
    raise ValueError naming `name`: ``--widths: expected an integer >= 1, got '64.5'``."""
    if value is None:
        return None
    try:
        return _items(value, kind or positive_int)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"{name}: {err}") from None


@dataclasses.dataclass(frozen=True)
class CommonOptions:
    """The options every experiment command shares (`add_common_arguments` defines them on the
    CLI); a command's options dataclass extends it and sets its own ``out``."""

    out: str = "out"  # results folder
    backend: str | None = None  # "numpy" or "cupy"; None: the default backend
    dtype: str = "float64"  # "float64" or "float32"
    n_seeds: int | None = None  # how many seeds; None: the command's default
    widths: tuple | str | None = None  # e.g. (64, 256, 1024) or "64,256,1024"; None: the default
    fast: bool = False  # a small run that takes seconds
    no_progress: bool = False  # no progress bars


def add_common_arguments(parser, out: str, n_seeds: int) -> None:
    """The options every experiment command shares (`CommonOptions`)."""
    parser.add_argument("--out", type=out_folder, default=out,
                        help=f"results folder (default {out})")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--n-seeds", type=positive_int, default=None,
                        help=f"how many seeds (default {n_seeds})")
    parser.add_argument("--widths", action=ListOf, kind=positive_int, default=None,
                        help="widths, e.g. 64,256,1024 or 64 256 1024")
    parser.add_argument("--fast", action="store_true", help="a small run that takes seconds")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
