"""`tinylora <command>` (also `python -m tinylora <command>`).

Each command lives in the module that owns its idea; this file only wires them to argparse.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys


def cmd_gradcheck(args) -> int:
    """Every hand-derived gradient against finite differences; exit 1 if any tensor fails."""
    from tinylora import checks
    from tinylora.gradcheck import worst_per_tensor

    results = worst_per_tensor(checks.run_all(args.backend))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=1))
    else:
        for r in results:
            print(r.line())
        n_bad = sum(not r.ok for r in results)
        tols = " or ".join(f"{t:g}" for t in sorted({r.tol for r in results}))  # per case
        print(f"{len(results) - n_bad} of {len(results)} tensors agree with finite differences "
              f"(relative error <= {tols}, float64, backend {args.backend or 'numpy'})")
    return 0 if all(r.ok for r in results) else 1


def _run(module: str):
    """A command: `tinylora.<module>.main(args)`, imported only when that command runs."""

    def run(args) -> int:
        return importlib.import_module(f"tinylora.{module}").main(args)

    return run


COMMANDS = [  # (command, module, help): each module has add_arguments(p) and main(args)
    ("demo", "demo", "the width-scaling demonstration (what `make demo` runs)"),
    ("toy-analytic", "toy_report", "the analytic toy (paper Eq. 2): delta slopes vs theory"),
    ("toy-heatmap", "toy_heatmap", "the numerical toy (Eq. 3, Figure 2): heatmaps of the loss"),
    ("width-sweep", "sweep_report", "the best LoRA+ ratio eta_B*/eta_A* measured across widths"),
    ("coordcheck", "coordcheck", "mup-style coordinate check: delta1/2/3, Z_A, Z_B against width"),
    ("pretrain", "pretrain", "pretrain the TinyLM bases on Shakespeare (cached)"),
    ("finetune", "finetune", "LoRA vs LoRA+ fine-tuning on Milton, across widths"),
    ("bench", "bench", "time a training step against the matmul floor and PyTorch"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinylora", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradcheck", help="check every backward against finite differences")
    p.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of {name, max_rel_error, ok}")
    p.set_defaults(func=cmd_gradcheck)

    for name, module, text in COMMANDS:
        p = sub.add_parser(name, help=text)
        importlib.import_module(f"tinylora.{module}").add_arguments(p)
        p.set_defaults(func=_run(module))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tinylora.allocator import keep_freed_memory

    keep_freed_memory()  # this command owns its process: keep freed memory for the next step
    try:
        return args.func(args)
    except (ValueError, RuntimeError) as err:  # bad input: one clear line, not a traceback
        print(f"tinylora {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
