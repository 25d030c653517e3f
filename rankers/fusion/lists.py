"""Ranking lists from the event log, torch-free: for each basket (a shopper's interest events at one
timestamp) of a shopper with earlier history, the candidates retrieval would have offered at that
moment (their own items, co-purchase neighbours, popular items), the signals of each, and which were
in the basket. The same definitions as serving (rankers.fusion.serving_signals over the online
features); tests/unit/test_fusion.py checks both give the same signals for the same shopper and moment.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from core.domain import WINDOW_7D, WINDOW_30D, Event
from core.experiments.metrics import examination_curve
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
    shown: bool = False  # a list the shop served (ShownList), not retrieval's candidates for a basket


def baskets_of(events: Sequence[Event]) -> list[tuple[str, float, list[str]]]:
    """(user, timestamp, items) of each basket of interest events, in time order."""
    grouped: dict[tuple[str, float], list[str]] = defaultdict(list)
    for e in events:
        if e.event_type in INTEREST_EVENTS:
            grouped[(e.user_id, e.timestamp)].append(e.item_id)
    return [(u, t, list(dict.fromkeys(items))) for (u, t), items in sorted(grouped.items(), key=lambda x: (x[0][1], x[0][0]))]


@dataclass(frozen=True)
class ShownList:
    """A list the shop served, as a training list: whose, when (their first reaction to it), the items shown in
    order, and each item's label (0 for an item shown and not clicked)."""

    user_id: str
    timestamp: float
    items: list[str]
    labels: np.ndarray


def build_lists(events: Sequence[Event], catalogue: dict[str, ItemText], chosen: set[tuple[str, float]],
                table: dict, size: int = CANDIDATES, shown: Sequence[ShownList] = ()) -> list[ListSpec]:
    """Ranking lists for the `chosen` baskets (user, timestamp), with the state of the shop just
    before each: the shopper's history, 30/7-day popularity, co-purchase scores from `table`. Each of
    `shown` adds a list of its own items and labels (not retrieval's candidates), with the state before it."""
    shown_at = {(s.user_id, s.timestamp): s for s in shown}
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
            shown_list = shown_at.get((user, t))
            if ((user, t) not in chosen and shown_list is None) or not past:
                continue
            recent = [i for i, _, _ in reversed(past[-RECENT_ITEMS:])]
            co = co_purchase_scores(recent, table)
            purchases = [Purchase(i, ts, ts) for i, _, ts in past]
            newest = [(i, ts) for i, _, ts in reversed(past[-STATE_HISTORY:])]
            if (user, t) in chosen:
                counts = Counter(i for i, _, _ in past)
                own = [i for i, _ in counts.most_common()]
                popular = [i for i, n in pop30.most_common(size) if n > 0]
                candidates = merge_candidates(own, [i for i, _ in co.most_common(size)], popular, size)
                bought = {e.item_id for e in same_time if e.user_id == user}
                signals = candidate_signals(purchases, t, candidates, pop30, pop7, co)
                labels = np.asarray([1.0 if c in bought else 0.0 for c in candidates], dtype=np.float32)
                lists.append(ListSpec(user, t, newest, candidates, signals, labels))
            if shown_list is not None:
                keep = [k for k, i in enumerate(shown_list.items) if i in catalogue]
                candidates = [shown_list.items[k] for k in keep]
                lists.append(ListSpec(user, t, newest, candidates, candidate_signals(purchases, t, candidates, pop30, pop7, co),
                                      shown_list.labels[keep].astype(np.float32), shown=True))
        for e in same_time:
            history[e.user_id].append((e.item_id, e.event_type, e.timestamp))
            pop30[e.item_id] += 1
            pop7[e.item_id] += 1
        k = end
    return lists


def shown_lists(events: Sequence[Event], served: Mapping[str, Sequence[str]], k: int = 10) -> list[ShownList]:
    """Training lists from what the shop showed: every served list (request id -> items in order) that one of
    `events` names by its request id and reacts to (click, add to cart, purchase). The list is its top `k`
    items; an item reacted to is labelled 1 / P(examined | its position), with the examination curve
    estimated from these lists' clicks by position (core.experiments.metrics.examination_curve), the other
    shown items 0: they were seen, probably, and passed over."""
    reacted: dict[str, dict[str, float]] = defaultdict(dict)
    whose: dict[str, tuple[str, float]] = {}
    for e in events:
        if e.event_type not in INTEREST_EVENTS or not e.request_id or e.request_id not in served:
            continue
        reacted[e.request_id][e.item_id] = 1.0
        user, t = whose.get(e.request_id, (e.user_id, e.timestamp))
        whose[e.request_id] = (user, min(t, e.timestamp)) if user == e.user_id else (user, t)
    lists = {r: list(served[r])[:k] for r in reacted}
    shown_at = np.zeros(k)
    clicked_at = np.zeros(k)
    for r, items in lists.items():
        shown_at[: len(items)] += 1
        for position, item in enumerate(items):
            clicked_at[position] += item in reacted[r]
    examined = examination_curve(shown_at, clicked_at)
    out = []
    for r, items in lists.items():
        labels = np.asarray([1.0 / examined[p] if i in reacted[r] else 0.0 for p, i in enumerate(items)], dtype=np.float32)
        if labels.sum() > 0:
            user, t = whose[r]
            out.append(ShownList(user, t, items, labels))
    return sorted(out, key=lambda s: (s.timestamp, s.user_id))
