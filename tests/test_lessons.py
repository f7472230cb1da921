"""The lessons run, top to bottom, each copied alone into an empty folder; their two copies agree.

Each lesson is a jupytext pair: ``lessons/NN_name.py`` (percent format, what one reads and edits)
and ``lessons/NN_name.ipynb`` (what Jupyter opens), committed without outputs. Every notebook is
executed here in fast mode (``TINYLORA_FAST=1``) with the ``python3`` kernel, **copied alone into
an empty folder** (as a student who downloads one notebook, or opens it in Colab, has it: nothing
of ``lessons/`` beside it; beside that folder, as in a checkout, the repository's ``docs/``, whose
recorded runs some lessons quote and others say are missing), with this source tree's tinylora
importable, and **no** ``MPLBACKEND`` (the kernel's own inline backend, as a student gets it); an
exception in any cell, an assert included, fails it. Each figure a cell draws must come back as
one ``image/png`` output of that cell, and each exercise's checker must find the shipped stub
wrong and the solution right (``TINYLORA_CHECK_EXERCISES=1``, see
``tinylora/lessons/exercises.py``). How long each lesson took is printed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import re
import shutil
import tempfile
import time
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


def _library_figures() -> set[str]:
    """The names of the library's figure functions: those of its plots modules that save one."""
    names = set()
    for module in ("tinylora.lab.plots", "tinylora.lab.plots_width", "tinylora.text.plots"):
        mod = importlib.import_module(module)
        names |= {name for name, fn in inspect.getmembers(mod, inspect.isfunction)
                  if fn.__module__ == module and not name.startswith("_")
                  and "return save_figure(" in inspect.getsource(fn)}
    return names


# A figure is made by one of these calls, one per figure, never inside a loop or a helper (so
# that reading the source counts them): pyplot's two constructors and every library figure
# function called through its module (`plots.heatmaps(...)`, `plots_width.width_law(...)`),
# whose PNG a lesson displays.
FIGURE_CALL = re.compile(r"\bplt\.(?:subplots|figure)\(|\b\w*plots\w*\.(\w+)\(")
LIBRARY_FIGURES = _library_figures()


def figures_drawn(source: str) -> int:
    """How many figures a code cell draws, counted from its source (comments left out)."""
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    return sum(m.group(1) is None or m.group(1) in LIBRARY_FIGURES
               for m in FIGURE_CALL.finditer(code))


def images_shown(cell) -> int:
    """How many PNG images a cell's outputs hold (what a student sees in Jupyter)."""
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def test_figures_drawn_counts_constructors_and_library_figures():
    """The source count finds plt.subplots, plt.figure and the library's figure functions (not
    its other helpers), and skips comments."""
    src = ("fig, ax = plt.subplots(1, 2)\nplt.figure()\n# plt.subplots() in a comment\n"
           "display(Image(plots.heatmaps(p, 'h.png', 't')))\nx = text_plots.finetune_curves(d, q)\n"
           "show(plots_width.width_law(plots_width.width_law_curves(b, s), 'w.png', 't'))")
    assert figures_drawn(src) == 5
    assert figures_drawn("plt.show()\nnp.subplots = 1\nplots.new_figure(figsize=(1, 1))") == 0
    assert {"heatmaps", "width_law", "finetune_curves"} <= LIBRARY_FIGURES
    assert not {"width_law_curves", "new_figure", "save_figure"} & LIBRARY_FIGURES


