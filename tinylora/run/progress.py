"""Progress for long commands: what the work is and how long it will take, said before it starts,
then one bar with the total and the time left.

    plan = Plan("balance", "root searches", {key: seconds, ...}, "a search at width 16 timed")
    plan.announce(show)                      # tinylora balance: 28 root searches; about 9 min here
    with plan.bar(show) as progress:         # balance 3/28 root searches  35%|###  | 02:10 left
        for key in plan.costs:
            work(key, progress.part(key))    # a tqdm-like counter for the unit's inner loop
            progress.done(key)

The seconds come from a *calibration*: a small piece of the command's own work timed on this
machine just before (`timed`), scaled to each unit by the work it does (more steps, a wider
model); never a constant. The bar's length is the estimated seconds, so the time left weighs
every unit by its cost, corrected as it goes by how fast the units actually finish.

A bar is drawn (by tqdm, when it is installed) unless the command got ``--no-progress`` or the
environment says ``TQDM_DISABLE=1`` (read at call time, so tests and CI can switch every bar
off); the plan's line is printed to stderr either way (it is one line, and it says what a run
in a log did).
"""

from __future__ import annotations

import os
import shutil
import sys
import time

WIDTH = 100  # columns: no bar or line of a command is wider


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

    def set_description_str(self, s="", refresh=True):
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
    """A tqdm bar over `iterable` (or a manual one with ``total=``), or a silent stand-in; never
    wider than 100 columns."""
    if not enabled(show):
        return _Silent(iterable, **kwargs)
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415 (optional dependency: the `plots` extra)
    except ImportError:
        return _Silent(iterable, **kwargs)
    kwargs.setdefault("ncols", min(WIDTH, shutil.get_terminal_size().columns))
    kwargs.setdefault("disable", False)  # TQDM_DISABLE is read above, now; tqdm reads it at import
    return tqdm(iterable, **kwargs)


def timed(fn) -> float:
    """Seconds one call of `fn` takes here (wall clock): a calibration."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def duration(seconds: float) -> str:
    """'8 s', '4 min', '1.3 h': a time said the way a person plans with it."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class Plan:
    """A long command's work, said before it starts: named units (`costs`: key -> estimated
    seconds here), `unit` their name in the plural, `basis` what was timed to estimate them.
    `done`: keys already finished (by a previous run, or by the calibration itself): not
    redone. `at_least`: the estimate is a lower bound (a search that grows until it brackets
    its answer makes at least the work counted)."""

    def __init__(self, command: str, unit: str, costs: dict, basis: str, done=(),
                 at_least: bool = False):
        self.command, self.unit, self.basis, self.at_least = command, unit, basis, at_least
        self.costs = {k: max(float(v), 1e-9) for k, v in costs.items()}
        self.done = [k for k in done if k in self.costs]

    def seconds(self) -> float:
        """The estimated seconds of the units still to do."""
        return sum(v for k, v in self.costs.items() if k not in self.done)

    def line(self) -> str:
        """tinylora <command>: <n> <units>; about <time> here (<basis>), within 100 columns."""
        count = f"{len(self.costs) - len(self.done)} {self.unit}"
        if self.done:
            count += f" ({len(self.done)} more done already)"
        about = "at least" if self.at_least else "about"
        head = f"tinylora {self.command}: {count}; {about} {duration(self.seconds())} here"
        line = f"{head} ({self.basis})"
        return line if len(line) <= WIDTH else f"{head}\n  ({self.basis})"

    def announce(self) -> str:
        """Print `line` to stderr (before the work starts). -> the line."""
        text = self.line()
        print(text, file=sys.stderr, flush=True)
        return text

    def bar(self, show: bool = True) -> Progress:
        return Progress(self, show)


class Progress:
    """One bar over a `Plan`: its length the plan's estimated seconds, so that the time left
    weighs each unit by its cost; the units finished and their total in front."""

    FORMAT = "{desc} {percentage:3.0f}%|{bar}| {elapsed} elapsed, {remaining} left"

    def __init__(self, plan: Plan, show: bool = True):
        self.plan, self.finished, self.credited = plan, list(plan.done), {}
        self.tqdm = bar(total=plan.seconds() or 1e-9, show=show, bar_format=self.FORMAT,
                        leave=False)
        self._describe()

    def _describe(self) -> None:
        total = len(self.plan.costs)
        self.tqdm.set_description_str(f"{self.plan.command} {len(self.finished)}/{total} "
                                      f"{self.plan.unit}", refresh=False)

    def _credit(self, key, seconds: float) -> None:
        self.credited[key] = self.credited.get(key, 0.0) + seconds
        total = getattr(self.tqdm, "total", None)
        if total is not None and getattr(self.tqdm, "n", 0) + seconds > total:
            self.tqdm.total = (self.tqdm.n + seconds) * 1.05  # the plan was short: grow it
        self.tqdm.update(seconds)

    def part(self, key, units: int | None = None) -> _Part:
        """A tqdm-like counter for the inner loop of unit `key` (`update(n)`, a `total` that the
        loop may grow): its `units` share the unit's estimated seconds."""
        return _Part(self, key, units)

    def done(self, key) -> None:
        """Unit `key` finished: the rest of its estimate is credited, the count goes up (a key
        the plan does not hold, or one already finished, changes nothing)."""
        if key in self.finished or key not in self.plan.costs:
            return
        self._credit(key, max(0.0, self.plan.costs[key] - self.credited.get(key, 0.0)))
        self.finished.append(key)
        self._describe()
        self.tqdm.refresh()

    def add(self, key, seconds: float) -> None:
        """A unit the plan did not count (a search that grew past it): it joins the plan, and
        its estimate the bar's total."""
        if key not in self.plan.costs:
            self.plan.costs[key] = max(float(seconds), 1e-9)
            if getattr(self.tqdm, "total", None) is not None:
                self.tqdm.total += self.plan.costs[key]
            self._describe()

    def update(self, n: int = 1) -> None:
        """The next `n` units, in the plan's order, finished (for a loop that only counts)."""
        for key in [k for k in self.plan.costs if k not in self.finished][:n]:
            self.done(key)

    def close(self) -> None:
        self.tqdm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Part:
    """The inner counter of one unit, shaped like a tqdm bar for the lab's loops
    (`tinylora.lab.grid.train_cells` calls ``update(n)``). A search that grows sets ``total``:
    the unit's estimate grows in proportion, and so does the bar."""

    def __init__(self, progress: Progress, key, units):
        self.progress, self.key, self.n, self._total = progress, key, 0, units

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, units) -> None:
        plan, bar = self.progress.plan, self.progress.tqdm
        if self._total and units and units > self._total:
            extra = plan.costs[self.key] * (units / self._total - 1)
            plan.costs[self.key] += extra
            if getattr(bar, "total", None) is not None:
                bar.total += extra
        self._total = units

    def update(self, n: int = 1) -> None:
        if self._total and self.n + n > self._total:  # more than counted: the unit grows
            self.total = self.n + n
        if self._total:
            share = min(n, max(0, self._total - self.n)) / self._total
            self.progress._credit(self.key, self.progress.plan.costs[self.key] * share * 0.98)
        self.n += n

    def refresh(self) -> None:
        pass

    def set_postfix_str(self, s="", refresh=True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
