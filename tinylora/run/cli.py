"""`tinylora <command>` (also `python -m tinylora.run <command>`).

Each command lives in the module that owns its idea; this file only wires them to argparse.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import tinylora
import tinylora.fast
from tinylora.fast.allocator import keep_freed_memory
from tinylora.gradcheck import catalogue, worst_per_tensor
from tinylora.run import printout


def cmd_gradcheck(args) -> int:
    """Every hand-derived gradient against finite differences, with the reference and with the
    fast implementations (each tensor once per implementation); exit 1 if any tensor fails."""
    rows = []  # (implementation, Result)
    for implementation in ("reference", "fast"):
        with tinylora.fast.enabled(implementation == "fast"):
            rows += [(implementation, r) for r in worst_per_tensor(catalogue.run_all(args.backend))]
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
    options dataclass and calling its ``execute(options)``). `help`: its line in ``tinylora
    --help``; `about`: the paragraph its own ``--help`` opens with, with its usual run time.
    `resumable`: a rerun reuses the finished parts in --out."""

    name: str
    module: str
    help: str
    about: str
    resumable: bool


GRADCHECK_ABOUT = (
    "Checks every hand-derived backward pass against centred finite differences in float64, once "
    "with the reference implementations and once with the fast ones; exit status 1 if any tensor "
    "disagrees. About 1 s here.")
COMMANDS = [
    Command("demo", "lab.demo", "the width-scaling demonstration (what `make demo` runs)",
            "What `make demo` runs: the analytic toy, the balanced rates at six widths and a fast "
            "loss-optimal width sweep (each against its own prediction), a fast coordinate check "
            "and the batched grid's speed-up; writes demo-out/ and prints the headline. About "
            "20 to 60 s here.", True),
    Command("toy-analytic", "lab.analytic_toy_report",
            "the analytic toy (paper Eq. 2): delta slopes vs theory",
            "The paper's analytic toy (Eq. 2), f(x) = (W* + b a^T) x, trained a few steps at "
            "widths 2^4..2^16: the log-log slopes of delta1, delta2, delta3 against the width, set "
            "against the exact theory, for four learning-rate schedules. About 5 s here.", True),
    Command("toy-heatmap", "lab.figure2", "the numerical toy (Eq. 3, Figure 2): loss heatmaps",
            "The paper's Figure 2: the numerical toy (Eq. 3) trained at every cell of an (eta_A, "
            "eta_B) grid at n = 100, in three settings (the printed setup with gradient descent, "
            "a frozen middle weight with gradient descent and with Adam); loss heatmaps and where "
            "the best cell lies. About 3.5 min here.", True),
    Command("width-sweep", "lab.sweep_report",
            "the loss-optimal rates eta_A*, eta_B* across widths",
            "The loss-optimal rates eta_A*, eta_B* of the fine-tuning toy at widths 2^6..2^12: a "
            "window of the rate grid per width, grown until the best cell is inside, the optimum "
            "located by a quadratic fit with bootstrap intervals; their exponents against the "
            "prediction for the readout, and LoRA against LoRA+ on held-out seeds. About 6 min "
            "here.", True),
    Command("balance", "lab.balance_report",
            "the rates where A and B move a LoRA layer alike, vs width",
            "The balanced rates: where A's and B's updates move a LoRA layer's output by the same "
            "small amount c at step t, found by a root search at each width, and their exponents "
            "against the prediction. About 9 min here with --model toy, 3 min with mlp or "
            "block.", True),
    Command("coordcheck", "lab.coordcheck",
            "mup-style coordinate check: delta1/2/3, Z_A, Z_B vs width",
            "A muP-style coordinate check of a LoRA MLP or Transformer block: the RMS of delta1, "
            "delta2, delta3, Z_A and Z_B against the width, for a shared rate, LoRA+ at ratio 16 "
            "and the theory's eta_A ~ 1/n. About 20 s here with --model mlp, 45 s with "
            "block.", True),
    Command("pretrain", "text.pretrain_report", "pretrain the TinyLM bases on Shakespeare (cached)",
            "Pretrains the TinyLM bases on Shakespeare, one per d_model, and caches them (a base "
            "whose configuration matches is reused, not retrained). About 5 min here (8 min on a "
            "busy machine).", True),
    Command("finetune", "text.study",
            "the best LoRA+ ratio fine-tuning on Milton, per width and init",
            "The fine-tuning study: the best LoRA+ ratio per width and init (Init[1], Init[2]) "
            "on Milton, every rate tuned on some seeds and every reported number measured on "
            "others, with full fine-tuning and a rank sweep as baselines; it resumes run by run. "
            "About 78 min of runs here (--jobs 2 runs two at a time).", True),
    Command("finetune-ladder", "text.ladder_command",
            "does LoRA+ help on real text as d_model grows? (stacked runs)",
            "The ladder: at each d_model, muP-rate bases fine-tuned with LoRA on Milton, every "
            "ratio's learning rate tuned on two seeds and measured on four others, many runs in "
            "one stacked pass; the bootstrap redoes the choices. About 35 min of runs here for "
            "d_model 128 and its 64-token control; d_model 256 takes hours (--time-limit stops "
            "it and a rerun resumes).", True),
    Command("bench", "bench.run", "time a training step against the matmul floor and PyTorch",
            "Times one training step against the bare matrix products it cannot avoid and "
            "against PyTorch, interleaved, per workload, width and dtype. A few minutes here; "
            "--quick under one.", False),
]
DESCRIPTION = ("LoRA and LoRA+ in pure NumPy: the experiments behind the project's results. "
               "`tinylora <command> --help` says what a command does and how long it takes; "
               "`python -m tinylora.run` is the same program.")
