"""Small private helpers for the pretrain/finetune result folders: JSON files and progress bars.

Private to `tinylora.pretrain` and `tinylora.finetune` (the shared records module may replace it).
JSON is written atomically (a temporary file, then a rename), so a run stopped half-way never
leaves a broken records.json behind; a diverged loss is written as ``Infinity`` (Python's json
reads it back as ``float('inf')``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path, obj) -> Path:
    """Write `obj` as indented JSON to `path`, atomically. -> the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def read_json(path):
    return json.loads(Path(path).read_text())


def progress(iterable=None, *, total=None, desc="", enabled=True, leave=False):
    """A tqdm bar (when tqdm is installed). ``enabled=False`` (the ``--no-progress`` flag) hides
    it; otherwise tqdm's own ``TQDM_DISABLE=1`` environment variable is respected."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the plots extra is not installed: no bar, same iteration
        return _NoBar(iterable)
    kwargs = {} if enabled else {"disable": True}  # an explicit disable=False would override env
    return tqdm(iterable, total=total, desc=desc, leave=leave, dynamic_ncols=True, **kwargs)


class _NoBar:
    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass
