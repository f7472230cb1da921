"""The bare matrix products of each bench workload (its floor), in NumPy and in PyTorch.

`tinylora bench` sets a step against its floor and against PyTorch's whole step. Where PyTorch
wins, is it the products or the rest? This times the floor's products (same shapes, dtype,
transposes) with both libraries, interleaved as the bench does, one thread each:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/torch_floor.py [--widths ...]

It prints one row per workload and width: NumPy's floor, PyTorch's floor and their ratio.
"""

from __future__ import annotations

import argparse

from tinylora import backend
from tinylora.bench import torch_mirror
from tinylora.bench.timing import time_interleaved
from tinylora.bench.workloads import BUILDERS, PRODUCTS, WIDTHS
from tinylora.fast import allocator
from tinylora.run.records import markdown_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", nargs="+", choices=sorted(PRODUCTS), default=["mlp", "block"])
    p.add_argument("--widths", type=int, nargs="+", default=None)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = p.parse_args()
    ok, why = torch_mirror.available()
    if not ok:
        raise SystemExit(why)
    allocator.keep_freed_memory()
    rows = []
    for name in args.workloads:
        for n in args.widths or WIDTHS[name]:
            wl = BUILDERS[name](n, args.dtype)
            products = PRODUCTS[name](wl.model, wl.x)
            fns = {"numpy": wl.floor, "torch": torch_mirror.torch_floor(products, args.dtype)}
            med = time_interleaved(fns, rounds=8, inner=3, warmup=2)
            rows.append([name, n, f"{1e3 * med['numpy']:.3f}", f"{1e3 * med['torch']:.3f}",
                         f"{med['numpy'] / med['torch']:.2f}"])
    print(markdown_table(["workload", "width", "numpy floor ms", "torch floor ms",
                          "numpy/torch"], rows))
    print(f"\nNumPy {backend.get_xp('numpy').__version__}, PyTorch {why}, "
          f"{torch_mirror.threads()} PyTorch threads, {args.dtype}.")


if __name__ == "__main__":
    main()
