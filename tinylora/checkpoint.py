"""Named arrays on disk: one .npz file, written by `save`, read back by `read` and `load`.

`LoRAModel.save`/`load` call these with a model's arrays (the adapters by default; TinyLM's base
with ``keys=lm.base_keys()``), `Optimizer.save`/`load` with its moments; beside them, one entry
``__meta__`` holds the settings that give them meaning, as JSON. A load is all or nothing: every
array is read, checked and converted before any is written, so a refused file changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

# NumPy directly only for the settings' JSON string, a host array; the model's arrays are
# written and read through `backend` (save_npz, to_numpy).
import numpy as np

from tinylora import backend, validate

META = "__meta__"  # the one entry that is not an array of numbers: the settings, as JSON text


def npz_path(path) -> Path:
    """`path` as a .npz file: the suffix added when missing; a .npy file is refused."""
    path = Path(path)
    if path.suffix == ".npy":
        validate.fail("path", "a .npz file of named arrays (written by save)", str(path))
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def save(arrays: dict, path, meta: dict | None = None) -> Path:
    """Write `arrays` (and `meta` as JSON, when given) to `path`, .npz added when missing (as
    `numpy.savez` does; `read` finds it the same way). -> the path written."""
    path = npz_path(path)
    text = {} if meta is None else {  # an array in the settings (a stack's rates): a list
        META: np.array(json.dumps(meta, default=lambda a: backend.to_numpy(a).tolist()))}
    backend.save_npz(path, {**arrays, **text})
    return path


def read(path) -> tuple:
    """-> (the arrays by name, the settings saved with them: None for a file without)."""
    path = npz_path(path)
    arrays = backend.load_npz(path)
    meta = arrays.pop(META, None)
    try:
        return arrays, None if meta is None else dict(json.loads(str(meta)))
    except (TypeError, ValueError):
        validate.fail(f"load {path}: entry {META!r}", "the settings as JSON text", meta)


def check_fits(saved: dict, mine: dict, adapters: bool, path) -> None:
    """Refuse a file whose settings (`LoRAModel.settings`) differ from the model's where that
    changes what the arrays mean: the model and its configuration; for adapters also r, alpha,
    rslora and the targets. The error names every difference."""
    def flat(s: dict) -> dict:  # one entry per setting, in JSON's forms (lists, not tuples)
        lora = {f"lora.{k}": s.get("lora", {}).get(k) for k in ("r", "alpha", "rslora")}
        return json.loads(json.dumps({"model": s.get("model"), **{
            f"config.{k}": v for k, v in s.get("config", {}).items()}, **(
            {**lora, "targets": sorted(s.get("targets", []))} if adapters else {})}))

    theirs, ours = flat(saved), flat(mine)
    differ = [f"{k} is {theirs.get(k)!r} in the file, {v!r} in the model"
              for k, v in ours.items() if theirs.get(k) != v]
    if differ:
        raise ValueError(f"load {path}: the file does not fit the model: " + "; ".join(differ))


def load(params: dict, keys: tuple, arrays: dict, path) -> None:
    """Copy `arrays` (from `read`) into ``params[k]`` for each of `keys`, in place (optimizers hold
    these arrays). Names, shapes and real dtypes must match; the values are converted to each
    array's dtype and must be finite. `path` names the file in errors."""
    missing, extra = sorted(set(keys) - set(arrays)), sorted(set(arrays) - set(keys))
    if missing or extra:
        raise ValueError(f"load {path}: expected {len(keys)} named arrays; missing {missing}, "
                         f"not expected {extra}")
    ready = {}
    for k in keys:
        want, a = params[k], arrays[k]
        if tuple(a.shape) != tuple(want.shape):
            raise ValueError(f"load {path}: array {k!r} expected shape "
                             f"{tuple(want.shape)}, got {tuple(a.shape)}")
        if a.dtype.kind not in "fiu":  # complex parts would be dropped, strings fail
            validate.fail(f"load {path}: array {k!r}", "a real (float) array", a)
        ready[k] = backend.xp_of(want).asarray(a, dtype=want.dtype)
        validate.finite_values(ready[k], f"load {path}: array {k!r}")
    for k in keys:  # every check passed: now write
        params[k][...] = ready[k]
