"""Shared fixtures. Tests that need CuPy and a CUDA device are marked `gpu` and are skipped,
with the reason, wherever those are missing (CI has no GPU)."""

import pytest

from tinylora import backend


def pytest_collection_modifyitems(config, items):
    ok, reason = backend.cupy_available()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"gpu test: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_backend(monkeypatch):
    """Every test starts on the default backend: no use_backend left over, no env variable."""
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    backend.reset_backend()
    yield
    backend.reset_backend()


BACKENDS = [pytest.param("numpy"), pytest.param("cupy", marks=pytest.mark.gpu)]


@pytest.fixture(params=BACKENDS)
def xp_name(request):
    """Run a test once per backend: numpy always, cupy where a device is present."""
    return request.param
