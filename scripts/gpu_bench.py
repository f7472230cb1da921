"""The GPU benchmark: the CuPy backend, proven on a real GPU (run by gpu_check.sh).

A LoRA MLP training step (forward, backward, Adam on A and B with the LoRA+ groups; batch 1024,
rank 8, float32) at widths 1024, 4096, 16384 on CuPy, against PyTorch CUDA eager with autograd
and torch.optim.Adam on the identical workload and weights, and against the matrix-multiply
floor (the step's bare products) measured in the same run. Every timed call ends with a device
synchronisation, so the clock sees the GPU's work, not just the kernel launches; warm-up first,
interleaved rounds, medians.

    PYTHONPATH=. python scripts/gpu_bench.py [--widths 1024,4096,16384] [--json-out FILE]
    PYTHONPATH=. python scripts/gpu_bench.py --backend numpy --torch-device cpu --widths 256
        (the CPU rehearsal: the same code path without a GPU)
"""

from __future__ import annotations

import argparse
import json
import sys

from tinylora import backend
from tinylora.bench import torch_mirror
from tinylora.bench.timing import time_interleaved
from tinylora.bench.workloads import build_mlp
from tinylora.fast import allocator


def synchronizer(backend_name: str, torch_device: str):
    """A function that waits until every queued GPU kernel (CuPy's and PyTorch's) has finished."""
    waits = []
    if backend_name == "cupy":
        cupy = backend.get_xp("cupy")
        waits.append(lambda: cupy.cuda.Device().synchronize())
    if torch_device.startswith("cuda"):
        import torch  # noqa: PLC0415

        waits.append(torch.cuda.synchronize)
    return lambda: [w() for w in waits]


def bench_width(width, args, sync) -> dict:
    wl = build_mlp(width, args.dtype, backend_name=args.backend, batch=args.batch)
    fns = {"step": wl.step, "floor": wl.floor}
    have_torch, version = torch_mirror.available()
    if have_torch and not args.no_torch:
        fns["torch"], _ = torch_mirror.mlp_step(wl, device=args.torch_device)
    timed = {k: (lambda f=f: (f(), sync())) for k, f in fns.items()}  # the clock sees the GPU
    ms = {k: 1e3 * v for k, v in time_interleaved(timed, args.rounds, args.inner, 3).items()}
    torch_ms = ms.get("torch")
    return {"workload": "mlp", "width": width, "batch": args.batch, "dtype": args.dtype,
            "backend": args.backend, "step_ms": ms["step"], "floor_ms": ms["floor"],
            "torch_ms": torch_ms, "ratio_floor": ms["step"] / ms["floor"],
            "ratio_torch": None if torch_ms is None else ms["step"] / torch_ms,
            "torch": version if have_torch else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["cupy", "numpy"], default="cupy")
    p.add_argument("--torch-device", default="cuda")
    p.add_argument("--widths", default="1024,4096,16384")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--inner", type=int, default=4)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    ok, reason = backend.cupy_available()
    if args.backend == "cupy" and not ok:
        print(f"gpu_bench: skipped, no GPU here ({reason})")
        return 0
    allocator.keep_freed_memory()  # as the tinylora command does (matters on the CPU)
    sync = synchronizer(args.backend, args.torch_device)
    rows = [bench_width(int(w), args, sync) for w in args.widths.split(",")]
    print("| width | step ms | floor ms | torch ms | step/floor | step/torch |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        t = "-" if r["torch_ms"] is None else f"{r['torch_ms']:.3f}"
        rt = "-" if r["ratio_torch"] is None else f"{r['ratio_torch']:.2f}"
        print(f"| {r['width']} | {r['step_ms']:.3f} | {r['floor_ms']:.3f} | {t} "
              f"| {r['ratio_floor']:.2f} | {rt} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
