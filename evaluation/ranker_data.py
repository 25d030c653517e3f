"""Candidates and signals for the fusion ranker under the EVAL protocol: which items each case ranks
(retrieval), the numeric signals of each (rankers.fusion.signals, the same code serving uses), and
training cases (every later invoice of a returning shopper) for months before the test month."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from evaluation.baselines import CoOccurrence, History, Popularity
from evaluation.protocol import DAY, Case, EventArrays
from rankers.fusion.signals import Purchase, candidate_signals, merge_candidates


@dataclass
class CaseRows:
    """One case's candidates, their signals and which of them were bought."""

    case: Case
    candidates: np.ndarray  # item indices
    signals: np.ndarray  # [n, SIGNAL_COUNT]
    labels: np.ndarray  # [n] 1.0 where in the target


class Retrieval:
    """Candidates: the shopper's own items (most bought first), co-purchase neighbours of their recent
    items and the 30-day popular items, interleaved after the own items, at most `size`."""

    def __init__(self, ev: EventArrays, history: History, size: int = 100, own: int = 60) -> None:
        self.ev = ev
        self.history = history
        self.size = size
        self.own = own
        self.cooc = CoOccurrence(ev, history)
        self.popularity = Popularity(ev)
        self.text_neighbours: Callable[[Case], list[int]] | None = None  # optional: case -> items nearest the shopper's text (an extra source)

    def popularity_counts(self, case: Case, days: int) -> np.ndarray:
        ev = self.ev
        lo = int(np.searchsorted(ev.ts, case.ts - (days + 1) * DAY, side="right"))
        return np.bincount(ev.item[lo : case.cutoff], minlength=ev.n_items)

    def rows(self, case: Case) -> CaseRows:
        ev = self.ev
        counts = sorted(self.history.counts(case), key=lambda x: (-x[1], x[2]))
        own = [i for i, _, _ in counts]
        cooc = self.cooc.scores(case)
        pop30 = self.popularity_counts(case, 30)
        pop7 = self.popularity_counts(case, 7)
        nz = np.flatnonzero(pop30)
        popular = nz[np.lexsort((ev.item_first_seen[nz], -pop30[nz]))][: self.size].tolist()
        also: list[list[int]] = [self.text_neighbours(case)] if self.text_neighbours is not None else []
        merged = merge_candidates(own, [int(i) for i, _ in cooc.most_common(self.size)], [int(i) for i in popular], self.size, self.own, also)
        pos = self.history.before(case)
        history = [Purchase(int(ev.item[p]), float(ev.ts[p]), int(ev.basket[p])) for p in pos]
        signals = candidate_signals(history, float(case.ts), merged, CountLookup(pop30), CountLookup(pop7), cooc)
        labels = np.asarray([1.0 if i in case.target else 0.0 for i in merged], dtype=np.float32)
        return CaseRows(case, np.asarray(merged, dtype=np.int64), signals, labels)


class CountLookup(dict):
    """Item index -> count, a Mapping view of a bincount array (what candidate_signals reads)."""

    def __init__(self, counts: np.ndarray) -> None:
        super().__init__()
        self.counts = counts

    def get(self, key, default=0.0):
        return float(self.counts[key]) if 0 <= key < len(self.counts) else default


def training_cases(ev: EventArrays, lo_ts: int, hi_ts: int, month: str = "train") -> list[Case]:
    """Every invoice in [lo_ts, hi_ts) of a shopper who bought something before it: as many labelled
    rankings as the period holds (the EVAL cases use only the first invoice of each month)."""
    lo, hi = np.searchsorted(ev.ts, [lo_ts, hi_ts], side="left")
    first = np.full(len(ev.user_ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, ev.user, ev.ts)
    cases: list[Case] = []
    done: set[int] = set()
    for pos in range(lo, hi):
        basket = int(ev.basket[pos])
        if basket in done:
            continue
        done.add(basket)
        u, t = int(ev.user[pos]), int(ev.ts[pos])
        if first[u] >= t:
            continue
        end = np.searchsorted(ev.ts, t, side="right")
        target = frozenset(int(i) for i in ev.item[pos:end][ev.basket[pos:end] == basket])
        cases.append(Case(month, u, t, int(np.searchsorted(ev.ts, t, side="left")), target, lo_ts))
    return cases


def repeat_then_popular(signals: np.ndarray) -> np.ndarray:
    """Scores of "repeat + popularity, ties by current popularity" over a candidate list's signals: the
    shopper's purchase count first, then 30-day popularity (columns of rankers.fusion.signals)."""
    return signals[:, 1] * 1000 + signals[:, 10]
