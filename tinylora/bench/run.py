"""`tinylora bench`: how close is a LoRA training step to the matrix products it cannot avoid?

For each workload (`tinylora.bench.workloads`), width and dtype it times, in one run and
interleaved so that a busy machine slows every contender alike:

    step       one library training step (forward, loss, backward, Adam on A and B), with the
               fast implementations on (`tinylora.fast`), as the commands run it
    reference  the same step with the reference implementations (the code a student reads):
               the price of reading
    floor      the bare matrix products of that step (for "grid": the same cells one by one)
    torch      PyTorch CPU eager + autograd + torch.optim.Adam on the same weights and data

and reports medians after a warm-up, the ratios step/floor and step/torch, and the peak memory
that one step allocates (NumPy reports its allocations to `tracemalloc`). The numbers, the
machine and the settings they came from: docs/benchmarks.md.

With ``--out``: records.json (the rows: workload, width, dtype, step_ms, floor_ms, torch_ms,
ratio_floor, ratio_torch, reference_ms, ratio_reference_floor, peak_mb), summary.json
({"environment": CPU, cores, versions, threads, allocator; "command"; "rows"}) and summary.md
(the table and where it was measured).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import tinylora.fast
from tinylora import backend
from tinylora.bench import profile, torch_mirror
from tinylora.bench.timing import peak_bytes, plan_repetitions, time_interleaved, warm_up
from tinylora.bench.workloads import BUILDERS, WIDTHS
from tinylora.fast import allocator
from tinylora.run.options import ListOf, choice_of, options_from_args, out_folder, positive_int
from tinylora.run.progress import Plan
from tinylora.run.records import markdown_table, write_json, write_text

DTYPES = ("float32", "float64")
ROW_KEYS = ("workload", "width", "dtype", "step_ms", "floor_ms", "torch_ms", "ratio_floor",
            "ratio_torch", "reference_ms", "ratio_reference_floor", "peak_mb")


def in_mode(step, fast: bool):
    """`step` run with the fast implementations on or off (`tinylora.fast`)."""
    def run():
        with tinylora.fast.enabled(fast):
            step()
    return run


def contenders(wl, with_torch: bool, with_reference: bool) -> dict:
    """What a row times, by name: the fast step, the floor, the reference's step, PyTorch's."""
    fns = {"step": in_mode(wl.step, True), "floor": wl.floor}
    if with_reference:
        fns["reference"] = in_mode(wl.step, False)
    torch_fn = torch_mirror.torch_step(wl) if with_torch else None
    if torch_fn is not None:
        fns["torch"] = torch_fn
    return fns


def more_warm_ups(per_call: float, quick: bool) -> int:
    return 1 if per_call > 0.5 else 2 if quick else 4


def row_seconds(per_call: float, quick: bool) -> float:
    """A row's seconds, from one call of each contender: the warm-ups, the timed repetitions
    (`plan_repetitions`) and the peak-memory call."""
    rounds, inner = plan_repetitions(per_call, quick)
    return per_call * (1 + more_warm_ups(per_call, quick) + rounds * inner + 1)


def plan(jobs, quick=False, with_torch=True, backend_name=None, with_reference=True) -> Plan:
    """The rows' estimate: each row's workload built and every contender called once, timed."""
    costs = {}
    for name, n, dt in jobs:
        fns = contenders(BUILDERS[name](n, dt, backend_name=backend_name), with_torch,
                         with_reference)
        costs[(name, n, dt)] = row_seconds(warm_up(fns, 1), quick)
    return Plan("bench", "rows", costs, "every contender of every row called once, timed")


def bench_one(name: str, width: int, dtype: str, quick: bool = False, with_torch: bool = True,
              backend_name=None, with_reference: bool = True) -> dict:
    """One row: {workload, width, dtype, step_ms, floor_ms, torch_ms, ratios, reference_ms,
    ratio_reference_floor, peak_mb}; "step" is the fast step, "reference" the reference's."""
    fns = contenders(BUILDERS[name](width, dtype, backend_name=backend_name), with_torch,
                     with_reference)
    per_call = warm_up(fns, 1)
    per_call = warm_up(fns, more_warm_ups(per_call, quick))
    rounds, inner = plan_repetitions(per_call, quick)
    med = time_interleaved(fns, rounds, inner, warmup=0)
    peak = peak_bytes(fns["step"])
    step_ms, floor_ms = 1e3 * med["step"], 1e3 * med["floor"]
    torch_ms = 1e3 * med["torch"] if "torch" in med else None
    ref_ms = 1e3 * med["reference"] if "reference" in med else None
    return {"workload": name, "width": width, "dtype": dtype, "step_ms": step_ms,
            "floor_ms": floor_ms, "torch_ms": torch_ms, "ratio_floor": step_ms / floor_ms,
            "ratio_torch": None if torch_ms is None else step_ms / torch_ms,
            "reference_ms": ref_ms, "ratio_reference_floor": None if ref_ms is None
            else ref_ms / floor_ms, "peak_mb": peak / 2**20}