EPILOG = ("Exit status: 0 done, 1 the run failed (or gradcheck found a disagreement), 2 bad "
          "usage, 3 stopped at finetune-ladder's --time-limit (a rerun resumes), 130 "
          "interrupted (Ctrl-C; a resumable command keeps what it finished). Run times are "
          "those on the 2-core machine the project is measured on.")


class Formatter(argparse.HelpFormatter):
    """argparse's help, wrapped to the terminal but never wider than 100 columns."""

    def __init__(self, prog):
        super().__init__(prog, width=min(100, shutil.get_terminal_size().columns - 2))


def command_module(module: str):
    """`tinylora.<module>`, imported by name when its command runs (the library itself never
    imports the lab, text or bench packages: `tests/test_layout.py` pins it)."""
    return importlib.import_module(f"tinylora.{module}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser. Every command is listed; only `command`'s module is imported, for its options."""
    parser = argparse.ArgumentParser(prog="tinylora", description=DESCRIPTION,
                                     epilog=EPILOG, formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"tinylora {tinylora.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    gradcheck = sub.add_parser("gradcheck", description=GRADCHECK_ABOUT, epilog=EPILOG,
                               formatter_class=Formatter,
                               help="check every backward against finite differences")
    gradcheck.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    gradcheck.add_argument("--json", action="store_true",
                           help="print a JSON list of {name, max_rel_error, ok}")
    gradcheck.set_defaults(func=cmd_gradcheck)

    for row in COMMANDS:
        command_parser = sub.add_parser(row.name, help=row.help, description=row.about,
                                        epilog=EPILOG, formatter_class=Formatter)
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
    stdout = sys.stdout
    sys.stdout = printout.Fitted(stdout)  # tables aligned, lines within 100 columns
    try:
        with tinylora.fast.enabled():  # every command runs the fast implementations
            return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: say what survives and how to go on, not a traceback
        print(f"tinylora {args.command}: interrupted; {_kept(args)}", file=sys.stderr)
        return 130
    except (NotImplementedError, RecursionError):  # RuntimeErrors that are bugs: a traceback
        raise
    except ValueError as err:  # bad input (an option's value, a folder of another run): usage
        print(f"tinylora {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as err:  # the run failed (a divergence, a backend, a file)
        print(f"tinylora {args.command}: error: {_in_out(err, args)}", file=sys.stderr)
        return 1
    except MemoryError as err:  # a failed run outside a part (`tinylora.run.memory`): one line
        said = " ".join(str(err).split()) or type(err).__name__
        print(f"tinylora {args.command}: error: out of memory: {said}; {_kept(args)}",
              file=sys.stderr)
        return 1
    finally:
        if isinstance(sys.stdout, printout.Fitted):
            sys.stdout.finish()
            sys.stdout = stdout
        warnings.formatwarning = shown


def _one_line(message, category, filename, lineno, line=None) -> str:
    return f"tinylora: {category.__name__}: {message}\n"


def _in_out(err, args) -> str:
    """An OSError on a file inside --out says so (the path alone does not name the option)."""
    out, name = getattr(args, "out", None), getattr(err, "filename", None)
    if out and name and Path(os.path.abspath(name)).is_relative_to(os.path.abspath(out)):
        return f"cannot write into --out {out!r}: {err}"
    return str(err)


def _kept(args) -> str:
    """What an interrupted command keeps, and how to resume it."""
    out = getattr(args, "out", None)
    if any(row.name == args.command and row.resumable for row in COMMANDS) and out:
        return (f"the work it had finished is kept in {out}/ (and, for the text commands, the "
                f"base cache); run the same command again to resume from there")
    return "it keeps no partial results; run it again to start over"


if __name__ == "__main__":
    sys.exit(main())
