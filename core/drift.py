"""Drift statistics: what a drift-aware schedule fine-tunes on instead of a fixed calendar.

- `item_divergence`: Jensen-Shannon divergence (bits, 0..1) between the item distributions of the
  interest events of two windows. Label-free and model-free (one pass over the events), but it sees only
  a change in *what* the shop sells, not in *who* buys it: tastes that swap between shoppers leave it flat.
- `performance_drop`: how far the serving version's ranking quality on the newest behaviour fell below
  its own record (`QualityRecord`). It needs the newest period scored, and it sees any drift that hurts
  the ranking. The drift cadence (RECSYS_FINE_TUNE_CADENCE=drift, workers.scheduled) fine-tunes on it.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from core.domain import INTEREST_EVENTS, Event


def js_divergence(p: Counter, q: Counter) -> float:
    """Jensen-Shannon divergence in bits of two count distributions (0 when either is empty)."""
    n_p, n_q = sum(p.values()), sum(q.values())
    if not n_p or not n_q:
        return 0.0
    total = 0.0
    for key in set(p) | set(q):
        a, b = p.get(key, 0) / n_p, q.get(key, 0) / n_q
        m = (a + b) / 2
        if a:
            total += a / 2 * math.log2(a / m)
        if b:
            total += b / 2 * math.log2(b / m)
    return max(0.0, total)


def item_divergence(events: Iterable[Event], window: tuple[float, float], reference: tuple[float, float]) -> float:
    """JS divergence between the items of the interest events in `window` and in `reference`
    (each [start, end) in event time)."""
    now: Counter = Counter()
    before: Counter = Counter()
    for e in events:
        if e.event_type not in INTEREST_EVENTS:
            continue
        if window[0] <= e.timestamp < window[1]:
            now[e.item_id] += 1
        if reference[0] <= e.timestamp < reference[1]:
            before[e.item_id] += 1
    return js_divergence(now, before)


def performance_drop(ndcg_per_period: Sequence[float]) -> float:
    """The newest period's NDCG below the mean of the earlier periods the same version served
    (0 with fewer than two periods, negative when the newest is better)."""
    if len(ndcg_per_period) < 2:
        return 0.0
    earlier = ndcg_per_period[:-1]
    return sum(earlier) / len(earlier) - ndcg_per_period[-1]


class QualityRecord:
    """The serving versions' NDCG@10 at each drift check (a JSON file in the data dir), so that a
    version's newest score is compared with its own record, not with another version's."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, list[list[float]]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def series(self, version: int) -> list[float]:
        return [ndcg for _, ndcg in self._read().get(str(version), [])]

    def last_checked(self, version: int) -> float | None:
        """The end of the window the version was last checked on (None: never checked)."""
        checks = self._read().get(str(version), [])
        return checks[-1][0] if checks else None

    def add(self, version: int, until: float, ndcg: float) -> list[float]:
        """Record a check of `version` on behaviour up to `until`; returns its scores so far, oldest first."""
        data = self._read()
        data.setdefault(str(version), []).append([until, ndcg])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)  # a crash mid-write leaves the old record, never half of one
        return [s for _, s in data[str(version)]]