def run(workloads=tuple(BUILDERS), widths=None, dtypes=DTYPES, quick=False, with_torch=True,
        backend_name=None, progress=True, with_reference=True) -> list[dict]:
    """Every row of the benchmark. `widths` (a list) overrides each workload's default widths."""
    jobs = [(name, n, dt) for name in workloads for n in (widths or WIDTHS[name]) for dt in dtypes]
    rows, estimate = [], plan(jobs, quick, with_torch, backend_name, with_reference)
    estimate.announce()
    with estimate.bar(show=progress) as bar:
        for name, n, dt in jobs:
            rows.append(bench_one(name, n, dt, quick, with_torch, backend_name, with_reference))
            bar.done((name, n, dt))
    return rows


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table (ms per step, ratios, peak MB; the reference's step where it
    was timed)."""
    ref = any(r.get("reference_ms") is not None for r in rows)
    header = ["workload", "width", "dtype", "step ms", "floor ms", "torch ms", "step/floor",
              "step/torch", *(["reference ms", "reference/floor"] if ref else []), "peak MB"]
    return markdown_table(header, [
        [r["workload"], r["width"], r["dtype"], f"{r['step_ms']:.3f}", f"{r['floor_ms']:.3f}",
         _fmt(r["torch_ms"], ".3f"), f"{r['ratio_floor']:.2f}", _fmt(r["ratio_torch"], ".2f"),
         *([_fmt(r.get("reference_ms"), ".3f"), _fmt(r.get("ratio_reference_floor"), ".2f")]
           if ref else []), f"{r['peak_mb']:.2f}"] for r in rows])


def environment(with_torch: bool) -> dict:
    """Where the numbers come from: the CPU, the versions, the threads, the allocator."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    ok, torch_info = torch_mirror.available()
    blas = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": backend.get_xp("numpy").__version__, "numpy_blas_threads": blas or "default",
            "torch": torch_info if ok else None,
            "torch_threads": torch_mirror.threads() if (ok and with_torch) else None,
            "malloc": "keeps freed memory" if allocator.is_tuned() else "default"}


def footer(env: dict, with_torch: bool) -> str:
    """The line under the table: what was timed, on what, with which settings."""
    if with_torch:
        torch = (f"PyTorch {env['torch']} (CPU eager, autograd, torch.optim.Adam, "
                 f"{env['torch_threads']} threads)")
    else:
        torch = "PyTorch column skipped: " + ("--no-torch" if env["torch"] else
                                              torch_mirror.available()[1])
    return (f"Medians of interleaved repeated steps after a warm-up. floor: the bare matrix "
            f"products of the step (grid: the same cells one by one). {env['cpu']}, "
            f"{env['cores']} cores; NumPy {env['numpy']} (BLAS threads: "
            f"{env['numpy_blas_threads']}); malloc: {env['malloc']} "
            f"(tinylora.fast.allocator); {torch}.")


