"""The array backend: NumPy by default, CuPy on a GPU, one code path for both.

Every other module asks this one for `xp` (the array module) instead of importing numpy or cupy.
Which backend is used, in order of precedence:

1. an explicit ``backend=`` argument,
2. the innermost ``use_backend(name)`` (a context manager, or a plain setter when not used in
   ``with``),
3. the ``TINYLORA_BACKEND`` environment variable,
4. numpy.

Random numbers are always drawn on the host with ``numpy.random.default_rng(seed)`` and then
moved with ``xp.asarray``, so NumPy and CuPy runs start from bit-identical numbers.
Asking for cupy where it cannot run raises `BackendError`; there is never a silent fall-back.
"""

from __future__ import annotations

import os
import zipfile
from types import ModuleType

import numpy as np

BACKENDS = ("numpy", "cupy")
DTYPES = ("float64", "float32")
ENV_VAR = "TINYLORA_BACKEND"

_active: list[str] = []  # stack of names set by use_backend; the last one wins


class BackendError(RuntimeError):
    """The requested backend cannot be used here (unknown name, CuPy missing, no device)."""


def _check_name(name: str, argument: str = "backend") -> str:
    if name not in BACKENDS:
        raise ValueError(f"{argument}: expected one of {list(BACKENDS)}, got {name!r}")
    return name


def backend_name(backend: str | None = None) -> str:
    """The name of the backend in force: explicit argument > use_backend > env var > numpy."""
    if backend is not None:
        return _check_name(backend)
    if _active:
        return _active[-1]
    env = os.environ.get(ENV_VAR)
    if env:
        return _check_name(env.strip().lower(), f"environment variable {ENV_VAR}")
    return "numpy"


def _import_cupy() -> ModuleType:
    try:
        import cupy  # noqa: PLC0415 (optional dependency, imported only when asked for)
    except ImportError as err:
        raise BackendError(
            "backend 'cupy' was requested but CuPy is not importable "
            f"({err}). Install it with: pip install 'tinylora[gpu-cuda12]' "
            "or 'tinylora[gpu-cuda13]' (matching your CUDA version)."
        ) from err
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken
        raise BackendError(f"backend 'cupy' was requested but CUDA is not usable: {err}") from err
    if n_devices < 1:
        raise BackendError("backend 'cupy' was requested but CuPy sees no CUDA device")
    return cupy


def get_xp(backend: str | None = None) -> ModuleType:
    """The array module (numpy or cupy) for `backend` (see the precedence above)."""
    name = backend_name(backend)
    return np if name == "numpy" else _import_cupy()


def cupy_available() -> tuple[bool, str]:
    """(True, "") when CuPy and a device are usable, else (False, the reason)."""
    try:
        _import_cupy()
    except BackendError as err:
        return False, str(err)
    return True, ""


class use_backend:  # noqa: N801 (reads as a function: `with use_backend("cupy"):`)
    """Select a backend: ``with use_backend("cupy"): ...``, or as a setter ``use_backend(name)``.

    The name is checked (and CuPy imported) immediately, so a bad choice fails where it is made.
    As a context manager the previous choice comes back on exit; as a plain call it stays set.
    """

    def __init__(self, name: str):
        get_xp(_check_name(name))  # fail now, not at the first array
        _active.append(name)
        self.name = name

    def __enter__(self) -> ModuleType:
        return get_xp(self.name)

    def __exit__(self, *exc) -> None:
        if self.name in _active:  # remove this choice (the last one made with this name)
            del _active[len(_active) - 1 - _active[::-1].index(self.name)]

    def __repr__(self) -> str:
        return f"use_backend({self.name!r})"


def reset_backend() -> None:
    """Forget every use_backend setting (the environment variable and numpy apply again)."""
    _active.clear()


def resolve_dtype(dtype) -> np.dtype:
    """'float64' (default) or 'float32' as a numpy dtype; anything else is an error."""
    if dtype is None:
        return np.dtype("float64")
    name = np.dtype(dtype).name if _is_dtype_like(dtype) else None
    if name not in DTYPES:
        raise ValueError(f"dtype: expected one of {list(DTYPES)}, got {dtype!r}")
    return np.dtype(name)


def _is_dtype_like(dtype) -> bool:
    try:
        np.dtype(dtype)
    except TypeError:
        return False
    return True


def xp_of(a) -> ModuleType:
    """The array module that owns array `a` (numpy for NumPy arrays and Python numbers)."""
    if type(a).__module__.startswith("cupy"):
        return get_xp("cupy")
    return np


def to_numpy(a) -> np.ndarray:
    """A NumPy copy of `a` (a no-op view for NumPy arrays; copies a CuPy array to the host)."""
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def asarray(a, xp: ModuleType, dtype=None):
    """`a` as an array of backend `xp` (float64 unless `dtype` says otherwise)."""
    return xp.asarray(a, dtype=resolve_dtype(dtype))


def host_rng(seed) -> np.random.Generator:
    """The host-side random generator every random draw goes through. `seed`: a Generator, an
    integer >= 0 (NumPy's too) or a list of them; anything else is a ValueError naming it."""
    if isinstance(seed, np.random.Generator):
        return seed
    parts = seed if isinstance(seed, (list, tuple)) else [seed]
    if not parts or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                        for s in parts):
        raise ValueError(f"seed: expected an integer >= 0 (or a numpy Generator), got {seed!r} "
                         f"({type(seed).__name__})")
    return np.random.default_rng(seed)


def normal(rng, shape, std: float, xp: ModuleType, dtype=None):
    """N(0, std^2) numbers of `shape`, drawn on the host and moved to backend `xp`."""
    z = host_rng(rng).standard_normal(shape) * std
    return xp.asarray(z.astype(resolve_dtype(dtype)))


def zeros(shape, xp: ModuleType, dtype=None):
    return xp.zeros(shape, dtype=resolve_dtype(dtype))


def is_finite_number(x) -> bool:
    """True for a finite Python/NumPy number (used to validate learning rates on the host)."""
    return bool(np.all(np.isfinite(np.asarray(to_numpy(x), dtype=float))))


def save_npz(path, arrays: dict) -> None:
    """Write named arrays (any backend) to an uncompressed .npz file on the host."""
    np.savez(path, **{k: to_numpy(v) for k, v in arrays.items()})


def load_npz(path) -> dict[str, np.ndarray]:
    """Read every array of a .npz file into host (NumPy) arrays. A file that is not one (empty,
    truncated, not a zip, a lone .npy array, pickled objects) is a ValueError naming it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: expected a .npz file, got {str(path)!r}: no such file")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not named arrays")
        with f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        why = "not a .npz archive" if "pickle" in str(err) else str(err) or type(err).__name__
        raise ValueError(f"path: expected a .npz file of named arrays (written by save), got "
                         f"{str(path)!r}, which cannot be read as one ({why})") from None


def finite_or_inf(value):
    """A loss moved to the host: a float (or a NumPy array for a stack) with NaN/inf as inf.

    A run whose loss is not finite has *diverged*; tinylora records it as an infinite loss.
    """
    host = np.asarray(to_numpy(value), dtype=float)
    host = np.where(np.isfinite(host), host, np.inf)
    return float(host) if host.ndim == 0 else host
