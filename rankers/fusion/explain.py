"""Why the fusion model scored an item so: attributions computed on the served model, with the facts
behind each (torch-free; the scoring service sends one extra, batched request to Triton).

The item-level signals fall into four groups of evidence (repeat, timing, popularity, co-purchase).
For each explained item the request holds every coalition of the groups (2⁴ = 16 rows, an absent
group's signals set to zero: "no such evidence"), and each group's exact Shapley value is read from
the 16 probabilities. With every group absent what is left is the text towers' score of the item for
the shopper (and the shopper-level signals, the same for every candidate); the text reason is that
score minus its mean over the explained items. So the attributions plus that mean add up to the item's
probability, and a reason's size is what the model does with it, not a template's guess.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np

from core.features import ItemFeatures
from rankers.base import Shopper
from rankers.fusion.signals import DAY, SIGNAL_NAMES

GROUPS: dict[str, tuple[str, ...]] = {
    "repeat": ("bought", "log_count", "count_share", "basket_share", "decayed_count_30d", "decayed_count_120d"),
    "timing": ("recency_30d", "recency_180d", "due", "in_last_basket"),
    "popularity": ("log_popularity_30d", "log_popularity_7d"),
    "co_purchase": ("co_purchase",),
}
TEXT = "text"
ITEM_INPUTS = ("item_input_ids", "item_attention_mask", "signals")  # one row per candidate
_COLUMNS = [[SIGNAL_NAMES.index(n) for n in names] for names in GROUPS.values()]
_G = len(GROUPS)


@dataclass(frozen=True)
class Reason:
    kind: str  # a GROUPS key or TEXT
    attribution: float
    text: str


def coalition_inputs(inputs: dict[str, np.ndarray], rows: Sequence[int]) -> dict[str, np.ndarray]:
    """The request scoring every coalition of evidence groups for the candidates at `rows`: row
    r·16 + c holds candidate rows[r] with the groups whose bit is off in c zeroed."""
    pick = np.repeat(np.asarray(rows, dtype=np.int64), 1 << _G)
    out = {name: (array[pick] if name in ITEM_INPUTS else array) for name, array in inputs.items()}
    signals = out["signals"].copy()
    coalition = np.tile(np.arange(1 << _G), len(rows))
    for g, columns in enumerate(_COLUMNS):
        absent = (coalition >> g) & 1 == 0
        signals[np.ix_(absent, columns)] = 0.0
    out["signals"] = signals
    return out


def shapley(probabilities: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(Shapley values [n_rows, groups], the all-absent value [n_rows]) from coalition_inputs' scores."""
    values = np.asarray(probabilities, dtype=np.float64).reshape(n_rows, 1 << _G)
    phi = np.zeros((n_rows, _G))
    for g in range(_G):
        others = [o for o in range(_G) if o != g]
        for size in range(_G):
            weight = math.factorial(size) * math.factorial(_G - size - 1) / math.factorial(_G)
            for subset in combinations(others, size):
                without = sum(1 << o for o in subset)
                phi[:, g] += weight * (values[:, without | (1 << g)] - values[:, without])
    return phi, values[:, 0]


def explain(shopper: Shopper, candidates: Sequence[str], probabilities: np.ndarray, items: dict[str, ItemFeatures],
            similar: dict[str, list[tuple[str, float]]]) -> list[list[Reason]]:
    """Each candidate's reasons, largest effect first, from coalition_inputs' probabilities."""
    phi, text_only = shapley(probabilities, len(candidates))
    text_effect = text_only - text_only.mean()
    facts = _Facts(shopper, items, similar)
    out = []
    for r, item_id in enumerate(candidates):
        reasons = [Reason(kind, float(phi[r, g]), facts.say(kind, item_id)) for g, kind in enumerate(GROUPS)]
        reasons.append(Reason(TEXT, float(text_effect[r]), facts.say(TEXT, item_id)))
        out.append(sorted(reasons, key=lambda x: -abs(x.attribution)))
    return out


class _Facts:
    """The online features behind each kind of reason, in words."""

    def __init__(self, shopper: Shopper, items: dict[str, ItemFeatures], similar: dict[str, list[tuple[str, float]]]) -> None:
        self.shopper, self.items, self.similar = shopper, items, similar
        self.times: dict[str, list[float]] = {}
        for item_id, ts in shopper.interests:
            self.times.setdefault(item_id, []).append(ts)
        self.purchased = set(shopper.purchased)
        self.recent = list(dict.fromkeys(i for i, _ in shopper.interests[:20]))

    def title(self, item_id: str) -> str:
        item = self.items.get(item_id)
        return f"“{item.text.title}”" if item else item_id

    def say(self, kind: str, item_id: str) -> str:
        times = self.times.get(item_id, [])
        if kind == "repeat":
            if not times:
                return "never bought or viewed by you"
            if item_id in self.purchased:
                return f"you bought it ({len(times)} events: purchases, carts or clicks)"
            return f"you viewed it {len(times)} time{'s' * (len(times) != 1)}"
        if kind == "timing":
            if not times:
                return "no past purchase to time"
            days = (self.shopper.clock - max(times)) / DAY
            visits = sorted(set(times))
            usual = f", usually every ~{(visits[-1] - visits[0]) / DAY / (len(visits) - 1):.0f} days" if len(visits) > 1 else ""
            return f"last {days:.0f} days ago{usual}"
        if kind == "popularity":
            item = self.items.get(item_id)
            if item is None:
                return "popularity unknown"
            where = f" in {item.text.category}" if item.text.category else ""
            return f"{item.popularity_7d} interest events this week{where} ({item.popularity_30d} in 30 days)"
        if kind == "co_purchase":
            partners = Counter({a: s for a, nbs in self.shopper.co_purchase.items() for b, s in nbs if b == item_id})
            if not partners:
                return "not bought together with your recent items"
            return f"bought together with {self.title(partners.most_common(1)[0][0])}"
        near = [b for b, _ in self.similar.get(item_id, []) if b in self.times]
        if near:
            return f"its text is close to {self.title(near[0])} you {'bought' if near[0] in self.purchased else 'viewed'}"
        return "its text against your recent items' text" if self.recent else "its text alone (you have no history yet)"
