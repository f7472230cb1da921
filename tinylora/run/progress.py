"""Progress bars for long commands: tqdm when it is installed, silence otherwise.

A bar is shown unless the command got ``--no-progress`` or the environment says
``TQDM_DISABLE=1`` (read at call time, so tests and CI can switch every bar off).
"""

from __future__ import annotations

import os


class _Silent:
    """Stands in for a tqdm bar: iterates, counts, prints nothing."""

    def __init__(self, iterable=None, total=None, **_):
        self.iterable, self.total = iterable, total

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n=1):
        pass

    def refresh(self):
        pass

    def set_postfix_str(self, s="", refresh=True):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def enabled(show: bool = True) -> bool:
    """True when bars should be drawn: asked for, and TQDM_DISABLE is not set to a true value."""
    return show and os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("1", "true", "yes")


def bar(iterable=None, *, show: bool = True, **kwargs):
    """A tqdm bar over `iterable` (or a manual one with ``total=``), or a silent stand-in."""
    if not enabled(show):
        return _Silent(iterable, **kwargs)
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415 (optional dependency: the `plots` extra)
    except ImportError:
        return _Silent(iterable, **kwargs)
    return tqdm(iterable, dynamic_ncols=True, **kwargs)
