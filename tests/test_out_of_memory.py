"""A width too large for the memory ends in one line naming the width and the memory, and the
widths that finished stay in the results folder (`tinylora.run.memory`).

The allocation failure is simulated: the sweep's work for the last width raises what CuPy raises
on a full GPU (``cupy.cuda.memory.OutOfMemoryError``, a MemoryError) or what NumPy raises on the
host, and the device's numbers are stand-ins. One test makes a real one, in a subprocess whose
address space is capped (`ulimit -v`). `scripts/gpu_check.sh` plants the same on a GPU.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinylora.lab import sweep
from tinylora.run import memory
from tinylora.run.cli import main

ROOT = Path(__file__).resolve().parents[1]


class OutOfMemoryError(MemoryError):
    """Stands for CuPy's (same module name, same message)."""

    __module__ = "cupy.cuda.memory"


CUPY_SAYS = ("Out of memory allocating 4,294,967,296 bytes (allocated so far: 1,073,741,824 "
             "bytes).")
NUMPY_SAYS = ("Unable to allocate 8.00 GiB for an array with shape (32768, 32768) and data type "
              "float64")


def run_until_full(tmp_path, monkeypatch, capsys, error):
    """width-sweep at widths 16, 32, 64 with the last one running out of memory. -> the exit
    code and what stderr says after the plan (the plan's lines come first)."""
    real = sweep.sweep_width

    def sweep_width(width, *args, **kwargs):
        if width == 64:
            raise error
        return real(width, *args, **kwargs)

    monkeypatch.setattr(sweep, "sweep_width", sweep_width)
    argv = ["width-sweep", "--fast", "--widths", "16,32,64", "--steps", "4", "--out",
            str(tmp_path), "--no-progress"]
    code = main(argv)
    err = capsys.readouterr().err
    return code, err[err.find("tinylora width-sweep: error"):]


def test_a_gpu_out_of_memory_is_one_line_with_the_width_and_the_gpu_memory(
        tmp_path, monkeypatch, capsys):
    """CuPy's OutOfMemoryError at width 64: exit 1 (a failed run), one line naming the width, the
    allocation, the GPU and its memory, and the finished widths, which are kept."""
    monkeypatch.setattr(memory, "gpu_memory",
                        lambda: ("NVIDIA H200", 143_771 * 2**20, 12 * 2**30, 0))
    code, err = run_until_full(tmp_path, monkeypatch, capsys, OutOfMemoryError(CUPY_SAYS))
    assert code == 1 and err.count("\n") == 1
    assert err == (
        "tinylora width-sweep: error: out of memory at width 64: Out of memory allocating "
        "4,294,967,296 bytes (allocated so far: 1,073,741,824 bytes) (the GPU (NVIDIA H200) has "
        f"140.4 GiB, 12.0 GiB free); the finished parts are kept in {tmp_path / 'parts'}: "
        "width16, width32; run again with the widths that fit to resume from them\n")
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["width16.json",
                                                                       "width32.json"]


def test_a_host_out_of_memory_names_the_host_memory(tmp_path, monkeypatch, capsys):
    """NumPy's MemoryError at width 64: the same one line, with the host's RAM."""
    monkeypatch.setattr(memory, "host_memory", lambda: 64 * 2**30)
    code, err = run_until_full(tmp_path, monkeypatch, capsys, MemoryError(NUMPY_SAYS))
    assert code == 1 and err.count("\n") == 1
    assert f"out of memory at width 64: {NUMPY_SAYS} (the host has 64.0 GiB of RAM)" in err
    assert "kept in" in err and "width16, width32" in err


def test_a_pool_limit_is_named_and_an_unreadable_gpu_does_not_hide_the_error(monkeypatch):
    """A CuPy memory pool limit (`CUPY_GPU_MEMORY_LIMIT`) is part of the line; if the GPU's
    numbers cannot be read, the line says so instead of failing."""
    monkeypatch.setattr(memory, "gpu_memory", lambda: ("H", 8 * 2**30, 2**30, 2**29))
    line = str(memory.out_of_memory(OutOfMemoryError(CUPY_SAYS), "width 8", "out", []))
    assert "CuPy's memory pool limited to 0.5 GiB" in line and "no part had finished" in line

    def broken():
        raise RuntimeError("no device")

    monkeypatch.setattr(memory, "gpu_memory", broken)
    assert "the GPU's memory could not be read" in memory.memory_line(OutOfMemoryError("x"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ulimit -v: Linux")
def test_a_real_allocation_failure_on_the_host_ends_in_one_line(tmp_path):
    """A subprocess with 3 GB of address space: width-sweep at widths 16 and 32768 (an 8 GiB
    float64 weight) says in its plan that 32768 could not be timed, then fails at 32768 with one
    line naming it, and keeps width 16."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = (f"ulimit -v 3000000 && {sys.executable} -m tinylora.run width-sweep --fast --steps 4 "
           f"--widths 16,32768 --out {tmp_path} --no-progress")
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 1, done.stderr
    plan, error = done.stderr.split("tinylora width-sweep: error")
    assert "not timed (out of memory): n = 32768" in plan
    error = "tinylora width-sweep: error" + error
    assert error.count("\n") == 1, done.stderr
    assert error.startswith("tinylora width-sweep: error: out of memory at width 32768: "
                                  "Unable to allocate"), done.stderr
    assert "GiB of RAM" in error and "width16" in error
    assert (tmp_path / "parts" / "width16.json").exists()
