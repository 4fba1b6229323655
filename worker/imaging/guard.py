"""Bounds on one render: a wall-clock deadline that stops libvips itself, and a process-wide memory budget.

The deadline works inside libvips: every image we evaluate gets progress reporting switched on, and the
``eval`` signal (emitted once per work unit, typically a strip or a 128x128 tile) checks the clock and sets
the image's kill flag once time is up, which makes libvips abandon the computation with an error. So a slow
decode stops within one work unit rather than running to the end in a thread nobody waits for. (A codec
that does all its work in one library call, e.g. an AVIF encode, is only stopped at its end.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from worker.errors import ImageTooLarge, RenderTimeout


class Deadline:
    def __init__(self, seconds: float, *, clock: Any = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds
        self.killed = False

    @property
    def expired(self) -> bool:
        return bool(self._clock() >= self._end)

    def check(self, what: str) -> None:
        if self.expired:
            raise RenderTimeout(f"{what}: over the {self.seconds:g} s time limit")

    def watch(self, image: Any) -> Any:
        """Arrange for libvips to stop evaluating ``image`` once the deadline has passed; returns it."""

        def on_eval(target: Any, _progress: Any) -> None:
            if not self.killed and self.expired:
                self.killed = True
                target.set_kill(True)

        image.set_progress(True)
        image.signal_connect("eval", on_eval)
        return image


class MemoryBudget:
    """Bytes that concurrent renders may hold at once: a render waits until its estimate fits.

    An estimate above the whole budget can never fit and is refused (permanent), so no image is admitted
    that could exceed the container's memory, however many renders run side by side.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        if amount > self.total:
            raise ImageTooLarge(
                f"needs about {amount // 2**20} MiB to decode, over the {self.total // 2**20} MiB budget"
            )
        with self._cond:
            self._cond.wait_for(lambda: self.in_use + amount <= self.total)
            self.in_use += amount
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= amount
                self._cond.notify_all()


_budgets: dict[int, MemoryBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(total: int) -> MemoryBudget:
    """The process-wide budget of that size (one per configured size; normally exactly one)."""
    with _budgets_lock:
        budget = _budgets.get(total)
        if budget is None:
            budget = _budgets[total] = MemoryBudget(total)
        return budget
