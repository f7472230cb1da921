"""A model's named arrays on disk: one .npz file, written by `save`, read back by `load`.

`LoRAModel.save` and `LoRAModel.load` call these with the model's ``params`` and the keys to keep
(the adapters by default; TinyLM's base with ``keys=lm.base_keys()``). A load is all or nothing:
every array is read, checked and converted before any is written, so a refused file leaves the
model exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

from tinylora import backend, validate


def npz_path(path) -> Path:
    """`path` as a .npz file: the suffix added when missing; a .npy file is refused."""
    path = Path(path)
    if path.suffix == ".npy":
        validate.fail("path", "a .npz file of named arrays (written by save)", str(path))
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def save(params: dict, keys: tuple, path) -> Path:
    """Write ``params[k]`` for each of `keys` to `path` (.npz added when missing, as
    `numpy.savez` does, and `load` finds it the same way). -> the path written."""
    path = npz_path(path)
    backend.save_npz(path, {k: params[k] for k in keys})
    return path


def load(params: dict, keys: tuple, path) -> None:
    """Read the arrays `save` wrote into ``params[k]``, in place (optimizers hold these arrays).
    The names, shapes and real dtypes must match; the values are converted to each array's dtype
    and must be finite."""
    path = npz_path(path)
    arrays = backend.load_npz(path)
    if sorted(arrays) != sorted(keys):
        raise ValueError(
            f"load {path}: expected arrays {sorted(keys)}, the file holds {sorted(arrays)}"
        )
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
