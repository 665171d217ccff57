"""Deadlines for many concurrent blocks of one length, on one timer between them.

`asyncio.timeout` arms and disarms a timer of its own on every use: at the Kafka sink's one
submit per beacon that was about a twentieth of its CPU (measured). Every submit waits at most
the same `timeout_s`, so their deadlines come in the order the submits began: a queue in that
order, and one timer for its oldest unfinished block, cancel each block that outlives its
deadline, which then raises TimeoutError as `asyncio.timeout` would.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class Deadlines:
    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._queue: deque[Bound] = deque()  # by deadline, as every block waits as long
        self._timer: asyncio.TimerHandle | None = None

    def bound(self) -> Bound:
        """`with deadlines.bound():` raises TimeoutError if the block outlives `timeout_s`."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.bound() outside a task")
        loop = asyncio.get_running_loop()
        bound = Bound(task, loop.time() + self._timeout_s)
        queue = self._queue
        while queue and queue[0].task is None:  # the finished ones, oldest first
            queue.popleft()
        queue.append(bound)
        if self._timer is None:
            self._timer = loop.call_at(bound.deadline, self._expire)
        return bound

    def _expire(self) -> None:
        self._timer = None
        # The loop's timers have a millisecond's grain: one may fire a little before its time.
        queue, now = self._queue, asyncio.get_running_loop().time() + 0.001
        while queue and (queue[0].task is None or queue[0].deadline <= now):
            queue.popleft().expire()
        if queue:
            self._timer = asyncio.get_running_loop().call_at(queue[0].deadline, self._expire)

    def close(self) -> None:
        """Stop the timer: blocks still open then run without a deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()


class Bound:
    """One block under a deadline; `task` is None once the block has ended."""

    __slots__ = ("_cancelling", "_expired", "deadline", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task: asyncio.Task[object] | None = task
        self.deadline = deadline
        self._cancelling = task.cancelling()  # cancellations asked before, not ours
        self._expired = False

    def expire(self) -> None:
        if self.task is not None:
            self._expired = True
            self.task.cancel()

    def __enter__(self) -> Bound:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        task, self.task = self.task, None
        # As asyncio.timeout: our cancellation becomes TimeoutError, anyone else's goes on.
        if self._expired and task is not None and task.uncancel() <= self._cancelling \
                and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
