"""The online features of acknowledged events, refreshed off the RecordEvents call.

RecordEvents answers once its events are durable in the log. Refreshing what they change (each shopper's
row, their items' popularity, then the shopper state) costs several times the append's CPU (~1.5 ms per
shopper on the shop-like log, against well under 0.1 ms per event for the append), so it runs here, on one
thread, in passes that take every batch queued meanwhile: a shopper in five queued batches is read once.

A caller waits for the pass that covers its batch when the refresher is expected to reach it within
`wait_s` (the usual case, and read-your-writes: the Rank after a click sees it). When the refresher is
further behind, waiting would only cap ingest at the refresh rate, so the caller is answered at once and
told that its features are pending; they follow without a retry. Nothing is lost either way: the log is
the truth and every pass re-reads it. A failed pass is retried until it succeeds (its waiting callers get
the error: they answer UNAVAILABLE, and a retried batch is safe). The backlog is bounded in time: while it
would take longer than `max_lag_s` to clear, submitting waits (backpressure), so a process that dies with
a backlog leaves at most that much unrefreshed, and `catch_up` at the next start re-reads the shoppers of
every event received in a window several times longer.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from core import background
from core.domain import Event
from core.feature_sync import FeatureSync

logger = logging.getLogger(__name__)

MAX_LAG_S = 30.0  # a backlog that would take longer to clear holds new batches back
CATCH_UP_S = 120.0  # a starting process re-reads the shoppers of events received this long before it
PASS_SHOPPERS = 1000  # at most this many shoppers per pass (one batched log read and one online write)
FIRST_COST_S = 0.002  # seconds per shopper assumed until a pass has been timed
HARD_WAIT_S = 10.0  # a caller that chose to wait gives up after this, however wrong the estimate was
RETRY_S = (0.5, 30.0)  # a failed pass is retried after this, doubling up to the second figure


@dataclass(eq=False)
class Ticket:
    """One group of batches' refresh: its shoppers, items and stored events, and when it is done."""
    users: frozenset[str]
    items: frozenset[str]
    fresh: list[Event]
    eta_s: float = 0.0  # the refresher's estimate, when submitted, of how long until it is done
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class FeatureRefresher:
    def __init__(self, sync: FeatureSync, wait_s: float, max_lag_s: float = MAX_LAG_S, pass_shoppers: int = PASS_SHOPPERS) -> None:
        self.sync = sync
        self.wait_s = wait_s
        self.max_lag_s = max_lag_s
        self.pass_shoppers = pass_shoppers
        self._cv = threading.Condition()
        self._queue: list[Ticket] = []
        self._queued_users: set[str] = set()  # every shopper of the queue, each once
        self._running: Ticket | None = None  # the pass now running (the tickets it took, merged)
        self._running_ends = 0.0  # monotonic time the running pass is expected to end
        self._cost_s = FIRST_COST_S  # seconds per shopper, a moving average over passes
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.failures = 0

    def start(self) -> None:
        self._thread = background.thread(self._loop, "feature-refresh")
        self._thread.start()

    def submit(self, fresh: Sequence[Event], users: Iterable[str], items: Iterable[str]) -> Ticket:
        """Queue a refresh of `users` and `items` (`fresh`: the events just stored, which let a known
        shopper's row be merged instead of read); waits first while the backlog exceeds max_lag_s."""
        ticket = Ticket(frozenset(users), frozenset(items), list(fresh))
        with self._cv:
            while self._lag_locked() > self.max_lag_s:
                self._cv.wait(1.0)
            self._queue.append(ticket)
            self._queued_users |= ticket.users
            ticket.eta_s = self._lag_locked()
            self._cv.notify_all()
        return ticket

    def refreshed(self, ticket: Ticket) -> bool:
        """Whether the ticket's features are refreshed when this returns: waits for it when the estimate
        says it will be within wait_s, else answers at once. Raises the error of a failed pass it waited for."""
        if not ticket.done.is_set() and (self.wait_s <= 0 or ticket.eta_s > self.wait_s):
            return False
        if not ticket.done.wait(HARD_WAIT_S):
            return False
        if ticket.error is not None:
            raise ticket.error
        return True

    def catch_up(self, users: Sequence[str]) -> None:
        """Refresh `users` with no caller waiting (a starting process passes the shoppers of events a
        process that died may have acknowledged without refreshing)."""
        for start in range(0, len(users), self.pass_shoppers):
            self.submit((), users[start : start + self.pass_shoppers], ())

    def drain(self, timeout_s: float = MAX_LAG_S) -> bool:
        """Wait until everything submitted is refreshed (a stopping process calls this after its server
        stopped taking calls); False if `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self._queue or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning("feature refresh: %d shoppers still queued at stop", len(self._queued_users))
                    return False
                self._cv.wait(min(left, 0.5))
        return True

    def backlog(self) -> int:
        """Shoppers queued, not yet in a pass."""
        with self._cv:
            return len(self._queued_users)

    def _lag_locked(self) -> float:
        """Seconds until everything queued now is refreshed, by the moving average cost."""
        running = max(0.0, self._running_ends - time.monotonic()) if self._running is not None else 0.0
        return running + len(self._queued_users) * self._cost_s

    def _take_locked(self) -> list[Ticket]:
        """The oldest tickets, up to pass_shoppers shoppers (at least one ticket)."""
        taken: list[Ticket] = []
        users: set[str] = set()
        while self._queue and (not taken or len(users | self._queue[0].users) <= self.pass_shoppers):
            ticket = self._queue.pop(0)
            taken.append(ticket)
            users |= ticket.users
        self._queued_users = set().union(*(t.users for t in self._queue)) if self._queue else set()
        return taken

    def _loop(self) -> None:
        failures = 0
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                taken = self._take_locked()
                users = frozenset().union(*(t.users for t in taken))
                merged = Ticket(users, frozenset().union(*(t.items for t in taken)), [e for t in taken for e in t.fresh])
                self._running = merged
                self._running_ends = time.monotonic() + len(users) * self._cost_s
            started = time.perf_counter()
            error: BaseException | None = None
            full = False
            try:
                full = self.sync.after_batch(merged.users, merged.items, merged.fresh)
            except Exception as exc:  # noqa: BLE001 - the events are in the log; the pass is retried
                error = exc
            seconds = time.perf_counter() - started
            with self._cv:
                self._running = None
                self.passes += 1
                if error is None:
                    failures = 0
                    if not full:  # a pass that ran the process's first full refresh says nothing about shoppers
                        self._cost_s = 0.7 * self._cost_s + 0.3 * seconds / max(1, len(users))
                else:
                    failures += 1
                    self.failures += 1
                    self._queue.insert(0, merged)  # first in the next pass, with nobody waiting on it
                    self._queued_users |= merged.users
                for ticket in taken:
                    ticket.error = error
                    ticket.done.set()
                self._cv.notify_all()
            if error is not None:
                pause = min(RETRY_S[1], RETRY_S[0] * 2 ** (failures - 1))
                logger.error("feature refresh of %d shoppers failed (%s); retrying in %.1fs", len(users), error, pause)
                time.sleep(pause)
