"""The array backend: which one is used, what happens when CuPy is missing, and seeded numbers."""

import numpy as np
import pytest

from tinylora import backend
from tinylora.backend import BackendError, get_xp, use_backend
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig


def test_numpy_is_the_default():
    """With nothing chosen, the backend is NumPy: the library runs anywhere."""
    assert backend.backend_name() == "numpy"
    assert get_xp() is np


def test_env_variable_selects_the_backend(monkeypatch):
    """TINYLORA_BACKEND is read when nothing more specific was chosen."""
    monkeypatch.setenv("TINYLORA_BACKEND", "numpy")
    assert backend.backend_name() == "numpy"
    monkeypatch.setenv("TINYLORA_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="TINYLORA_BACKEND.*'numpy', 'cupy'.*tensorflow"):
        backend.backend_name()


def test_precedence_argument_over_context_over_env(monkeypatch):
    """An explicit argument beats use_backend, which beats the environment variable."""
    monkeypatch.setenv("TINYLORA_BACKEND", "cupy")
    assert backend.backend_name() == "cupy"  # the env variable alone
    with use_backend("numpy"):
        assert backend.backend_name() == "numpy"  # the context beats the env
        assert backend.backend_name("cupy") == "cupy"  # the argument beats the context
    assert backend.backend_name() == "cupy"  # the context is gone on exit


def test_use_backend_works_as_a_plain_setter():
    """use_backend(name) without `with` keeps the choice until reset."""
    use_backend("numpy")
    assert backend.backend_name() == "numpy"
    backend.reset_backend()


def test_unknown_backend_lists_the_valid_ones():
    """A typo names the argument, the valid choices and what was given."""
    expected = r"backend: expected one of \['numpy', 'cupy'\], got 'jax'"
    with pytest.raises(ValueError, match=expected):
        get_xp("jax")
    with pytest.raises(ValueError, match="backend"):
        LoRAMLP(MLPConfig(4, 8, 2), LoRAConfig(r=2), backend="torch")


def test_cupy_where_it_cannot_run_is_an_error_not_a_fallback():
    """Asking for cupy without CuPy or a GPU raises, naming the install extra; never numpy."""
    ok, reason = backend.cupy_available()
    if ok:
        pytest.skip("CuPy and a device are present here")
    with pytest.raises(BackendError, match="cupy") as err:
        get_xp("cupy")
    assert "gpu-cuda" in str(err.value) or "CUDA" in str(err.value) or "device" in str(err.value)
    with pytest.raises(BackendError):
        use_backend("cupy")
    assert backend.backend_name() == "numpy"  # the failed choice left nothing behind


def test_same_seed_gives_bit_identical_models():
    """Random numbers come from numpy.random.default_rng(seed) on the host: runs reproduce."""
    config, lora = MLPConfig(6, 10, 3), LoRAConfig(r=2, init="zero_A")
    a = LoRAMLP(config, lora, seed=42)
    b = LoRAMLP(config, lora, seed=42)
    c = LoRAMLP(config, lora, seed=43)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["fc1.W"], c.params["fc1.W"])


def test_unknown_dtype_lists_the_valid_ones():
    """Only float64 (default) and float32 are supported; say so."""
    expected = r"dtype: expected one of \['float64', 'float32'\], got 'int8'"
    with pytest.raises(ValueError, match=expected):
        backend.resolve_dtype("int8")
    assert backend.resolve_dtype(None) == np.float64
    assert backend.resolve_dtype(np.float32) == np.float32


def test_to_numpy_returns_a_host_array():
    """to_numpy is how results leave the backend (a no-op for NumPy arrays)."""
    a = np.arange(3.0)
    assert backend.to_numpy(a) is a or np.array_equal(backend.to_numpy(a), a)


def test_gpu_and_cpu_draw_identical_numbers(xp_name):
    """The same seed gives the same numbers on every backend (drawn on the host, then moved)."""
    xp = get_xp(xp_name)
    a = backend.to_numpy(backend.normal(7, (3, 4), 1.0, xp))
    b = np.random.default_rng(7).standard_normal((3, 4))
    assert np.array_equal(a, b)
