"""The GPU benchmark: tinylora's CuPy step against PyTorch CUDA eager, in one run (gpu_check.sh).

Three workloads, float32, each at its widths, built once from the same weights and data for
every contender (`tinylora.bench.workloads`, `tinylora.bench.torch_mirror`):

    mlp     LoRA MLP width -> width -> width, batch 1024, rank 8       widths 1024, 4096, 16384
    block   Transformer block d_model = width, x (8, 128, width)       widths 256, 1024
    tinylm  TinyLM fine-tuning (2 layers), a 16 x 64 batch of tokens   d_model 128 .. 2048

Contenders, interleaved, medians, each timed call ended by a device synchronisation (so the
clock sees the GPU's work, not only the launches): "step", the library's training step in fast
mode (`tinylora.fast`: the CUDA kernels, the update decided on the device); "reference", the
same step with fast mode off (the plain code); "floor", the step's bare matrix products; "torch",
PyTorch CUDA eager with autograd and torch.optim.Adam; with --graph, "graph", the fast step
captured once as a CUDA graph and replayed (`tinylora.bench.graph`: timing only). The targets
step <= 1.0 x torch for mlp and block. With --profile, each part of a fast step is
also timed alone, host time against device time (cupyx.profiler.benchmark): equal times mean
the launches, not the GPU, set the pace.

    PYTHONPATH=. python scripts/gpu_bench.py [--graph] [--profile] [--json-out FILE]
    PYTHONPATH=. python scripts/gpu_bench.py --backend numpy --torch-device cpu \\
        --mlp-widths 128 --block-widths 64 --tinylm-widths 64 --profile   (the CPU rehearsal)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import tinylora.fast
from tinylora import backend
from tinylora.bench import torch_mirror
from tinylora.bench.timing import time_interleaved
from tinylora.bench.workloads import build_block, build_mlp, build_tinylm
from tinylora.fast import allocator
from tinylora.train import loss_and_grads

TARGET = {"mlp": 1.0, "block": 1.0}  # step / torch at most this; tinylm: reported


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


def build(name: str, width: int, args):
    if name == "mlp":
        return build_mlp(width, args.dtype, backend_name=args.backend, batch=args.batch)
    return {"block": build_block, "tinylm": build_tinylm}[name](width, args.dtype,
                                                               backend_name=args.backend)


def in_mode(fast: bool, fn):
    """fn run with fast mode on or off (switched between steps, never inside one)."""
    def call():
        with tinylora.fast.enabled(fast):
            return fn()
    return call


def bench_row(wl, args, sync) -> dict:
    """One workload at one width: every contender, interleaved, synchronised."""
    name, width = wl.name, wl.width
    fns = {"step": in_mode(True, wl.step), "reference": in_mode(False, wl.step),
           "floor": wl.floor}
    have_torch, version = torch_mirror.available()
    if have_torch and not args.no_torch:
        if args.torch_device == "cpu":
            torch_mirror.match_threads()  # the CPU rehearsal: NumPy's BLAS threads for both
        fns["torch"], _ = torch_mirror.MIRRORS[name](wl, device=args.torch_device)
    if args.graph and args.backend == "cupy" and name != "tinylm":  # TinyLM reads its tokens
        from tinylora.bench.graph import capture  # noqa: PLC0415

        fns["graph"] = capture(in_mode(True, wl.step))
    timed = {k: (lambda f=f: (f(), sync())) for k, f in fns.items()}  # the clock sees the GPU
    ms = {k: 1e3 * v for k, v in time_interleaved(timed, args.rounds, args.inner, 3).items()}
    with tinylora.fast.enabled():
        wl.opt.settle()  # a refused step would be an error here, not a silent timing
    torch_ms = ms.get("torch")
    ratio = None if torch_ms is None else ms["step"] / torch_ms
    target = TARGET.get(name) if args.backend == "cupy" else None  # the targets are a GPU's
    return {"workload": name, "width": width, "dtype": args.dtype, "backend": args.backend,
            "step_ms": ms["step"], "reference_ms": ms["reference"], "floor_ms": ms["floor"],
            "torch_ms": torch_ms, "graph_ms": ms.get("graph"),
            "ratio_floor": ms["step"] / ms["floor"], "ratio_torch": ratio, "target": target,
            "met": None if ratio is None or target is None else ratio <= target,
            "torch": version if have_torch else None}


def profile_rows(wl, args, sync) -> list:
    """Each part of one fast step timed alone: host (CPU) time and device time, medians."""
    name, width, model, opt, x, y = wl.name, wl.width, wl.model, wl.opt, wl.x, wl.y
    loss = "cross_entropy" if name == "tinylm" else "mse"
    with tinylora.fast.enabled():
        _, grads = loss_and_grads(model, x, y, loss)
        parts = {"step": wl.step, "floor": wl.floor, "forward": lambda: model.forward(x),
                 "loss_and_grads": lambda: loss_and_grads(model, x, y, loss),
                 "opt.step": lambda: opt.step(grads), "opt.settle": opt.settle}
        rows = [{"workload": name, "width": width, "part": part, **host_and_device(fn, args, sync)}
                for part, fn in parts.items()]
        opt.settle()
    return rows


def host_and_device(fn, args, sync) -> dict:
    """{"cpu_ms", "gpu_ms"}: CuPy's benchmark (host time of the call, device time between
    events) on a GPU; on the host, the wall time after a sync for both."""
    if args.backend == "cupy":
        from cupyx.profiler import benchmark  # noqa: PLC0415

        res = benchmark(fn, n_repeat=args.rounds * args.inner, n_warmup=3)
        return {"cpu_ms": 1e3 * float(statistics.median(res.cpu_times)),
                "gpu_ms": 1e3 * float(statistics.median(res.gpu_times[0]))}
    times = []
    for _ in range(3 + args.rounds * args.inner):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    ms = 1e3 * statistics.median(times[3:])
    return {"cpu_ms": ms, "gpu_ms": None}


HEADER = ("| workload | width | step ms | reference ms | floor ms | torch ms | graph ms "
          "| step/torch | target | step/floor |\n|---|---|---|---|---|---|---|---|---|---|")


def table_row(r: dict) -> str:
    def f(v, fmt=".3f"):
        return "-" if v is None else format(v, fmt)

    target = "-" if r["target"] is None else (
        f"<= {r['target']:g}: {'met' if r['met'] else 'missed'}" if r["met"] is not None
        else f"<= {r['target']:g}")
    return (f"| {r['workload']} | {r['width']} | {f(r['step_ms'])} | {f(r['reference_ms'])} | "
            f"{f(r['floor_ms'])} | {f(r['torch_ms'])} | {f(r['graph_ms'])} | "
            f"{f(r['ratio_torch'], '.2f')} | {target} | {r['ratio_floor']:.2f} |")


def part_line(r: dict) -> str:
    gpu = "" if r["gpu_ms"] is None else f"  gpu {r['gpu_ms']:8.3f} ms"
    return f"{r['workload']:7s}{r['width']:6d} {r['part']:16s} cpu {r['cpu_ms']:8.3f} ms{gpu}"


def widths(text: str) -> list:
    return [int(w) for w in text.split(",") if w]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["cupy", "numpy"], default="cupy")
    p.add_argument("--torch-device", default="cuda")
    p.add_argument("--workloads", default="mlp,block,tinylm")
    p.add_argument("--mlp-widths", default="1024,4096,16384")
    p.add_argument("--block-widths", default="256,1024")
    p.add_argument("--tinylm-widths", default="128,256,512,1024,2048")
    p.add_argument("--batch", type=int, default=1024, help="the MLP's rows")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--inner", type=int, default=4)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--graph", action="store_true", help="also time the step as a CUDA graph")
    p.add_argument("--profile", action="store_true", help="also time each part of a step")
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    ok, reason = backend.cupy_available()
    if args.backend == "cupy" and not ok:
        print(f"gpu_bench: skipped, no GPU here ({reason})")
        return 0
    allocator.keep_freed_memory()  # as the tinylora command does (matters on the CPU)
    sync = synchronizer(args.backend, "none" if args.no_torch else args.torch_device)
    plan = [(name, w) for name in args.workloads.split(",")
            for w in widths(getattr(args, f"{name}_widths"))]
    rows, parts = [], []
    print(HEADER, flush=True)
    for name, width in plan:  # each row printed, and the JSON written, as soon as it is done
        wl = build(name, width, args)
        rows.append(bench_row(wl, args, sync))
        print(table_row(rows[-1]), flush=True)
        if args.profile:
            parts += profile_rows(wl, args, sync)
        del wl  # its arrays go before the next workload's
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump({"rows": rows, "profile": parts}, f, indent=1)
    if parts:
        print("\nEach part of a fast step alone (host time; device time on a GPU):")
        print("\n".join(part_line(r) for r in parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
