"""The lessons run, top to bottom, and their two copies agree.

Each lesson is a jupytext pair: ``lessons/NN_name.py`` (percent format, what one reads and edits)
and ``lessons/NN_name.ipynb`` (what Jupyter opens), committed without outputs. Every notebook is
executed here in fast mode (``TINYLORA_FAST=1``, ``MPLBACKEND=Agg``) with the ``python3`` kernel
and the working directory ``lessons/``; an exception in any cell, an assert included, fails it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook tests need the `test` extra")
nbclient = pytest.importorskip("nbclient", reason="notebook tests need the `test` extra")
jupytext = pytest.importorskip("jupytext", reason="notebook tests need the `test` extra")

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
SCRIPTS = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT_S = 240  # per cell; a lesson in fast mode takes seconds


def _id(path: Path) -> str:
    return path.stem


def _cells(book) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in book.cells]


def test_every_lesson_is_a_pair():
    """Each numbered lesson has both its .ipynb and its .py (a lone copy cannot be kept in sync)."""
    assert NOTEBOOKS, f"no lessons found in {LESSONS}"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SCRIPTS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_notebook_carries_no_outputs(path):
    """Committed notebooks carry no outputs or execution counts: diffs stay readable and small."""
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; strip them (see lessons/README.md)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_notebook_matches_its_py_pair(path):
    """The .ipynb and the .py hold the same cells, so editing either one and syncing is safe."""
    nb, py = jupytext.read(path), jupytext.read(path.with_suffix(".py"))
    assert _cells(nb) == _cells(py), (
        f"{path.name} and {path.with_suffix('.py').name} differ: run `jupytext --sync {path}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_lesson_runs_top_to_bottom_in_fast_mode(path, monkeypatch):
    """A lesson that does not run teaches nothing: every cell, every assert, in fast mode."""
    monkeypatch.setenv("TINYLORA_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        # lesson-sized matrices: one BLAS thread is fastest, and never oversubscribes 2 cores
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    # The kernel imports this source tree's tinylora, whatever is installed elsewhere.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT),
                                                                    os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(LESSONS)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