@dataclass(frozen=True)
class BenchOptions:
    """The options of `tinylora bench` (`add_arguments` is the CLI's definition)."""

    workloads: tuple = tuple(BUILDERS)  # which workloads: "mlp", "block", "grid"
    widths: tuple | None = None  # widths to time instead of each workload's defaults
    dtype: str = "both"  # "float32", "float64" or "both"
    quick: bool = False  # fewer repetitions (under a minute)
    no_torch: bool = False  # skip the PyTorch comparison
    no_reference: bool = False  # skip the reference implementations' step (the price of reading)
    json: bool = False  # print the rows as a JSON list
    out: str | None = None  # also write records.json, summary.json and summary.md here
    no_progress: bool = False  # no progress bars
    profile: bool = False  # split one block step into its parts instead (`bench.profile`)


def add_arguments(parser) -> None:
    parser.add_argument("--workloads", action=ListOf, kind=choice_of(*BUILDERS),
                        default=tuple(BUILDERS), help="some of mlp, block, grid (default all)")
    parser.add_argument("--widths", action=ListOf, kind=positive_int, default=None,
                        help="widths to time instead of each workload's defaults")
    parser.add_argument("--dtype", choices=[*DTYPES, "both"], default="both",
                        help="the dtype to time (default both)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under a minute)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the reference implementations' step (the price of reading)")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument("--out", type=out_folder, default=None,
                        help="also write records.json, summary.json and summary.md to this folder")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="split one block step into its parts instead (tinylora.bench.profile)")


def main(args) -> int:
    options = options_from_args(BenchOptions, args)
    result = execute(options)
    print(result["text"])
    return 0


def dtypes(options: BenchOptions) -> tuple:
    """The dtypes `--dtype` asks for: one, or both."""
    return DTYPES if options.dtype == "both" else (options.dtype,)


def execute(options: BenchOptions) -> dict:
    """Time every row (or, with `profile`, the block's parts), write --out's files.
    -> {"rows" (or "profiles"), "environment", "text": what the command prints}."""
    if options.profile:
        return execute_profile(options)
    with_torch = torch_mirror.available()[0] and not options.no_torch
    rows = run(options.workloads, options.widths, dtypes(options), options.quick, with_torch,
               progress=not (options.no_progress or options.json),
               with_reference=not options.no_reference)
    env = environment(with_torch)
    if options.out:
        write_results(options.out, rows, env, with_torch)
    text = (json.dumps(rows, indent=1) if options.json
            else f"{table(rows)}\n\n{footer(env, with_torch)}")
    return {"rows": rows, "environment": env, "text": text}


def execute_profile(options: BenchOptions) -> dict:
    """`--profile`: the block's parts at each width and dtype asked for (tables, or JSON)."""
    profs = [profile.profile(n, dt, options.quick) for n in (options.widths or WIDTHS["block"])
             for dt in dtypes(options)]
    env = environment(False)
    text = "\n\n".join(profile.table(prof) for prof in profs) + (
        f"\n\n{env['cpu']}, {env['cores']} cores; NumPy {env['numpy']} "
        f"(BLAS threads: {env['numpy_blas_threads']}); malloc: {env['malloc']}.")
    if options.out:
        write_json(Path(options.out) / "profile.json", {"environment": env, "profiles": profs})
        write_text(Path(options.out) / "profile.md", text + "\n")
    return {"profiles": profs, "environment": env,
            "text": json.dumps(profs, indent=1) if options.json else text}


def write_results(out, rows: list[dict], env: dict, with_torch: bool) -> None:
    """records.json (the rows), summary.json (rows + environment + command), summary.md."""
    out = Path(out)
    settings = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                  "TINYLORA_MALLOC") if k in os.environ]
    from_shell = sys.argv[0].endswith(("tinylora", "__main__.py"))
    command = " ".join([*settings, "tinylora", *(sys.argv[1:] if from_shell else ["bench"])])
    write_json(out / "records.json", rows)
    write_json(out / "summary.json", {"environment": env, "command": command, "rows": rows})
    write_text(out / "summary.md", f"{table(rows)}\n\n{footer(env, with_torch)}\n\n"
                                   f"Command: `{command}`\n")
