"""Two source trees of tinylora, benchmarked in alternation on one machine: did a change cost speed?

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python scripts/bench_trees.py OLD_TREE NEW_TREE \
        --rounds 3 --out DIR

Each round runs `tinylora bench --quick --dtype float32 --no-torch --json` once in
each tree (its own source, through the working directory), old then new, so that a machine that
gets busier or quieter slows both alike. Per (workload, width) it prints the median over rounds
of each tree's step/floor and their ratio new/old, and, where the new tree times it, the
reference implementations' step/floor (the price of reading). With ``--out`` the raw rows of
every round go to DIR/rounds.json and the table to DIR/summary.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = ["bench", "--quick", "--dtype", "float32", "--no-torch", "--json",
         "--no-progress"]


def bench(tree: Path, workloads: list[str]) -> list[dict]:
    """One `tinylora bench` run from `tree` (its directory first on the path): the command is
    `python -m tinylora.run`, or `python -m tinylora` in a tree from before it moved there."""
    moved = (tree / "tinylora" / "run" / "__main__.py").exists()
    command = "tinylora.run" if moved else "tinylora"
    out = subprocess.run([sys.executable, "-m", command, *BENCH, "--workloads", *workloads],
                         cwd=tree,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def summary_table(rounds: list[dict]) -> str:
    """The Markdown table of `rounds` (as written to rounds.json): per (workload, width) the
    median over rounds of each tree's step/floor, new/old, and the new tree's reference
    step/floor."""
    keys = [(r["workload"], r["width"]) for r in rounds[0]["rows"]]

    def median(tree, key, field="ratio_floor"):
        values = [r[field] for rd in rounds if rd["tree"] == tree for r in rd["rows"]
                  if (r["workload"], r["width"]) == key and r.get(field) is not None]
        return statistics.median(values) if values else None

    lines = ["| workload | width | old step/floor | new step/floor | new/old | "
             "reference step/floor (new tree) |", "|---|---|---|---|---|---|"]
    for key in keys:
        old, new, ref = median("old", key), median("new", key), median("new", key,
                                                                        "ratio_reference_floor")
        ref_text = "-" if ref is None else f"{ref:.2f}"
        lines.append(f"| {key[0]} | {key[1]} | {old:.3f} | {new:.3f} | {new / old:.3f} | "
                     f"{ref_text} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["mlp", "block"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rounds = []
    for i in range(args.rounds):
        for name, tree in (("old", args.old), ("new", args.new)):
            rows = bench(tree, args.workloads)
            rounds.append({"round": i, "tree": name, "rows": rows})
            print(f"round {i + 1}/{args.rounds} {name}: " + ", ".join(
                f"{r['workload']}{r['width']} {r['ratio_floor']:.3f}" for r in rows),
                file=sys.stderr)
    table = summary_table(rounds)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "rounds.json").write_text(json.dumps(rounds, indent=1))
        (args.out / "summary.md").write_text(
            f"Medians over {args.rounds} alternating rounds; trees: old = {args.old}, "
            f"new = {args.new}.\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
