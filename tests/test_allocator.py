"""`tinylora.fast.allocator`: the command's malloc tuning takes effect on Linux with glibc, can be
switched off, and never raises elsewhere."""

import platform
import sys

import pytest

from tinylora.fast import allocator


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setitem(allocator._state, "tuned", False)


def test_env_var_default_leaves_malloc_alone(fresh_state, monkeypatch):
    """TINYLORA_MALLOC=default is the way out: nothing is changed and the call says so."""
    monkeypatch.setenv(allocator.ENV_VAR, "default")
    assert allocator.keep_freed_memory() is False
    assert allocator.is_tuned() is False


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt exists only in glibc")
def test_glibc_accepts_both_settings(fresh_state, monkeypatch):
    """On glibc both mallopt calls succeed (a value glibc rejects would return False here)."""
    monkeypatch.delenv(allocator.ENV_VAR, raising=False)
    assert allocator.keep_freed_memory() is True
    assert allocator.is_tuned() is True
