"""Item co-purchase neighbours (bought in the same basket), fitted from baskets, and the co-purchase
score of candidates for a shopper's recent items. The same formula as the EVAL co-occurrence
recommender (evaluation.baselines.CoOccurrence), which works on integer arrays for speed."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Hashable, Iterable, Mapping, Sequence

MAX_BASKET = 100  # bigger baskets are wholesale orders: little signal, quadratic cost
NEIGHBOURS = 50
RECENT_ITEMS = 20


def fit_neighbours(baskets: Iterable[Sequence[Hashable]], neighbours: int = NEIGHBOURS) -> dict[Hashable, list[tuple[Hashable, float]]]:
    """Each item's top co-purchased items, scored count(a, b) / sqrt(freq(a) · freq(b))."""
    pairs: dict[Hashable, Counter] = defaultdict(Counter)
    freq: Counter = Counter()
    for basket in baskets:
        items = list(dict.fromkeys(basket))
        freq.update(items)
        if 1 < len(items) <= MAX_BASKET:
            for a in items:
                pairs[a].update(b for b in items if b != a)
    return {a: [(b, n / math.sqrt(freq[a] * freq[b])) for b, n in c.most_common(neighbours)] for a, c in pairs.items()}


def co_purchase_scores(recent: Sequence[Hashable], table: Mapping[Any, Sequence[tuple[Any, float]]],
                       limit: int = RECENT_ITEMS) -> Counter:
    """Neighbour scores summed over the shopper's recent items (most recent first, weight 1/(1+rank))."""
    scores: dict[Any, float] = {}
    get = scores.get
    for rank, a in enumerate(list(dict.fromkeys(recent))[:limit]):
        weight = 1.0 / (1 + rank)
        for b, s in table.get(a, ()):
            scores[b] = get(b, 0.0) + s * weight  # a plain dict: this runs per neighbour on the request path
    return Counter(scores)
