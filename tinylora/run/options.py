"""Types for the commands' options: each turns the text typed on the command line into a checked
value, or into argparse's own error (``tinylora <command>: error: argument --seeds: expected an
integer >= 1, got '0'``, exit code 2, no traceback).

    parser.add_argument("--steps", type=options.positive_int, default=None)
    parser.add_argument("--widths", type=int, nargs="+", action=options.Distinct)
    parser.add_argument("--out", type=options.out_folder, default="width-sweep-out")

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
import os
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


def out_folder(text: str) -> str:
    """A folder the command can write into: an existing writable folder, or a path whose
    nearest existing parent is one (the folder is made when the command writes)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a folder, got {text!r}, which is a file")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(
            f"expected a folder, got {text!r}: {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"expected a writable folder, got {text!r}: {str(existing)!r} is not writable")
    return text


class Distinct(argparse.Action):
    """For ``nargs="+"``: the values must all differ (``--widths 64 64`` would give two
    identical rows)."""

    def __call__(self, parser, namespace, values, option_string=None):
        twice = sorted({v for v in values if list(values).count(v) > 1})
        if twice:
            parser.error(f"argument {option_string}: expected distinct values, got "
                         f"{' '.join(map(str, values))} ({', '.join(map(str, twice))} twice)")
        setattr(namespace, self.dest, list(values))


def options_from_args(cls, args: argparse.Namespace):
    """The options dataclass `cls` of a command, its fields read by name from the Namespace its
    parser gave (the Namespace's other attributes, such as ``command`` and ``func``, are left)."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def parse_list(text, kind=int, name: str = "--widths") -> tuple | None:
    """'64,128,256' -> (64, 128, 256); None stays None (the command's default)."""
    if text is None:
        return None
    try:
        values = tuple(kind(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError as err:
        raise ValueError(f"{name}: expected a comma-separated list, got {text!r}") from err
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{name}: expected positive values, got {text!r}")
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"{name}: expected distinct values, got {text!r} "
                         f"({', '.join(map(str, twice))} twice)")
    return values


@dataclasses.dataclass(frozen=True)
class CommonOptions:
    """The options every experiment command shares (`add_common_arguments` defines them on the
    CLI); a command's options dataclass extends it and sets its own ``out``."""

    out: str = "out"  # results folder
    backend: str | None = None  # "numpy" or "cupy"; None: the default backend
    dtype: str = "float64"  # "float64" or "float32"
    seeds: int | None = None  # number of seeds; None: the command's default
    widths: str | None = None  # comma-separated widths, e.g. "64,256,1024"; None: the default
    fast: bool = False  # a small run that takes seconds
    no_progress: bool = False  # no progress bars


def add_common_arguments(parser, out: str, seeds: int) -> None:
    """The options every experiment command shares (`CommonOptions`)."""
    parser.add_argument("--out", type=out_folder, default=out,
                        help=f"results folder (default {out})")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help=f"number of seeds (default {seeds})")
    parser.add_argument("--widths", default=None, help="comma-separated widths, e.g. 64,256,1024")
    parser.add_argument("--fast", action="store_true", help="a small run that takes seconds")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
