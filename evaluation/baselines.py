"""Baseline recommenders of EVAL.md (popularity over 30 days, repeat + popularity) and an item
co-occurrence recommender. Each ranks item indices for a case from events strictly before it."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from evaluation.protocol import DAY, Case, EventArrays

POP_WINDOW_DAYS = 30


class History:
    """Per-user event positions, for 'the shopper's events before this case'."""

    def __init__(self, ev: EventArrays) -> None:
        order = np.argsort(ev.user, kind="stable")
        bounds = np.searchsorted(ev.user[order], np.arange(len(ev.user_ids) + 1))
        self.ev = ev
        self._positions = [order[bounds[u] : bounds[u + 1]] for u in range(len(ev.user_ids))]  # each sorted by time

    def before(self, case: Case) -> np.ndarray:
        pos = self._positions[case.user]
        return pos[: np.searchsorted(pos, case.cutoff)]

    def counts(self, case: Case) -> list[tuple[int, int, int]]:
        """(item, purchases, first position) of the shopper's items before the case."""
        pos = self.before(case)
        counts: Counter[int] = Counter()
        first: dict[int, int] = {}
        for p in pos:
            i = int(self.ev.item[p])
            counts[i] += 1
            first.setdefault(i, int(p))
        return [(i, n, first[i]) for i, n in counts.items()]


class Popularity:
    """Purchase events whose age in whole days is at most 30; ties by the item's first appearance."""

    name = "popularity-30d"

    def __init__(self, ev: EventArrays) -> None:
        self.ev = ev

    def ranked(self, case: Case, limit: int) -> list[int]:
        ev = self.ev
        # age in whole days <= 30  <=>  t - ts < 31 days
        lo = int(np.searchsorted(ev.ts, case.ts - (POP_WINDOW_DAYS + 1) * DAY, side="right"))
        counts = np.bincount(ev.item[lo : case.cutoff], minlength=ev.n_items)
        nz = np.flatnonzero(counts)
        order = np.lexsort((ev.item_first_seen[nz], -counts[nz]))
        return [int(i) for i in nz[order[:limit]]]

    def recommend(self, case: Case, k: int = 10) -> list[int]:
        return self.ranked(case, k)


class RepeatPopularity:
    """The shopper's own items by purchase count (ties by first purchase), then popular items not bought."""

    name = "repeat+popularity"

    def __init__(self, ev: EventArrays, history: History) -> None:
        self.history = history
        self.popularity = Popularity(ev)

    def own_items(self, case: Case) -> list[int]:
        """The shopper's items by purchase count, ties by first purchase."""
        return [i for i, _, _ in sorted(self.history.counts(case), key=lambda x: (-x[1], x[2]))]

    def ranked(self, case: Case, limit: int) -> list[int]:
        return self.recommend(case, limit)

    def recommend(self, case: Case, k: int = 10) -> list[int]:
        own = sorted(self.history.counts(case), key=lambda x: (-x[1], x[2]))
        ranked = [i for i, _, _ in own[:k]]
        if len(ranked) < k:
            bought = {i for i, _, _ in own}
            ranked += [i for i in self.popularity.ranked(case, k + len(bought)) if i not in bought][: k - len(ranked)]
        return ranked


class CoOccurrence:
    """Items bought in the same baskets as the shopper's items (counts from events before the month,
    refreshed at each month boundary like a model), scored over the shopper's recent items; then
    popularity. The shopper's own items are not excluded."""

    name = "co-occurrence"

    def __init__(self, ev: EventArrays, history: History, recent: int = 20, neighbours: int = 50) -> None:
        self.ev = ev
        self.history = history
        self.popularity = Popularity(ev)
        self.recent = recent
        self.neighbours = neighbours
        self._month_start: int | None = None
        self._top: dict[int, list[tuple[int, float]]] = {}
        self._pairs: dict[int, Counter[int]] = defaultdict(Counter)
        self._counted = 0  # events [0, _counted) are in _pairs

    def _fit(self, until_ts: int) -> None:
        """Add the baskets of events before `until_ts` not counted yet (months arrive in order), then
        refresh each item's neighbour list (cosine-normalised co-purchase counts)."""
        ev = self.ev
        end = int(np.searchsorted(ev.ts, until_ts, side="left"))
        if end < self._counted:
            self._pairs, self._counted = defaultdict(Counter), 0  # went back in time: start over
        # whole baskets only: a basket straddling `end` waits for the next fit
        start = self._counted
        basket, items = ev.basket[start:end], ev.item[start:end]
        order = np.argsort(basket, kind="stable")
        b_sorted, i_sorted = basket[order], items[order]
        splits = np.flatnonzero(np.diff(b_sorted)) + 1
        for group in np.split(i_sorted, splits):
            uniq = np.unique(group)
            if 1 < len(uniq) <= 100:  # very large baskets are wholesale orders: little signal, quadratic cost
                for a in uniq:
                    self._pairs[int(a)].update(int(b) for b in uniq if b != a)
        self._counted = end
        item_freq = np.bincount(ev.item[:end], minlength=ev.n_items).astype(np.float64)
        self._top = {
            a: [(b, n / np.sqrt(item_freq[a] * item_freq[b])) for b, n in c.most_common(self.neighbours)]
            for a, c in self._pairs.items()
        }
        self._month_start = until_ts

    def scores(self, case: Case) -> Counter[int]:
        if self._month_start != case.month_start:
            self._fit(case.month_start)
        recent = [int(self.ev.item[p]) for p in self.history.before(case)[::-1][: self.recent]]
        scores: Counter[int] = Counter()
        for rank, a in enumerate(recent):
            weight = 1.0 / (1 + rank)  # recent items count more
            for b, s in self._top.get(a, ()):
                scores[b] += weight * s  # type: ignore[assignment]  # a Counter of float weights (most_common orders them)
        return scores

    def ranked(self, case: Case, limit: int) -> list[int]:
        return self.recommend(case, limit)

    def recommend(self, case: Case, k: int = 10) -> list[int]:
        ranked = [i for i, _ in self.scores(case).most_common(k)]
        if len(ranked) < k:
            have = set(ranked)
            ranked += [i for i in self.popularity.ranked(case, 2 * k) if i not in have][: k - len(ranked)]
        return ranked