@functools.cache
def _executed(path: Path):
    """Run one lesson, copied alone into an empty folder, in a fresh python3 kernel, fast mode,
    without MPLBACKEND, every exercise checked against its solution -> (the executed notebook,
    seconds it took) (once per lesson and test session)."""
    with pytest.MonkeyPatch.context() as env, tempfile.TemporaryDirectory() as tmp:
        alone = Path(tmp) / "lessons"
        alone.mkdir()
        (Path(tmp) / "docs").symlink_to(ROOT / "docs")  # the recorded runs, as in a checkout
        shutil.copy(path, alone / path.name)
        env.setenv("TINYLORA_FAST", "1")
        env.delenv("MPLBACKEND", raising=False)  # the kernel picks its inline backend
        env.setenv("TINYLORA_CHECK_EXERCISES", "1")
        env.setenv("TINYLORA_SOLUTIONS", str(LESSONS / "solutions"))
        env.setenv("TQDM_DISABLE", "1")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            # lesson-sized matrices: one BLAS thread is fastest, and never oversubscribes 2 cores
            env.setenv(var, os.environ.get(var, "1"))
        # The kernel imports this source tree's tinylora, whatever is installed elsewhere.
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT),
                                                               os.environ.get("PYTHONPATH")])))
        nb = nbformat.read(alone / path.name, as_version=4)
        client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                         resources={"metadata": {"path": str(alone)}})
        start = time.perf_counter()
        client.execute()  # raises CellExecutionError, with the cell and its traceback, on error
        seconds = time.perf_counter() - start
        written = sorted(p.name for p in alone.iterdir())
        assert written == [path.name], f"a lesson wrote beside itself: {written}"
    return nb, seconds


def _stdout(nb) -> str:
    return "".join(out.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for out in c.get("outputs", []) if out.get("name") == "stdout")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_lesson_runs_and_shows_every_figure_it_draws(path):
    """Every cell runs (every assert holds), in fast mode and without MPLBACKEND, and each cell
    shows as many PNG images as it draws figures: a figure drawn and not shown teaches nothing."""
    nb, _ = _executed(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [(i, figures_drawn(c.source), images_shown(c)) for i, c in enumerate(code)]
    missing = [(i, drawn, shown) for i, drawn, shown in counts if drawn != shown]
    assert not missing, f"{path.name}: (code cell, figures drawn, images shown): {missing}"
    assert sum(drawn for _, drawn, _ in counts) >= 1, f"{path.name} draws no figure at all"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_lesson_has_three_exercises_whose_stubs_fail_and_solutions_pass(path):
    """At least three exercises per lesson, each checked both ways in the run above: the stub as
    shipped is wrong and the solution in lessons/solutions/ is right (else the cell raised)."""
    nb, _ = _executed(path)
    checked = re.findall(rf"\[exercise\] {path.stem}/(\w+): stub fails, solution passes",
                         _stdout(nb))
    assert len(set(checked)) == len(checked) >= 3, f"{path.name}: exercises checked: {checked}"
    solutions = LESSONS / "solutions" / f"{path.stem}.py"
    assert set(checked) == set(re.findall(r"^def (\w+)\(", solutions.read_text(), re.M)), (
        f"{solutions.name} and the lesson's exercises differ")


def test_every_lessons_first_code_cell_installs_what_is_missing():
    """Every lesson's first code cell is the same install cell (pip, for what find_spec cannot
    find), so a lesson run alone in Colab or from a download installs what it needs first."""
    firsts = {path.name: next(c.source for c in jupytext.read(path).cells
                              if c.cell_type == "code") for path in SCRIPTS}
    assert len(set(firsts.values())) == 1, sorted(firsts)
    cell = firsts[SCRIPTS[0].name]
    assert "importlib.util.find_spec" in cell and '"pip", "install"' in cell


def test_no_lesson_imports_a_module_from_its_own_folder():
    """A lesson imports tinylora and installed packages only, never a file of lessons/ (the
    checker and the diagrams are tinylora.lessons.exercises and tinylora.lessons.pictures)."""
    beside = {p.stem for p in LESSONS.glob("*.py")} | {"exercises", "pictures", "solutions"}
    found = {path.name: sorted(set(re.findall(r"^(?:from|import) (\w+)", path.read_text(), re.M))
                               & beside) for path in SCRIPTS}
    assert {name: mods for name, mods in found.items() if mods} == {}


def test_each_lesson_runs_in_fast_mode_within_a_minute(capsys):
    """Each lesson, run alone in fast mode, takes under a minute; the time of each and the total
    are printed (the goal is a minute for all of them together)."""
    times = {path.stem: _executed(path)[1] for path in NOTEBOOKS}
    with capsys.disabled():
        print("\nlessons in fast mode: " + ", ".join(f"{k[:2]} {t:.1f} s" for k, t in times.items())
              + f"; total {sum(times.values()):.0f} s")
    assert max(times.values()) < 60, times
