"""A shopper's living portrait from their online features: what they like now against what they like
over the long run, how fast that is moving, how active they are, and (from the worker's clustering)
which segment they belong to. Torch-free and pure: the profile service reads the features from Feast,
the segmentation task reads the event log; both summarise through these functions.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from statistics import median
from typing import Sequence

import numpy as np

from core.domain import ItemText, price_band
from core.drift import js_divergence

DAY = 86400.0
SHORT_TERM_DAYS = 30  # "now": the last 30 days of the shop's clock
DORMANT_DAYS = 90
REPRESENTATIVE_ITEMS = 3
SEGMENT_CATEGORIES = 20  # the shop's most common categories are the segmentation's dimensions


@dataclass(frozen=True)
class Interests:
    """What a shopper's interest events in one window say about them."""

    events: int
    categories: list[tuple[str, float]] = field(default_factory=list)  # share of events, most first
    median_price: float = 0.0
    price_band: str = ""
    representative: list[str] = field(default_factory=list)  # the items they came back to most


@dataclass(frozen=True)
class Portrait:
    short_term: Interests
    long_term: Interests
    drift: float  # JS divergence (bits, 0..1) of the short-term against the long-term distribution
    activity: str  # new | dormant | occasional | regular | frequent


def summarise(interests: Sequence[tuple[str, float]], items: dict[str, ItemText]) -> Interests:
    """`interests` (item, ts) of one window; items unknown to the catalogue count as events only."""
    if not interests:
        return Interests(0)
    counts = Counter(i for i, _ in interests)
    known = [i for i, _ in interests if i in items]
    categories = Counter(items[i].category for i in known if items[i].category)
    total = sum(categories.values())
    prices = [items[i].price for i in known if items[i].price > 0]
    middle = float(median(prices)) if prices else 0.0
    return Interests(
        events=len(interests),
        categories=[(c, n / total) for c, n in categories.most_common(5)],
        median_price=round(middle, 2),
        price_band=price_band(middle) if prices else "",
        representative=[i for i, _ in counts.most_common(REPRESENTATIVE_ITEMS)],
    )


def activity_level(interests: Sequence[tuple[str, float]], clock: float) -> str:
    """From how many interest events fell in the last 30 days (and whether any in the last 90)."""
    if len(interests) < 2:
        return "new"
    recent = sum(1 for _, ts in interests if ts >= clock - SHORT_TERM_DAYS * DAY)
    if recent == 0:
        return "dormant" if all(ts < clock - DORMANT_DAYS * DAY for _, ts in interests) else "occasional"
    return "occasional" if recent < 3 else "regular" if recent < 10 else "frequent"


def portrait(interests: Sequence[tuple[str, float]], items: dict[str, ItemText], clock: float) -> Portrait:
    """`interests` newest first (the online store's, up to 2000); `clock` is the shop's now."""
    since = clock - SHORT_TERM_DAYS * DAY
    short = [(i, ts) for i, ts in interests if ts >= since]
    # Categories when the catalogue has them; otherwise the items themselves carry the taste.
    def key(item_id: str) -> str:
        text = items.get(item_id)
        return text.category if text is not None and text.category else item_id

    drift = js_divergence(Counter(key(i) for i, _ in short), Counter(key(i) for i, _ in interests)) if short else 0.0
    return Portrait(summarise(short, items), summarise(interests, items), round(drift, 4), activity_level(interests, clock))


# --- segmentation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    segment_id: int
    name: str  # what its centre looks like, e.g. "Kitchen, Garden · regular · medium price"
    size: int


def segment_features(interests: Sequence[tuple[str, float]], items: dict[str, ItemText], clock: float,
                     categories: Sequence[str]) -> np.ndarray:
    """One shopper as numbers: category shares over `categories`, then activity (log events in 30 days),
    recency (exp(-days since the last event / 30)) and log median price, each roughly in 0..1."""
    summary = summarise(interests, items)
    full = Counter(items[i].category for i, _ in interests if i in items and items[i].category)
    total = sum(full.values()) or 1
    shares = {c: n / total for c, n in full.items()}
    recent = sum(1 for _, ts in interests if ts >= clock - SHORT_TERM_DAYS * DAY)
    last = max((ts for _, ts in interests), default=clock - 10 * DORMANT_DAYS * DAY)
    return np.asarray([shares.get(c, 0.0) for c in categories]
                      + [math.log1p(recent) / 4, math.exp(-(clock - last) / DAY / 30), math.log1p(summary.median_price) / 4],
                      dtype=np.float64)


def kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centres) by Lloyd's algorithm from k-means++ seeds (numpy only: shops segment
    thousands to a few hundred thousand shoppers, which this does in seconds)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    k = max(1, min(k, n))
    norms = (x**2).sum(1)

    def dist2(c: np.ndarray) -> np.ndarray:  # [n, len(c)] without an n × k × d intermediate
        return np.maximum(norms[:, None] - 2 * x @ c.T + (c**2).sum(1)[None], 0.0)

    centres = [x[rng.integers(n)]]
    for _ in range(1, k):
        d2 = dist2(np.asarray(centres)).min(1)
        if d2.sum() == 0:
            break
        centres.append(x[rng.choice(n, p=d2 / d2.sum())])
    c = np.asarray(centres)
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        labels_new = dist2(c).argmin(1)
        if _ and (labels_new == labels).all():
            break
        labels = labels_new
        c = np.asarray([x[labels == j].mean(0) if (labels == j).any() else c[j] for j in range(len(c))])
    return labels, c


def describe(centre: np.ndarray, categories: Sequence[str]) -> str:
    """A segment's name from its centre: its leading categories, activity and price band."""
    shares = centre[: len(categories)]
    top = [categories[j] for j in np.argsort(-shares)[:2] if shares[j] >= 0.2]
    recent = math.expm1(centre[len(categories)] * 4)
    activity = "frequent" if recent >= 10 else "regular" if recent >= 3 else "occasional" if recent >= 0.5 else "lapsed"
    price = math.expm1(centre[len(categories) + 2] * 4)
    parts = [", ".join(top) or "mixed", activity, f"{price_band(price)} price" if price > 0 else "no prices"]
    return " · ".join(parts)
