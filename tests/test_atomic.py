"""Results files are written whole or not at all, and a file that cannot be read is never
fatal: it is reported, set aside (renamed, not deleted) and its part recomputed."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinylora.run.records import ResultsDir, Unreadable, read_json, write_json

WRITER = textwrap.dedent("""
    import sys
    from tinylora.run.records import write_json
    path, me = sys.argv[1], int(sys.argv[2])
    for i in range(200):
        write_json(path, {"writer": me, "i": i, "payload": list(range(500))})
""")


def test_two_processes_writing_one_path_never_fail_nor_tear_it(tmp_path):
    """Two writers, 200 writes each, at once: every write succeeds (each has its own temporary
    file), the result is one whole file from one of them, and no temporary file is left."""
    path = tmp_path / "summary.json"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(me)],
                              stderr=subprocess.PIPE, text=True) for me in (1, 2)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    final = read_json(path)
    assert final["writer"] in (1, 2) and final["i"] == 199 and final["payload"] == list(range(500))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_write_that_cannot_be_encoded_leaves_the_old_file(tmp_path):
    """An object JSON cannot hold fails before anything is written: the old file stays whole."""
    path = write_json(tmp_path / "a.json", {"v": 1})
    with pytest.raises(TypeError):
        write_json(path, {"v": object()})
    assert read_json(path) == {"v": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary garbage",  # not text
    b"[1, 2, 3]",  # valid JSON of the wrong type
    b'{"config": {"command": "x"}}',  # a dict without its payload
    b'{"config": {"command": "x"}, "payl',  # torn by a crash
])
def test_an_unreadable_part_is_reported_set_aside_and_recomputed(tmp_path, content):
    """Binary garbage, a list, a dict without payload, a torn file: a warning names the file,
    the file is renamed *.unreadable (its bytes kept), and the part is computed again."""
    out = ResultsDir(tmp_path, {"command": "x"})
    part = tmp_path / "parts" / "width64.json"
    part.parent.mkdir()
    part.write_bytes(content)
    with pytest.warns(Unreadable, match=r"width64\.json is unreadable .*set aside as "
                                        r"width64\.json\.unreadable, recomputing"):
        payload = out.cached("width64", lambda: {"loss": 0.5})
    assert payload == {"loss": 0.5}
    assert (tmp_path / "parts" / "width64.json.unreadable").read_bytes() == content
    assert json.loads(part.read_text())["payload"] == {"loss": 0.5}


def test_a_second_unreadable_part_does_not_overwrite_the_first_set_aside(tmp_path):
    """Set-aside files are numbered: nothing that was set aside is ever lost."""
    out = ResultsDir(tmp_path, {"command": "x"})
    part = tmp_path / "parts" / "w.json"
    part.parent.mkdir()
    for content in (b"first", b"second"):
        part.write_bytes(content)
        with pytest.warns(Unreadable):
            assert out.load_part("w") is None
    assert (tmp_path / "parts" / "w.json.unreadable").read_bytes() == b"first"
    assert (tmp_path / "parts" / "w.json.unreadable.1").read_bytes() == b"second"


WRITES = re.compile(r"\.write_text\(|\.write_bytes\(|json\.dump\(|open\([^)]*['\"][wax]b?\+?['\"]")


def test_every_result_write_goes_through_the_atomic_writer():
    """No module of the package writes a text or JSON file itself: records, summaries and
    tables go through `tinylora.run.records.write_json` / `write_text` (a reader never sees half
    a file). Seven writes in pretrain, finetune and bench used to bypass it."""
    root = Path(__file__).resolve().parents[1] / "tinylora"
    found = [f"{p.relative_to(root)}:{i}" for p in sorted(root.rglob("*.py"))
             if p != root / "run" / "records.py"
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if WRITES.search(line.split("#")[0])]
    assert found == []
    assert WRITES.search('(out / "summary.md").write_text(text)')  # the pattern finds one
    assert WRITES.search('with open(path, "w") as f:')
