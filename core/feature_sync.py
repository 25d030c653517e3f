"""Online features derived from the event log: what the feedback service pushes after each event batch
and what a full refresh rewrites. The log is the system of record; everything here can be rebuilt
from it, so a retried or replayed batch converges to the same features."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

from core import background
from core.domain import HISTORY_LENGTH, INTEREST_EVENTS, WINDOW_7D, WINDOW_30D, Event
from core.features import FeatureClient, UserFeatures
from core.store import EventLog

logger = logging.getLogger(__name__)

INTEREST_LIMIT = 2000  # interest events per shopper for the repeat / recency signals
POPULAR_ITEMS = 200  # the shop's popular list (retrieval's fallback; Recommend retrieves 200)
ItemKey = TypeVar("ItemKey", str, int)  # item ids as served, or item indices in the evaluation harnesses
TRENDING_ITEMS = 500  # the shop's trending list (Trending filters it by the request's rules)
TRENDING_MIN_7D = 3  # interest events in 7 days before an item can trend (one shopper's clicks are noise)
ROW_CACHE_EVENTS = 250_000  # interest events kept in memory across every remembered shopper (~60 MB at most)

Interest = tuple[str, str, float, str]  # (item_id, event_type, ts, event_id), as EventStore.recent_events_many


class ShopperRows:
    """The interest events behind each shopper's row as this process last pushed it, with the log's counts
    they were read with. A shopper's next batch merges its new events into them instead of reading up to
    INTEREST_LIMIT events again (the read was a quarter of the feedback service's CPU under the shop-like
    load, and a frequent shopper is both the longest history and the most frequent batch). The log stays
    the truth: a merge is taken only when the log's counts, read after the append, equal the remembered
    counts plus this batch's new events, so whatever else wrote or deleted this shopper's events (another
    feedback replica, an erasure, retention) sends them to a full read."""

    def __init__(self, max_events: int = ROW_CACHE_EVENTS) -> None:
        self.max_events = max_events
        self._rows: OrderedDict[str, tuple[int, int, list[Interest]]] = OrderedDict()  # least recently used first
        self._events = 0

    def merged(self, user_id: str, new: Sequence[Event], counts: tuple[int, int, float]) -> list[Interest] | None:
        """Their newest INTEREST_LIMIT interest events with `new` (this batch's stored events of theirs)
        merged in, or None when they must be read from the log."""
        known = self._rows.get(user_id)
        if known is None:
            return None
        n_interest, n_purchases, interests = known
        liked = [e for e in new if e.event_type in INTEREST_EVENTS]
        bought = sum(e.event_type == "purchase" for e in new)
        if (n_interest + len(liked), n_purchases + bought) != counts[:2]:
            return None
        if not liked:
            return interests
        # A full read can already hold an event whose count it missed: this process appended it between the
        # pass's count and its interest read, and the event comes again as the next pass's fresh. Keep it once.
        held = {r[3] for r in interests}
        merged = interests + [(e.item_id, e.event_type, float(e.timestamp), e.event_id) for e in liked if e.event_id not in held]
        merged.sort(key=lambda r: (r[2], r[3]), reverse=True)  # the log's order: ts, then event id, newest first
        return merged[:INTEREST_LIMIT]

    def remember(self, user_id: str, counts: tuple[int, int, float], interests: list[Interest]) -> None:
        self.forget(user_id)
        self._rows[user_id] = (counts[0], counts[1], interests)
        self._events += len(interests)
        while self._events > self.max_events and self._rows:
            _, (_, _, dropped) = self._rows.popitem(last=False)
            self._events -= len(dropped)

    def forget(self, user_id: str) -> None:
        known = self._rows.pop(user_id, None)
        if known is not None:
            self._events -= len(known[2])

    def __len__(self) -> int:
        return len(self._rows)


def trending(pop30: Mapping[ItemKey, int], pop7: Mapping[ItemKey, int], hidden: Iterable[ItemKey] = (),
             limit: int = TRENDING_ITEMS) -> list[tuple[ItemKey, float]]:
    """Items whose 7-day interest rose most against their 30-day rate: (n7 / 8 days) / ((n30 + 1) / 31
    days), the windows of WINDOW_7D and WINDOW_30D: 1.0 is a steady item, at most ~3.9 (all of its 30 days in the last 7)."""
    skip = set(hidden)
    scores = {i: (n / 8.0) / ((pop30.get(i, n) + 1) / 31.0) for i, n in pop7.items() if n >= TRENDING_MIN_7D and i not in skip}
    return [(i, round(s, 4)) for i, s in sorted(scores.items(), key=lambda x: (-x[1], -pop7[x[0]], x[0]))[:limit]]


class FeatureSync:
    """Pushes the features an event batch changed; refreshes every item's popularity and the shop's
    popular list at most every `refresh_s` (the windows slide with the clock).

    Refreshes run one at a time: each reads the log when it runs, so a later refresh never pushes older
    state over a newer one. Concurrent callers that want their batches coalesced go through a group
    commit first (the feedback service's ingest does: one refresh per group of batches)."""

    def __init__(self, log: EventLog, features: FeatureClient, refresh_s: float = 30.0,
                 timer: Callable[[], float] = time.monotonic,
                 on_users: Callable[[dict[str, UserFeatures]], None] = lambda rows: None) -> None:
        self.log = log
        self.features = features
        self.refresh_s = refresh_s
        self.on_users = on_users  # told each pushed shopper row (the shopper-state writer encodes them)
        self.timer = timer  # what the throttle measures (a replay of history passes the shop's own time)
        self._lock = threading.Lock()  # pushes of popularity and shopper rows
        self._refresh_lock = threading.Lock()
        self._wake: threading.Event | None = None  # set by start_refresher: full refreshes off the request path
        self._touched: set[str] | None = None  # items event batches pushed while a full refresh read the log
        self._last_full = float("-inf")
        self._pushed_items: set[str] = set()  # items whose pushed popularity may be non-zero
        self._rows = ShopperRows()
        self._rows_lock = threading.Lock()  # users() runs under _lock from batches, without it from backfills
        self.merged_rows = 0  # shopper rows merged instead of read from the log (tests read it)
        # False: this process never runs the log-wide refresh (another process of the service does)
        self.full_refreshes = True

    def users(self, user_ids: Iterable[str], fresh: Mapping[str, Sequence[Event]] | None = None) -> None:
        """Rebuild each shopper's history and interest features from the log. With `fresh` (the events an
        append just stored, by shopper; after_batch passes them), a shopper this process pushed before
        gets those merged into what it pushed then (ShopperRows says when that equals a full read).
        Erased shoppers are not written back (core.store.erasures): those erased before this read are
        left out unless they have events since; those erased while it ran are erased again from the
        online store after the write."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        started = time.time()
        erased = self.log.erasures.erased_at_map(ids)
        # the counts before the events: another writer's concurrent append then fails the next merge; this process's
        # own comes back as the next pass's fresh, and ShopperRows.merged keeps it once
        counts = self.log.events.user_counts_many(ids)
        interests: dict[str, list[Interest]] = {}
        with self._rows_lock:
            for user_id in ids:
                merged = None
                if fresh is not None and user_id not in erased:
                    merged = self._rows.merged(user_id, fresh.get(user_id, ()), counts[user_id])
                if merged is not None:
                    interests[user_id] = merged
                    self.merged_rows += 1
        unread = [u for u in ids if u not in interests and u not in erased]  # the erased are read below, from their erasure on
        if unread:
            interests.update(self.log.events.recent_events_many(unread, INTEREST_LIMIT))  # newest first; the text reads the head
        for user_id, at in erased.items():  # only what they did after their erasure (its deletes may still run)
            after = [e for e in self.log.events.of_user(user_id) if e.timestamp > at]
            liked = sorted((e for e in after if e.event_type in INTEREST_EVENTS), key=lambda e: (-e.timestamp, e.event_id))
            interests[user_id] = [(e.item_id, e.event_type, e.timestamp, e.event_id) for e in liked[:INTEREST_LIMIT]]
            counts[user_id] = (len(liked), sum(e.event_type == "purchase" for e in after), max((e.timestamp for e in after), default=0.0))
        rows = {}
        with self._rows_lock:
            for user_id in ids:
                if user_id in erased:
                    self._rows.forget(user_id)
                else:
                    self._rows.remember(user_id, counts[user_id], interests[user_id])
        for user_id in ids:
            n_events, n_purchases, last_ts = counts[user_id]
            mine = interests[user_id]
            purchased = list(dict.fromkeys(i for i, t, _, _ in mine if t == "purchase"))
            if user_id in erased and not n_events:
                continue
            rows[user_id] = UserFeatures([(i, t) for i, t, _, _ in mine[:HISTORY_LENGTH]], n_events, n_purchases, last_ts,
                                         [(i, ts) for i, _, ts, _ in mine], purchased, as_of=started)
        self.features.push_users(rows)
        for user_id in self.log.erasures.erased_since(rows, started):
            self.features.forget_user(user_id)
            with self._rows_lock:
                self._rows.forget(user_id)
        self.on_users(rows)

    def after_batch(self, user_ids: Iterable[str], item_ids: Iterable[str], fresh: Sequence[Event] | None = None) -> bool:
        """What an accepted batch changed: its shoppers, its items' popularity, and (throttled) the rest.
        `fresh`: the events the append stored (new, not duplicates), which lets a shopper's row be merged.
        With a refresher thread running, a due full refresh only wakes it (its cost grows with the log and
        the catalogue; no RecordEvents call waits for it), except the first one of this process. Returns
        whether this call ran a full refresh (its time says nothing about the cost per shopper)."""
        full_inline, wake = False, False
        by_user: dict[str, list[Event]] | None = None
        if fresh is not None:
            by_user = {}
            for e in fresh:
                by_user.setdefault(e.user_id, []).append(e)
        with self._lock:
            self.users(user_ids, by_user)
            due = self.full_refreshes and self.timer() - self._last_full >= self.refresh_s
            full_inline = due and (self._wake is None or self._last_full == float("-inf"))
            wake = due and not full_inline
            if not full_inline:
                items = sorted(set(item_ids))
                self._push_item_popularity(items)
                self._pushed_items.update(items)
                if self._touched is not None:
                    self._touched.update(items)
        if full_inline:
            self.refresh_all()
        elif wake and self._wake is not None:
            self._wake.set()
        return full_inline

    def _push_item_popularity(self, items: list[str]) -> None:
        """These items' 30- and 7-day counts as the log holds them now."""
        as_of = time.time()  # before the reads: a process that read later wins in the online store
        clock = self.log.events.newest_time() or 0.0
        self.features.push_popularity(self.log.events.item_counts(clock - WINDOW_30D, items),
                                      self.log.events.item_counts(clock - WINDOW_7D, items), as_of)

    def start_refresher(self) -> threading.Thread:
        """Run the throttled full refresh on a thread of its own from now on (the feedback service does)."""
        self._wake = threading.Event()
        wake = self._wake

        def loop() -> None:
            while True:
                wake.wait(max(self.refresh_s, 1.0))
                wake.clear()
                if self.timer() - self._last_full >= self.refresh_s:
                    try:
                        self.refresh_all()
                    except Exception:  # noqa: BLE001 - the log keeps everything; the next period retries
                        logger.exception("popularity refresh failed; retried in %.0fs", self.refresh_s)

        thread = background.thread(loop, "popularity-refresh")
        thread.start()
        return thread

    def refresh_all(self) -> None:
        """Every item's popularity, the shop's clock and popular list, now. Event batches are not held up
        while the log is read and the rows are written; the items they pushed meanwhile are read and
        pushed again at the end, so their newer counts win."""
        with self._refresh_lock:  # one refresh at a time (lock order: _refresh_lock, then _lock)
            with self._lock:
                self._touched = set()
                pushed_before = set(self._pushed_items)
            try:
                self._refresh_all(pushed_before)
            finally:
                with self._lock:
                    self._touched = None

    def _refresh_all(self, pushed_before: set[str]) -> None:
        as_of = time.time()
        clock = self.log.events.newest_time()
        if clock is None:
            self._last_full = self.timer()
            return
        pop30 = self.log.events.item_counts(clock - WINDOW_30D)
        pop7 = self.log.events.item_counts(clock - WINDOW_7D)
        stale = {i: 0 for i in pushed_before if i not in pop30}  # dropped out of the window
        self.features.push_popularity({**stale, **pop30}, pop7, as_of)
        hidden = self.log.catalogue.statuses()  # out of stock or deleted: never offered as popular
        popular = sorted((i for i in pop30 if i not in hidden), key=lambda i: (-pop30[i], i))[:POPULAR_ITEMS]
        filler: list[str] = []
        if len(popular) < POPULAR_ITEMS:
            filler = self.log.catalogue.first_ids(POPULAR_ITEMS - len(popular), excluding=popular)
        self.features.push_shop(clock, popular, filler, trending(pop30, pop7, hidden))
        with self._lock:
            touched = sorted(self._touched or ())
            if touched:  # batches pushed these while the log was read: our counts may be older than theirs
                self._push_item_popularity(touched)
            self._pushed_items = set(pop30) | set(touched)  # touched holds every item a batch added meanwhile
            self._last_full = self.timer()
        logger.info("online popularity refreshed: %d items, clock %.0f", len(pop30), clock)
