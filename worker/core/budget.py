"""The process-wide memory budget: bytes that downloads and renders may hold at once.

Two kinds of holder share one budget:

* a **message** (the pipeline, on the event loop) reserves its source's size before the body is read and
  keeps that reservation until its render has finished (the bytes stay in memory until then);
* a **render** (a thread of the render pool) needs its decode estimate on top.

A render that runs inside a message's reservation never *waits* for more: it grows the reservation if the
budget has room at that moment, or raises :class:`MemoryBusy`. The pipeline then drops the bytes, gives
the reservation back, waits (holding nothing) for the whole amount, downloads again and renders within it.
Nobody ever waits while holding memory, so holders cannot deadlock each other, and the sum of what is held
never exceeds the budget. A render without a message (``thumbx render``) waits in its thread as before.
An amount above the whole budget can never fit and is refused (permanent ``image_too_large``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from worker.core.errors import ImageTooLarge, TransientError


class MemoryBusy(TransientError):
    """A render inside a reservation needs ``needed`` more bytes than the budget has free right now."""

    reason = "memory_busy"

    def __init__(self, needed: int) -> None:
        super().__init__(f"the memory budget cannot hold another {needed // 2**20} MiB right now")
        self.needed = needed


class Reservation:
    """Bytes one message holds in a :class:`MemoryBudget`; grows without waiting, or raises MemoryBusy."""

    def __init__(self, budget: MemoryBudget, amount: int) -> None:
        self.budget = budget
        self.amount = amount
        self.spare = 0  # reserved ahead for the render (the second attempt's estimate)

    def grow(self, extra: int) -> None:
        if extra <= 0:
            return
        if self.amount + extra > self.budget.total:
            raise ImageTooLarge(self.budget.refusal(self.amount + extra))
        if not self.budget.try_take(extra):
            raise MemoryBusy(extra)
        self.amount += extra

    def shrink_to(self, amount: int) -> None:
        """Give back what is held above ``amount`` (the read buffer once the body is one bytes object)."""
        if amount < self.amount:
            self.budget.release(self.amount - amount)
            self.amount = amount

    @contextmanager
    def render(self, needed: int) -> Iterator[None]:
        """Hold ``needed`` more bytes for the length of a render (from ``spare`` if reserved ahead)."""
        extra = max(0, needed - self.spare)
        self.grow(extra)
        try:
            yield
        finally:
            if extra:
                self.budget.release(extra)
                self.amount -= extra


_current: contextvars.ContextVar[Reservation | None] = contextvars.ContextVar(
    "thumbx_reservation", default=None
)


def current_reservation() -> Reservation | None:
    """The reservation of the message whose render runs in this context (None outside the pipeline)."""
    return _current.get()


def with_reservation(reservation: Reservation) -> contextvars.Context:
    """A context to run a render in (``loop.run_in_executor(pool, context.run, render, ...)``)."""
    context = contextvars.copy_context()
    context.run(_current.set, reservation)
    return context


class MemoryBudget:
    """A byte count with blocking (thread) and awaitable (event loop) acquisition."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def refusal(self, amount: int) -> str:
        return f"needs about {amount // 2**20} MiB, over the {self.total // 2**20} MiB memory budget"

    def try_take(self, amount: int) -> bool:
        with self._cond:
            if self.in_use + amount > self.total:
                return False
            self.in_use += amount
            return True

    def release(self, amount: int) -> None:
        with self._cond:
            self.in_use -= amount
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                loop.call_soon_threadsafe(_wake, future)

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        """Wait in this thread until ``amount`` fits, hold it for the block."""
        if amount > self.total:
            raise ImageTooLarge(self.refusal(amount))
        with self._cond:
            self._cond.wait_for(lambda: self.in_use + amount <= self.total)
            self.in_use += amount
        try:
            yield
        finally:
            self.release(amount)

    @asynccontextmanager
    async def reserve(self, amount: int, *, spare: int = 0) -> AsyncIterator[Reservation]:
        """Wait on the event loop (holding nothing) until ``amount + spare`` fits; hold it for the block."""
        total = amount + spare
        if total > self.total:
            raise ImageTooLarge(self.refusal(total))
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self.in_use + total <= self.total:
                    self.in_use += total
                    break
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            try:
                await future
            finally:
                with self._cond:
                    if (loop, future) in self._waiters:
                        self._waiters.remove((loop, future))
        reservation = Reservation(self, total)
        reservation.spare = spare
        try:
            yield reservation
        finally:
            self.release(reservation.amount)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_budgets: dict[int, MemoryBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(total: int) -> MemoryBudget:
    """The process-wide budget of that size (one per configured size; normally exactly one)."""
    with _budgets_lock:
        budget = _budgets.get(total)
        if budget is None:
            budget = _budgets[total] = MemoryBudget(total)
        return budget
