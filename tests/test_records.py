"""tinylora.run.records: results folders that survive infinities and interruptions."""

import json
import math

import numpy as np

from tinylora.run.options import parse_list
from tinylora.run.records import ResultsDir, encode, markdown_table, read_json, write_json


def test_infinity_round_trips_through_strict_json(tmp_path):
    """A diverged loss is inf; JSON has no inf, so it is written as "inf" and read back as inf."""
    path = write_json(tmp_path / "x.json", {"loss": [1.5, math.inf, -math.inf]})
    json.loads(path.read_text())  # strict JSON: no bare Infinity token
    assert "Infinity" not in path.read_text()
    assert read_json(path) == {"loss": [1.5, math.inf, -math.inf]}


def test_parts_are_reused_only_with_the_same_configuration(tmp_path):
    """A rerun reuses finished work; a different configuration never reuses stale numbers."""
    ResultsDir(tmp_path, {"steps": 10}).save_part("width64", {"best": 3.0})
    assert ResultsDir(tmp_path, {"steps": 10}).load_part("width64") == {"best": 3.0}
    assert ResultsDir(tmp_path, {"steps": 20}).load_part("width64") is None
    assert ResultsDir(tmp_path, {"steps": 10}).load_part("width128") is None


def test_a_torn_part_file_is_redone_not_fatal(tmp_path):
    """A crash mid-write leaves a broken file: it reads as 'not done', and the run goes on."""
    out = ResultsDir(tmp_path, {})
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "width64.json").write_text('{"config": {}, "payl')
    assert out.load_part("width64") is None


def test_markdown_table_and_list_parsing():
    """Tables print inf as 'diverged (inf)'; '64,128' parses to a tuple of ints."""
    text = markdown_table(["a", "b"], [[1, math.inf]])
    assert "diverged (inf)" in text and text.count("|") == 9
    assert parse_list("64, 128") == (64, 128) and parse_list(None) is None


def test_encode_turns_numpy_arrays_and_scalars_into_python_numbers():
    """encode: arrays and array scalars (float, int, bool) become Python numbers; inf a string."""
    out = encode({"a": np.array([1.5, np.inf]), "f": np.float32(-np.inf), "i": np.int64(3),
                  "b": np.bool_(True), "n": np.float64("nan")})
    assert out == {"a": [1.5, "inf"], "f": "-inf", "i": 3, "b": True, "n": "nan"}
    assert [type(v) for v in (out["i"], out["b"])] == [int, bool]
