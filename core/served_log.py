"""The scoring service's record of what it served, written off the request path.

A ranking answer hands its served list (and each shadow arm's would-be list) to `ServedRecorder.record`,
which only appends to a bounded in-memory queue; a thread writes the queue to the log's served-list
table in batches every `flush_s`. The scoring process opens no other table and reads nothing back:
ranking still reads only Feast and Triton. When the database is slow the queue fills and lists are
dropped (counted in shoprank_served_lists_dropped_total): a lost served list costs an attribution,
never a ranking answer.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Sequence

from core import background
from core.experiments.attribution import ServedList

logger = logging.getLogger(__name__)


class ServedRecorder:
    def __init__(self, write: Callable[[Sequence[ServedList]], None], flush_s: float = 0.2, capacity: int = 50000,
                 on_drop: Callable[[int], None] = lambda n: None) -> None:
        self.write = write
        self.flush_s = flush_s
        self.on_drop = on_drop
        self._queue: queue.Queue[ServedList] = queue.Queue(capacity)
        self._stop = threading.Event()
        self._thread = background.thread(self._loop, "served-recorder")
        self._thread.start()

    def record(self, served: ServedList) -> None:
        try:
            self._queue.put_nowait(served)
        except queue.Full:
            self.on_drop(1)

    def flush(self) -> int:
        """Write whatever is queued now; returns how many lists."""
        batch: list[ServedList] = []
        while len(batch) < 5000:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if batch:
            try:
                self.write(batch)
            except Exception as exc:  # noqa: BLE001 - requeued for the next flush (dropped, counted, once the queue is full)
                logger.warning("writing %d served lists failed (retrying): %s", len(batch), exc)
                for s in batch:
                    self.record(s)
                return -1
        return len(batch)

    def _loop(self) -> None:
        wait = self.flush_s
        while not self._stop.wait(wait):
            written = self.flush()
            while written >= 5000:
                written = self.flush()
            wait = min(wait * 2, 10.0) if written < 0 else self.flush_s  # a database that is down is retried slowly

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


def log_writer(url: str) -> Callable[[Sequence[ServedList]], None]:
    """Appends to the served-list table of the log at `url`, opened on first use (a scoring process
    whose log is unreachable still ranks; its lists wait in the queue)."""
    store: list[Any] = []  # the ServedStore once opened

    def write(lists: Sequence[ServedList]) -> None:
        if not store:
            from core.store import ServedStore, open_engine

            store.append(ServedStore(open_engine(url)))
        store[0].append(lists)

    return write
