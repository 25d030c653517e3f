"""Group commit: concurrent callers' work done together, one caller at a time doing it for all.

A caller submits its item and waits; whoever finds no flush running becomes the leader, takes every
item submitted so far and runs `flush` on them at once (one transaction, one push), then wakes the
others with their own results. Under load each flush covers many callers, so the cost per caller falls
as concurrency rises; alone, a caller flushes just its own item. If a flush raises, every caller it
covered gets that exception, and none of their items counts as done.
"""
from __future__ import annotations

import threading
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, flush: Callable[[Sequence[T]], Sequence[R]]) -> None:
        self._flush = flush  # items in submission order -> one result per item
        self._cv = threading.Condition()
        self._pending: list[tuple[int, T]] = []
        self._submitted = 0
        self._completed = 0
        self._busy = False
        self._results: dict[int, tuple[bool, object]] = {}  # ticket -> (ok, result or exception)

    def submit(self, item: T) -> R:
        with self._cv:
            self._submitted += 1
            ticket = self._submitted
            self._pending.append((ticket, item))
            while self._completed < ticket:
                if self._busy:
                    self._cv.wait()
                    continue
                self._busy = True  # this caller flushes for everyone waiting
                group, self._pending = self._pending, []
                upto = self._submitted
                self._cv.release()
                try:
                    outcome: list[tuple[bool, object]]
                    try:
                        results = self._flush([it for _, it in group])
                        outcome = [(True, r) for r in results]
                    except BaseException as exc:  # noqa: BLE001 - handed to every caller of this group
                        outcome = [(False, exc)] * len(group)
                finally:
                    self._cv.acquire()
                self._results.update({t: o for (t, _), o in zip(group, outcome)})
                self._completed = upto
                self._busy = False
                self._cv.notify_all()
            ok, value = self._results.pop(ticket)
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]
