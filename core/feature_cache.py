"""A read-through cache in front of the online store for the ranking path (an `OnlineFeatures` adapter).

Rank reads the candidates' text and popularity, the shop row and the serving version's co-purchase
neighbours on every request, although they change far more slowly than requests arrive: item text on
a catalogue upsert, popularity and the shop row when the feedback service refreshes them (every
RECSYS_POPULARITY_REFRESH_S), co-purchase never within a version. The shopper's own row is what
events change, so it is never cached: a purchase shows in the next Rank.

- items: per item, fresh until the end of the RECSYS_ITEM_CACHE_S period they were read in (300 s: an
  item's popularity is a 30- and 7-day count, which minutes do not move), then served stale through
  the next period while one background read brings every stale item a request asked for up to date,
  in small batches with pauses (stale-while-revalidate: a request never waits for the store once the
  working set is cached, and the read never takes more than about a quarter of the process's time);
  older than that, an item is read again on the request path. Each process's periods start at a
  random phase, so a service's processes do not all re-read the catalogue in the same second.
  Text and status (a new title, out of stock, deleted) do not wait for the period: every push of item
  rows moves the catalogue stamp (core.features.FeatureClient.push_items), read with the shop row once
  per RECSYS_FEATURE_CACHE_S period, and once it moved, every item stored before is stale at once, so
  an upsert shows within about two RECSYS_FEATURE_CACHE_S periods. Unknown items are not remembered, so
  an item upserted a moment ago is found at once. (Re-reading every item every 5 s cost the shop-like
  load a quarter of the scoring service's CPU: 132 Rank/s at 16 clients against 170 with 15 s; every
  30 s still cost 158 Rank/s against 188 without re-reads, issue 26.)
- shop: RECSYS_FEATURE_CACHE_S;
- co-purchase: per (version, item) until evicted, the version's rows being immutable; an item without
  neighbours is remembered for RECSYS_ITEM_CACHE_S (a version's rows are pushed before it serves, so an
  empty answer is final but for a version whose rows were still being pushed: re-read each period, not
  each RECSYS_FEATURE_CACHE_S, which had every process re-read its neighbourless items every 5 s).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Sequence

from core import background
from core.features import ItemFeatures, OnlineFeatures, ShopFeatures, ShopperState, UserFeatures

if TYPE_CHECKING:
    from core.settings import Settings

logger = logging.getLogger(__name__)

MAX_ENTRIES = 1_000_000  # per map; an entry is a few hundred bytes
REVALIDATE_BATCH = 100  # items per store read of the background revalidation
REVALIDATE_DUTY = 0.25  # after each read the revalidation pauses 3x as long as the read took


class _TimedMap:
    """Thread-safe bounded map of key -> (value, stored at); oldest stored first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[Any, tuple[Any, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[Any], usable: Callable[[Any, float], bool]) -> dict[Any, Any]:
        """The cached values of `keys` that are `usable(value, stored_at)`."""
        with self._lock:
            out = {}
            for key in keys:
                hit = self._data.get(key)
                if hit is not None and usable(hit[0], hit[1]):
                    out[key] = hit[0]
            return out

    def get_many_stored(self, keys: Sequence[Any]) -> dict[Any, tuple[Any, float]]:
        """(value, stored at) of the cached `keys`, whatever their age."""
        with self._lock:
            return {key: hit for key in keys if (hit := self._data.get(key)) is not None}

    def drop_many(self, keys: Sequence[Any]) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def put_many(self, values: dict[Any, Any], now: float) -> None:
        with self._lock:
            for key, value in values.items():
                self._data.pop(key, None)
                self._data[key] = (value, now)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)


