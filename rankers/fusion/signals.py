"""Numeric signals of one shopper × candidate item, the repeat-buying evidence the ranker fuses with
the text towers: how often, how recently and how regularly the shopper bought the item, whether it
was in their last basket, how popular it is now and how often it is bought with their recent items.

One source of truth: the scoring service (from the event log) and the offline evaluation / training
(from the EVAL arrays) both call `candidate_signals`, so a feature means the same thing everywhere.
"""
from __future__ import annotations

import math
from collections import defaultdict
from operator import itemgetter
from typing import Any, Hashable, Mapping, NamedTuple, Sequence

import numpy as np

DAY = 86400.0

SIGNAL_NAMES = (
    "bought",  # the shopper bought the item before
    "log_count",  # log(1 + purchases of the item)
    "count_share",  # purchases of the item / all the shopper's purchases
    "basket_share",  # baskets holding the item / the shopper's baskets
    "recency_30d",  # exp(-days since the last purchase of the item / 30); 0 if never bought
    "recency_180d",  # the same over 180 days
    "decayed_count_30d",  # log(1 + sum of exp(-age / 30 days) over the item's purchases)
    "decayed_count_120d",  # the same over 120 days
    "due",  # how close "days since last purchase" is to the shopper's usual interval for the item
    "in_last_basket",  # the item was in the shopper's most recent basket
    "log_popularity_30d",  # log(1 + purchases of the item by anyone in the last 30 days)
    "log_popularity_7d",  # the same over 7 days
    "co_purchase",  # log(1 + 10 × co-purchase score with the shopper's recent items)
    "log_baskets",  # shopper: log(1 + baskets so far)
    "shopper_recency",  # shopper: exp(-days since their last basket / 30)
)
SIGNAL_COUNT = len(SIGNAL_NAMES)


class Purchase(NamedTuple):
    """One purchase (or interest event) of the shopper's. A tuple, not a dataclass: a frequent shopper's
    Rank builds up to 2,000 of them (a frozen dataclass took ~5x as long to make)."""

    item: Hashable
    timestamp: float
    basket: Hashable


def candidate_signals(
    history: Sequence[tuple[Hashable, float, Hashable]],
    now: float,
    candidates: Sequence[Hashable],
    popularity_30d: Mapping[Any, float],
    popularity_7d: Mapping[Any, float],
    co_purchase: Mapping[Any, float],
) -> np.ndarray:
    """A float32 [len(candidates), SIGNAL_COUNT] matrix; `history` is the shopper's purchases strictly
    before `now` (Purchase values, or plain (item, timestamp, basket) tuples), in any order."""
    # C-level passes over the whole history (a frequent shopper's Rank has up to 2,000 events); the
    # per-event Python loop runs over the candidates' own purchases only
    wanted = set(candidates)
    mine = [h for h in history if h[0] in wanted]
    times: dict[Hashable, list[float]] = defaultdict(list)
    baskets: dict[Hashable, set] = defaultdict(set)
    for item, timestamp, basket in mine:
        times[item].append(timestamp)
        baskets[item].add(basket)
    n_events = max(1, len(history))
    basket_ids = list(map(itemgetter(2), history))
    distinct_baskets = len(set(basket_ids))
    n_baskets = max(1, distinct_baskets)
    last_basket, last_basket_time = _last_basket(history, basket_ids)
    log_baskets = math.log1p(distinct_baskets)
    shopper_recency = math.exp(-(now - last_basket_time) / DAY / 30) if last_basket_time is not None else 0.0

    out = np.zeros((len(candidates), SIGNAL_COUNT), dtype=np.float32)
    exp, log1p = math.exp, math.log1p
    for row, item in enumerate(candidates):
        ts = times.get(item)
        if ts:  # plain floats, not numpy: an item's history is a handful of purchases
            ages = [(now - t) / DAY for t in ts]
            since_last = min(ages)
            visits = sorted(set(ts))
            due = 0.0
            if len(visits) >= 2:
                interval = (visits[-1] - visits[0]) / DAY / (len(visits) - 1)
                due = exp(-abs(math.log((since_last + 1) / (interval + 1))))
            out[row, :10] = (
                1.0,
                log1p(len(ts)),
                len(ts) / n_events,
                len(baskets[item]) / n_baskets,
                exp(-since_last / 30),
                exp(-since_last / 180),
                log1p(sum(exp(-a / 30) for a in ages)),
                log1p(sum(exp(-a / 120) for a in ages)),
                due,
                1.0 if last_basket in baskets[item] else 0.0,
            )
    out[:, 10] = np.log1p(np.fromiter((popularity_30d.get(c, 0.0) for c in candidates), dtype=np.float64, count=len(candidates)))
    out[:, 11] = np.log1p(np.fromiter((popularity_7d.get(c, 0.0) for c in candidates), dtype=np.float64, count=len(candidates)))
    out[:, 12] = np.log1p(10 * np.fromiter((co_purchase.get(c, 0.0) for c in candidates), dtype=np.float64, count=len(candidates)))
    out[:, 13] = log_baskets
    out[:, 14] = shopper_recency
    return out


def _last_basket(history: Sequence[tuple[Hashable, float, Hashable]], basket_ids: list[Hashable]) -> tuple[Hashable | None, float | None]:
    """The basket of the newest purchase and its time; among baskets tied at that time, the one that
    appears first in `history`."""
    if not history:
        return None, None
    newest = max(map(itemgetter(1), history))
    tied = {basket for _, timestamp, basket in history if timestamp == newest}
    if len(tied) == 1:
        return next(iter(tied)), newest
    return next(b for b in basket_ids if b in tied), newest


def merge_candidates(own: Sequence[Hashable], co_purchased: Sequence[Hashable], popular: Sequence[Hashable],
                     size: int = 100, own_limit: int = 60, also: Sequence[Sequence[Hashable]] = ()) -> list:
    """Retrieval for the ranker: the shopper's own items (best first, at most `own_limit`), then
    co-purchase neighbours, popular items and any `also` sources interleaved, without repeats, at most `size`."""
    merged = list(dict.fromkeys(own[:own_limit]))[:size]
    seen = set(merged)
    sources = (co_purchased, popular, *also)
    for rank in range(max(len(x) for x in sources)):
        for source in sources:
            if rank < len(source) and source[rank] not in seen and len(merged) < size:
                merged.append(source[rank])
                seen.add(source[rank])
    return merged
