"""`tinylora <command>` (also `python -m tinylora <command>`).

Each command lives in the module that owns its idea; this file only wires them to argparse.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from typing import NamedTuple

import tinylora.fast
from tinylora.fast.allocator import keep_freed_memory
from tinylora.gradcheck import worst_per_tensor
from tinylora.run import checks


def cmd_gradcheck(args) -> int:
    """Every hand-derived gradient against finite differences, with the reference and with the
    fast implementations (each tensor once per implementation); exit 1 if any tensor fails."""
    rows = []  # (implementation, Result)
    for implementation in ("reference", "fast"):
        with tinylora.fast.enabled(implementation == "fast"):
            rows += [(implementation, r) for r in worst_per_tensor(checks.run_all(args.backend))]
    if args.json:
        print(json.dumps([{"implementation": i, **r.as_dict()} for i, r in rows], indent=1))
    else:
        for i, r in rows:
            print(f"{r.line()}  ({i})")
        n_bad = sum(not r.ok for _, r in rows)
        tols = " or ".join(f"{t:g}" for t in sorted({r.tol for _, r in rows}))  # per case
        print(f"{len(rows) - n_bad} of {len(rows)} tensors agree with finite differences "
              f"(relative error <= {tols}, float64, backend {args.backend or 'numpy'}; each "
              f"tensor with the reference and with the fast implementations)")
    return 0 if all(r.ok for _, r in rows) else 1


class Command(NamedTuple):
    """One row of the CLI: `tinylora <name>` runs ``tinylora.<module>``, whose
    ``add_arguments(parser)`` defines its options and ``main(args)`` runs it (building the command's
    options dataclass and calling its ``execute(options)``). `resumable`: a rerun reuses the
    finished parts in --out."""

    name: str
    module: str
    help: str
    resumable: bool


COMMANDS = [
    Command("demo", "lab.demo", "the width-scaling demonstration (what `make demo` runs)", True),
    Command("toy-analytic", "lab.analytic_toy_report",
            "the analytic toy (paper Eq. 2): delta slopes vs theory", True),
    Command("toy-heatmap", "lab.figure2", "the numerical toy (Eq. 3, Figure 2): loss heatmaps",
            True),
    Command("width-sweep", "lab.sweep_report",
            "the loss-optimal rates eta_A*, eta_B* across widths", True),
    Command("balance", "lab.balance_report",
            "the rates where A and B move a LoRA layer alike, vs width", True),
    Command("coordcheck", "lab.coordcheck",
            "mup-style coordinate check: delta1/2/3, Z_A, Z_B vs width", True),
    Command("pretrain", "text.pretrain", "pretrain the TinyLM bases on Shakespeare (cached)", True),
    Command("finetune", "text.study",
            "the best LoRA+ ratio fine-tuning on Milton, per width and init", True),
    Command("finetune-ladder", "text.ladder_command",
            "does LoRA+ help on real text as d_model grows? (stacked runs)", True),
    Command("bench", "bench.run", "time a training step against the matmul floor and PyTorch",
            False),
]


def command_module(module: str):
    """`tinylora.<module>`, imported by name when its command runs (the library itself never
    imports the lab, text or bench packages: `tests/test_layout.py` pins it)."""
    return importlib.import_module(f"tinylora.{module}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser. Every command is listed; only `command`'s module is imported, for its options."""
    parser = argparse.ArgumentParser(prog="tinylora", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gradcheck = sub.add_parser("gradcheck", help="check every backward against finite differences")
    gradcheck.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    gradcheck.add_argument("--json", action="store_true",
                           help="print a JSON list of {name, max_rel_error, ok}")
    gradcheck.set_defaults(func=cmd_gradcheck)

    for row in COMMANDS:
        command_parser = sub.add_parser(row.name, help=row.help)
        if row.name == command:
            mod = command_module(row.module)
            mod.add_arguments(command_parser)
            command_parser.set_defaults(func=mod.main)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    keep_freed_memory()  # this command owns its process: keep freed memory for the next step
    shown, warnings.formatwarning = warnings.formatwarning, _one_line  # warnings: one line
    try:
        with tinylora.fast.enabled():  # every command runs the fast implementations
            return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: say what survives and how to go on, not a traceback
        print(f"tinylora {args.command}: interrupted; {_kept(args)}", file=sys.stderr)
        return 130
    except (NotImplementedError, RecursionError):  # RuntimeErrors that are bugs: a traceback
        raise
    except (ValueError, RuntimeError, OSError) as err:  # bad input, a backend, a file: one line
        print(f"tinylora {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = shown


def _one_line(message, category, filename, lineno, line=None) -> str:
    return f"tinylora: {category.__name__}: {message}\n"


def _kept(args) -> str:
    """What an interrupted command keeps, and how to resume it."""
    out = getattr(args, "out", None)
    if any(row.name == args.command and row.resumable for row in COMMANDS) and out:
        return (f"the work it had finished is kept in {out}/ (and, for the text commands, the "
                f"base cache); run the same command again to resume from there")
    return "it keeps no partial results; run it again to start over"


if __name__ == "__main__":
    sys.exit(main())
