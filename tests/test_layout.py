"""The house rules, read from the source: the library is layered, small, and free of circles.

    tinylora/          the reference a student reads: arrays, layers, models, optimizers
    tinylora/gradcheck/ each backward against finite differences: the method and the catalogue
    tinylora/fast/     the same functions, faster, each tested against its reference
    tinylora/run/      the commands' plumbing: the CLI, options, results folders, progress
    tinylora/lab/      the synthetic width-scaling experiments
    tinylora/text/     pretraining and fine-tuning on real text
    tinylora/bench/    the speed benchmark
    tinylora/port/     GPT-2-format weights in, PEFT adapters out and in
    tinylora/lessons/  what the lessons import besides the library: the checker, the diagrams

Every import statement (module level or inside a function) is an edge of the module graph.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import tinylora

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinylora"
OUTER = ("tinylora.lab", "tinylora.text", "tinylora.bench")
# what the reference never imports
BESIDE = ("tinylora.fast", "tinylora.run", "tinylora.gradcheck", "tinylora.port",
          "tinylora.lessons", *OUTER)
MAX_LINES = 300
MAX_REFERENCE_LINES = 3000  # the reference, read in an afternoon


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """The tinylora modules that `path` imports (a `from pkg import name` of a submodule counts
    as that submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tinylora")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinylora"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


REFERENCE = {n for n, p in MODULES.items() if p.parent == PACKAGE}  # every module, no exception
# (`python -m tinylora.run` is the command: tinylora/run/__main__.py)


def test_the_reference_never_imports_the_rooms_beside_it():
    """Nothing directly in tinylora/ imports tinylora.fast, .run, .gradcheck, .port, .lessons,
    .lab, .text or .bench: the reference stands alone (fast/ installs its twins into it, never
    the other way)."""
    bad = {n: sorted(i for i in GRAPH[n] if i.startswith(BESIDE)) for n in REFERENCE}
    assert not {n: v for n, v in bad.items() if v}


def test_fast_and_run_never_import_the_experiments():
    """tinylora.fast and tinylora.run import the reference (and fast), never lab, text or bench
    (the CLI finds a command's module by name when it runs)."""
    inner = {n for n in MODULES if n.startswith(("tinylora.fast", "tinylora.run"))}
    bad = {n: sorted(i for i in GRAPH[n] if i.startswith(OUTER)) for n in inner}
    assert not {n: v for n, v in bad.items() if v}


def test_the_reference_is_under_3000_lines(capsys):
    """The reference (tinylora/*.py) stays an afternoon's read: its line count is printed and
    stays under 3,000."""
    lines = {n: len(MODULES[n].read_text().splitlines()) for n in sorted(REFERENCE)}
    with capsys.disabled():
        print(f"\nthe reference: {sum(lines.values())} lines in {len(lines)} modules")
    assert sum(lines.values()) < MAX_REFERENCE_LINES, lines


def test_there_are_no_import_circles():
    """No two modules import each other, directly or through others (every import counted)."""
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_planted_circle():
    """The rule above can fail: a planted a -> b -> c -> a is reported as one circle."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_is_under_300_lines():
    """Past about 300 lines a module is split by concept (never into "utils")."""
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(m for m in sys.modules if 'tinylora' in m))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_tinylora_loads_only_the_reference():
    """`import tinylora` loads the reference alone (no fast, run, gradcheck, port, lessons, lab,
    text or bench module), and the CLI's parser no lab, text or bench module."""
    assert not {m for m in _loaded_after("import tinylora") if m.startswith(BESIDE)}
    loaded = _loaded_after("import tinylora, tinylora.run.cli\ntinylora.run.cli.build_parser()")
    assert not {m for m in loaded if m.startswith(OUTER)}


def test_a_command_imports_only_its_own_module():
    """`tinylora width-sweep` builds its options from the lab alone: no text or bench module."""
    loaded = _loaded_after("import tinylora.run.cli\ntinylora.run.cli.build_parser('width-sweep')")
    assert "tinylora.lab.sweep_report" in loaded
    assert not {m for m in loaded if m.startswith(("tinylora.text", "tinylora.bench"))}


def _readme_tree() -> set[str]:
    """The module paths the README's tree lists (``tinylora/lab/analytic_toy.py``, ...)."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("```text\ntinylora/"):]
    block = block[: block.index("```", 3)]
    paths, folder = set(), ""
    for line in block.splitlines()[1:]:
        name = line.split()[0] if line.strip() else ""
        if line.startswith("  ") and not line.startswith("    ") and name.endswith("/"):
            folder = name
        elif line.startswith("    ") and name.endswith(".py"):
            paths.add(f"tinylora/{folder}{name}")
        elif line.startswith("  ") and name.endswith(".py"):
            folder = ""
            paths.add(f"tinylora/{name}")
    return paths


def test_readme_tree_lists_every_module():
    """The README's "What is inside" names every module of the package, and only those."""
    on_disk = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py"
               or p.parent in (PACKAGE, PACKAGE / "fast", PACKAGE / "gradcheck")}
    listed = _readme_tree()
    assert sorted(on_disk - listed) == [], "add these to README.md's tree"
    assert sorted(listed - on_disk) == [], "the README's tree lists modules that do not exist"


def test_version_is_written_in_one_place():
    """The installed package's version is `tinylora.__version__`: pyproject reads it, no copy."""
    assert importlib.metadata.version("tinylora") == tinylora.__version__
    assert "version =" not in (ROOT / "pyproject.toml").read_text().split("[tool.setuptools")[0]


def test_readme_docs_scripts_and_lessons_name_no_issue_of_ours():
    """The tracker's issue numbers mean nothing to a reader of a clone: README, docs, scripts,
    lessons and the package never cite "issue 23" (another project's "#1915" is a link)."""
    ours = re.compile(r"\bissues? \d+", re.IGNORECASE)
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "scripts").glob("*"),
             *(ROOT / "lessons").glob("*.py"), *PACKAGE.rglob("*.py")]
    found = [f"{p.relative_to(ROOT)}:{i}" for p in files if p.is_file()
             for i, line in enumerate(p.read_text().splitlines(), 1) if ours.search(line)]
    assert found == []