class CachedFeatures:
    """`OnlineFeatures` over another one (FeatureClient), caching what the module docstring lists.
    `ttl_s=0` turns caching off (every read goes to the store)."""

    def __init__(self, store: OnlineFeatures, ttl_s: float, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES, item_ttl_s: float = 0.0, phase_s: float = 0.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.item_ttl_s = max(ttl_s, item_ttl_s)  # items' period (see the module doc); never shorter than ttl_s
        self.phase_s = phase_s  # where this process's item periods start (for_settings: random)
        self.clock = clock
        self._stamp: float | None = None  # the catalogue stamp of the newest shop row read
        self._catalogue_moved = float("-inf")  # when (this clock) the stamp was last seen to move
        self._items = _TimedMap(max_entries)
        self._items_with_popularity = _TimedMap(max_entries)
        self._co_purchase = _TimedMap(max_entries)
        self._shop: tuple[ShopFeatures, float] | None = None
        self._stale: dict[bool, set[str]] = {False: set(), True: set()}  # by `popularity`: items to read again
        self._stale_lock = threading.Condition()
        self._revalidator: threading.Thread | None = None

    @classmethod
    def for_settings(cls, store: OnlineFeatures, settings: "Settings") -> "CachedFeatures":
        """The cache a service puts in front of the online store: RECSYS_FEATURE_CACHE_S, RECSYS_ITEM_CACHE_S."""
        item_ttl_s = max(settings.feature_cache_s, settings.item_cache_s)
        return cls(store, settings.feature_cache_s, item_ttl_s=item_ttl_s, phase_s=random.uniform(0.0, item_ttl_s))

    def get_user(self, user_id: str) -> UserFeatures | None:
        return self.store.get_user(user_id)

    def get_shopper_state(self, user_id: str, key: str) -> ShopperState | None:
        return self.store.get_shopper_state(user_id, key)  # never cached: it changes with every event

    def get_shop(self) -> ShopFeatures:
        now = self.clock()
        cached = self._shop
        if cached is not None and self._current(cached[1], now):
            return cached[0]
        shop = self.store.get_shop()
        if self._stamp is not None and shop.catalogue_stamp != self._stamp:
            self._catalogue_moved = now  # items stored before now may hold an older text or status
        self._stamp = shop.catalogue_stamp
        self._shop = (shop, now)
        return shop

    def _item_age(self, stored_at: float, now: float) -> int:
        """Item periods since an entry was stored; at least 1 (stale) if the catalogue moved since."""
        age = int((now + self.phase_s) // self.item_ttl_s - (stored_at + self.phase_s) // self.item_ttl_s)
        return max(age, 1) if stored_at < self._catalogue_moved else age

    def get_items(self, item_ids: Sequence[str], popularity: bool = False) -> dict[str, ItemFeatures]:
        cache = self._items_with_popularity if popularity else self._items
        now = self.clock()
        ids = list(dict.fromkeys(item_ids))
        found, stale = {}, []
        if self.ttl_s > 0:
            self.get_shop()  # the catalogue stamp, read once per ttl_s period
            for item_id, (value, stored_at) in cache.get_many_stored(ids).items():
                age = self._item_age(stored_at, now)
                if age <= 1:  # this period's, or the last one's while it is being read again
                    found[item_id] = value
                    if age == 1:
                        stale.append(item_id)
        missing = [i for i in ids if i not in found]
        if missing:
            fresh = self.store.get_items(missing, popularity=popularity)
            if self.ttl_s > 0:
                cache.put_many(fresh, now)
                cache.drop_many([i for i in missing if i not in fresh])  # deleted since: not served stale again
            found.update(fresh)
        if stale:
            self._revalidate(stale, popularity)
        return {i: found[i] for i in ids if i in found}

    def _revalidate(self, item_ids: list[str], popularity: bool) -> None:
        """Queue stale items for the background read (one thread, started on first use)."""
        with self._stale_lock:
            self._stale[popularity].update(item_ids)
            if self._revalidator is None:
                self._revalidator = background.thread(self._revalidate_loop, "feature-cache-revalidate")
                self._revalidator.start()
            self._stale_lock.notify()

    def _revalidate_loop(self) -> None:
        while True:
            with self._stale_lock:
                while not (self._stale[False] or self._stale[True]):
                    self._stale_lock.wait()
                popularity = bool(self._stale[True])
                batch = sorted(self._stale[popularity])[:REVALIDATE_BATCH]
                self._stale[popularity].difference_update(batch)
            cache = self._items_with_popularity if popularity else self._items
            now = self.clock()
            current = cache.get_many_stored(batch)
            batch = [i for i in batch if i in current and self._item_age(current[i][1], now) >= 1]  # not read meanwhile
            if not batch:
                continue
            started = time.monotonic()
            try:
                fresh = self.store.get_items(batch, popularity=popularity)
            except Exception:  # noqa: BLE001 - the items age out and are read on the request path instead
                logger.warning("feature cache: background read of %d items failed", len(batch), exc_info=True)
                continue
            cache.put_many(fresh, now)
            # deleted (or gone) since it was stored: dropped, or it would be served stale until it aged out
            cache.drop_many([i for i in batch if i not in fresh])
            # a catalogue's worth of reads at once held the GIL from the requests of this process for
            # seconds (every process at the same moment, before the phase): spread them out instead
            time.sleep((time.monotonic() - started) * (1.0 / REVALIDATE_DUTY - 1.0))

    def get_co_purchase(self, key: str, item_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        now = self.clock()
        ids = list(dict.fromkeys(item_ids))
        keys = [(key, i) for i in ids]
        found = self._co_purchase.get_many(keys, lambda neighbours, stored_at: bool(neighbours) or (
            self.ttl_s > 0 and now - stored_at < self.item_ttl_s))
        missing = [i for (_, i) in keys if (key, i) not in found]
        if missing:
            fresh = self.store.get_co_purchase(key, missing)
            if self.ttl_s > 0:
                self._co_purchase.put_many({(key, i): fresh.get(i, []) for i in missing}, now)
            found.update({(key, i): v for i, v in fresh.items()})
        return {i: found[(key, i)] for i in ids if found.get((key, i))}

    def _current(self, stored_at: float, now: float) -> bool:
        """Entries live until the end of the TTL period they were stored in, all together: expiring
        each on its own schedule would make nearly every request refetch a few stragglers, one
        store round trip each, instead of one refetch per period."""
        return self.ttl_s > 0 and stored_at // self.ttl_s == now // self.ttl_s

    def push_co_purchase(self, key: str, table: dict[str, list[tuple[str, float]]]) -> None:
        self.store.push_co_purchase(key, table)
