"""The results folder of a command: records, summary, figures, and resumable parts.

Every experiment command writes to ``--out DIR``:

    records.json   one row per measured number: {"width", ..., "step", "quantity", "value"}
    summary.json   the few numbers the command exists to produce (keys documented per command)
    summary.md     the same, as tables a person reads
    *.png          figures with self-describing names and titles
    parts/*.json   finished units of work (one per width), each stored with the configuration
                   that produced it: a rerun with the same configuration reuses them, so an
                   interrupted run loses nothing it had finished.

JSON has no infinity, and a diverged run's loss *is* infinite: numbers that are not finite are
written as the strings "inf", "-inf", "nan" and read back as floats (``float("inf")`` parses).
Arrays and scalars of either backend are brought to the host through `tinylora.backend`.
"""

from __future__ import annotations

import json
import math
import os
import uuid
import warnings
from pathlib import Path

from tinylora import backend
from tinylora.run.memory import out_of_memory

_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def encode(obj):
    """A JSON-ready copy of `obj`: arrays and array scalars (NumPy or CuPy) to Python numbers,
    non-finite floats to strings."""
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # an array or scalar, NumPy or CuPy
        return encode(backend.to_numpy(obj).tolist())  # to the host, then Python numbers
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else (
            "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf"))
    return obj


def decode(obj):
    """The inverse of `encode` for the strings "inf", "-inf", "nan" (everything else unchanged)."""
    if isinstance(obj, dict):
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    return obj


def write_json(path, obj) -> Path:
    """Write `obj` as strict JSON, atomically (`write_text`)."""
    text = json.dumps(encode(obj), indent=1, allow_nan=False) + "\n"  # fails before any write
    return write_text(path, text)


def write_text(path, text: str) -> Path:
    """Write `text` atomically: to a temporary file of this writer's own (two processes writing
    one path never share it), then renamed over `path` in one step, so a reader sees the old
    file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")  # this writer's
    try:
        with open(tmp, "x") as f:  # "x": never an existing file; permissions as for any file
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_json(path):
    """Read a file written by `write_json` (non-finite numbers come back as floats)."""
    return decode(json.loads(Path(path).read_text()))


class Unreadable(UserWarning):
    """A results file could not be read; it was set aside (renamed, never deleted)."""


def set_aside(path: Path, why) -> Path:
    """Rename an unreadable `path` to ``<name>.unreadable[.N]`` beside it and say so."""
    aside, n = path.with_name(path.name + ".unreadable"), 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.unreadable.{n}"), n + 1
    os.replace(path, aside)
    reason = str(why).splitlines()[0][:120] if str(why) else type(why).__name__
    warnings.warn(f"{path} is unreadable ({reason}): set aside as {aside.name}, recomputing",
                  Unreadable, stacklevel=3)
    return aside


class ResultsDir:
    """The ``--out`` folder of one command run with one configuration, and its resumable parts.

    `config` is a JSON-able dict of everything that changes the numbers (not the list of
    widths, so that a run with more widths reuses the ones already done, and not the backend).
    A part saved with another configuration is recomputed; with ``strict=True`` it is refused
    instead (a study that must not mix two configurations: `ValueError` lists the differences).

        out = ResultsDir("width-sweep-out", config)
        payload = out.cached(f"width{n}", lambda: sweep_width(n))   # computed once, then read
    """

    def __init__(self, out, config: dict, strict: bool = False):
        self.path = Path(out)
        self.config = encode(config)
        self.strict = strict
        self.path.mkdir(parents=True, exist_ok=True)

    def cached(self, key: str, compute, what: str | None = None):
        """The payload saved under `key` by a run with this configuration; else ``compute()``,
        saved and read back (so a first run returns exactly the numbers a rerun would read).
        A `compute` that runs out of memory is one line naming `what` (default: the key), the
        memory and the finished parts (`tinylora.run.memory.OutOfMemory`)."""
        payload = self.load_part(key)
        if payload is None:
            try:
                result = compute()
            except MemoryError as err:
                raise out_of_memory(err, what or key, self.path / "parts",
                                    self.finished()) from err
            self.save_part(key, result)
            payload = self.load_part(key)
        return payload

    def finished(self) -> list[str]:
        """The keys of the parts saved with this configuration."""
        parts = sorted((self.path / "parts").glob("*.json"), key=lambda p: p.stat().st_mtime)
        return [p.stem for p in parts if self.load_part(p.stem) is not None]

    def differences(self, saved: dict) -> list[str]:
        """'key: saved X, asked Y' for each configuration entry that differs from `saved`."""
        keys = sorted(set(saved) | set(self.config))
        return [f"{k}: saved {saved.get(k)!r}, asked {self.config.get(k)!r}" for k in keys
                if saved.get(k) != self.config.get(k)]

    def _part(self, key: str) -> Path:
        return self.path / "parts" / f"{key}.json"

    def load_part(self, key: str):
        """The payload saved under `key` by a run with the same configuration, else None."""
        path = self._part(key)
        if not path.exists():
            return None
        try:
            saved = json.loads(path.read_text())
            if not isinstance(saved, dict) or "payload" not in saved:
                raise ValueError(f"a JSON {type(saved).__name__} without a payload")
        except ValueError as err:  # torn, garbage, or not a part: set it aside, redo that part
            set_aside(path, err)
            return None
        if saved.get("config") != self.config:
            if self.strict:
                raise ValueError(f"out: {path} was made with another configuration "
                                 f"({'; '.join(self.differences(saved.get('config') or {}))})")
            return None
        return decode(saved["payload"])

    def save_part(self, key: str, payload) -> Path:
        """Store a finished unit of work with the configuration that produced it."""
        return write_json(self._part(key), {"config": self.config, "payload": payload})

    def write(self, name: str, obj) -> Path:
        """Write ``name``: JSON for a .json name, text otherwise."""
        if name.endswith(".json"):
            return write_json(self.path / name, obj)
        return write_text(self.path / name, obj)

    def __truediv__(self, name: str) -> Path:
        return self.path / name


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table; floats printed with 3 significant digits."""

    def cell(v):
        if isinstance(v, float):
            return "diverged (inf)" if v == math.inf else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
