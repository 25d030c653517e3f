"""Ranking lists from the event log, torch-free: for each basket (a shopper's interest events at one
timestamp) of a shopper with earlier history, the candidates retrieval would have offered at that
moment (their own items, co-purchase neighbours, popular items), the signals of each, and which were
in the basket. The same definitions as serving (rankers.fusion.serving_signals over the online
features); tests/unit/test_fusion.py checks both give the same signals for the same shopper and moment.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.domain import WINDOW_7D, WINDOW_30D, Event
from rankers.fusion.co_purchase import RECENT_ITEMS, co_purchase_scores
from rankers.fusion.shopper_state import STATE_HISTORY
from rankers.fusion.signals import Purchase, candidate_signals, merge_candidates
from shoptext.text import INTEREST_EVENTS, ItemText

CANDIDATES = 100


@dataclass
class ListSpec:
    """A ranking list before embedding: whose, when, their interest history (what the shopper state
    reads), candidate ids, signals, labels."""

    user_id: str
    timestamp: float
    history: list[tuple[str, float]]  # (item_id, ts) of their newest interest events, newest first
    candidates: list[str]
    signals: np.ndarray
    labels: np.ndarray


def baskets_of(events: Sequence[Event]) -> list[tuple[str, float, list[str]]]:
    """(user, timestamp, items) of each basket of interest events, in time order."""
    grouped: dict[tuple[str, float], list[str]] = defaultdict(list)
    for e in events:
        if e.event_type in INTEREST_EVENTS:
            grouped[(e.user_id, e.timestamp)].append(e.item_id)
    return [(u, t, list(dict.fromkeys(items))) for (u, t), items in sorted(grouped.items(), key=lambda x: (x[0][1], x[0][0]))]


def build_lists(events: Sequence[Event], catalogue: dict[str, ItemText], chosen: set[tuple[str, float]],
                table: dict, size: int = CANDIDATES) -> list[ListSpec]:
    """Ranking lists for the `chosen` baskets (user, timestamp), with the state of the shop just
    before each: the shopper's history, 30/7-day popularity, co-purchase scores from `table`."""
    interest = sorted((e for e in events if e.event_type in INTEREST_EVENTS and e.item_id in catalogue),
                      key=lambda e: (e.timestamp, e.event_id))
    history: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    pop30: Counter = Counter()
    pop7: Counter = Counter()
    lo30 = lo7 = 0
    lists: list[ListSpec] = []
    k = 0
    while k < len(interest):
        t = interest[k].timestamp
        while lo30 < k and interest[lo30].timestamp < t - WINDOW_30D:  # windows end just before t
            pop30[interest[lo30].item_id] -= 1
            lo30 += 1
        while lo7 < k and interest[lo7].timestamp < t - WINDOW_7D:
            pop7[interest[lo7].item_id] -= 1
            lo7 += 1
        end = k
        while end < len(interest) and interest[end].timestamp == t:
            end += 1
        same_time = interest[k:end]
        for user in dict.fromkeys(e.user_id for e in same_time):
            past = history[user]
            if (user, t) not in chosen or not past:
                continue
            counts = Counter(i for i, _, _ in past)
            own = [i for i, _ in counts.most_common()]
            recent = [i for i, _, _ in reversed(past[-RECENT_ITEMS:])]
            co = co_purchase_scores(recent, table)
            popular = [i for i, n in pop30.most_common(size) if n > 0]
            candidates = merge_candidates(own, [i for i, _ in co.most_common(size)], popular, size)
            bought = {e.item_id for e in same_time if e.user_id == user}
            signals = candidate_signals([Purchase(i, ts, ts) for i, _, ts in past], t, candidates, pop30, pop7, co)
            labels = np.asarray([1.0 if c in bought else 0.0 for c in candidates], dtype=np.float32)
            newest = [(i, ts) for i, _, ts in reversed(past[-STATE_HISTORY:])]
            lists.append(ListSpec(user, t, newest, candidates, signals, labels))
        for e in same_time:
            history[e.user_id].append((e.item_id, e.event_type, e.timestamp))
            pop30[e.item_id] += 1
            pop7[e.item_id] += 1
        k = end
    return lists
