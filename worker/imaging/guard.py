"""Bounds on one render: a wall-clock deadline that stops libvips itself
(the memory budget: worker.core.budget).

The deadline works inside libvips: each image of the render (the loader's output, the resized base, the
encoder's input) is registered, and a timer thread sets their kill flags when time is up. libvips then
fails every further region request on them with "killed", so a decode stops within one strip instead of
running to the end in a thread nobody waits for (measured: a 25-MP PNG whose render takes 1.3 s stops
about 0.1 s after a 0.2 s deadline). We tried the ``eval`` progress signal first: libvips emits it once
per *output* work unit of the image being written, and a 256-px thumbnail of a 25-MP PNG is a single unit
that completes only when the whole decode has, so the signal arrives too late to stop anything and cost
~10% throughput in callbacks. A codec that does all its work in one library call (an AVIF encode) is
only stopped at its end.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from worker.core.budget import MemoryBudget, budget_for
from worker.core.errors import RenderTimeout

__all__ = ["Deadline", "MemoryBudget", "budget_for"]


class Deadline:
    """Use as ``with Deadline(seconds) as deadline: ... deadline.watch(image)``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self._images: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True
        self.killed = False

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._timer.cancel()
        with self._lock:
            self._images.clear()

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def check(self, what: str) -> None:
        if self.expired:
            raise RenderTimeout(f"{what}: over the {self.seconds:g} s time limit")

    def watch(self, image: Any) -> Any:
        """Register ``image`` to be killed at the deadline (at once if it has passed); return it.

        An image made after the deadline (the output of a decoder that libvips cannot stop, such as
        libheif's in imaging/heif.py) is killed on registration, so its first libvips step fails.
        """
        with self._lock:
            self._images.append(image)
        if self.expired:
            self._kill(image)
        return image

    def expire(self) -> None:
        """End the time now (the timer calls this at the deadline): kill every image watched so far, and
        those watched from now on as they are registered."""
        self._end = min(self._end, time.monotonic())
        with self._lock:
            images = list(self._images)
        for image in images:
            self._kill(image)

    def _kill(self, image: Any) -> None:
        self.killed = True
        image.set_kill(True)
