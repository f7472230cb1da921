"""The source distribution is a working copy of the project: built here, unpacked in a temporary
folder, it holds the lessons, the docs (with the recorded results), the changelog, the citation
and the Makefile, and a quick part of the test suite passes inside it, against its own copy of
the package (`pytest` in an unpacked sdist used to stop at collection: no lessons, no docs)."""

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["tests/test_layout.py", "tests/test_readme.py", "tests/test_readme_results.py",
         "tests/test_groups.py", "tests/test_gradcheck.py::test_the_whole_catalogue_passes",
         "tests/test_lessons.py::test_every_lesson_is_a_pair",
         "tests/test_lessons.py::test_notebook_matches_its_py_pair",
         "tests/test_lessons.py::test_notebook_carries_no_outputs"]
SHIPPED = ["CHANGELOG.md", "CITATION.cff", "Makefile", "LICENSE", "README.md",
           "lessons/01_lora_by_hand.ipynb", "lessons/01_lora_by_hand.py", "lessons/README.md",
           "docs/peft.md", "docs/results/README.md", "docs/results/finetune/summary.json",
           "docs/results/width_law.png", "tests/conftest.py", "tinylora/text/data/SOURCES.md"]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> Path:
    """The sdist built from this tree (`python -m build --sdist`, no isolation: offline) and
    unpacked -> its top folder."""
    pytest.importorskip("build", reason="the sdist test needs the `test` extra (build)")
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                    str(out), str(ROOT)], check=True, capture_output=True, text=True, timeout=120)
    (archive,) = out.glob("tinylora-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    (top,) = (p for p in out.iterdir() if p.is_dir())
    return top


def test_the_sdist_carries_lessons_docs_changelog_citation_and_makefile(unpacked):
    """Every file a newcomer (or `make test`) reaches for is in the archive; no caches are."""
    missing = [name for name in SHIPPED if not (unpacked / name).is_file()]
    assert missing == []
    assert not list(unpacked.rglob("__pycache__")) and not list(unpacked.rglob("*.pyc"))


def test_a_quick_part_of_the_suite_passes_in_the_unpacked_sdist(unpacked):
    """The layout, the README's examples and tree, the results page against its records, the
    LoRA+ groups, the gradient catalogue and the lesson pairs all pass inside the unpacked
    sdist, importing the sdist's own `tinylora` (checked first), in under a minute."""
    env = {**os.environ, "PYTHONPATH": str(unpacked), "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
    probe = subprocess.run([sys.executable, "-c", "import tinylora; print(tinylora.__file__)"],
                           cwd=unpacked, env=env, capture_output=True, text=True, check=True)
    assert Path(probe.stdout.strip()).is_relative_to(unpacked)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *QUICK],
                         cwd=unpacked, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]


def test_the_test_extra_declares_what_the_tests_use_and_nothing_unused():
    """The notebook tests drive a kernel with nbclient (nbformat reads, ipykernel runs, jupytext
    pairs), the sdist test builds with `build`: each is declared in the test extra, not left to
    arrive with something else; nbmake, which no test uses, is not declared."""
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    names = {re.split(r"[<>=\[ ]", spec)[0] for spec in extra}
    used = set(re.findall(r"importorskip\(\"(\w+)\"", "".join(
        p.read_text() for p in (ROOT / "tests").glob("test_*.py"))))
    assert {"nbclient", "nbformat", "jupytext", "build"} <= used
    optional = {"torch", "peft", "transformers", "safetensors", "tqdm", "cupy"}  # skipped if absent
    assert used - optional <= names
    assert {"ipykernel", "pytest", "setuptools"} <= names and "nbmake" not in names
