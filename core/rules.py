"""Recommend's business rules: what may be shown to a shopper and how the top k is filled.

A storefront asks for exclusions (bought, recently seen, explicit ids), category filters, promoted
items with a share of the slots, items pinned to positions and diversity (per category, near-duplicate
titles). The scoring service filters the candidate pool with `Rules.allows` before the model scores
it, then `arrange` cuts the top k from the model's order, so k items come back whenever k qualify.
Unavailable (out of stock) and deleted items never qualify, whatever the request says. Torch-free,
no I/O: the features come from the online store through the caller.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

from core.features import ItemFeatures

DAY = 86400.0
_WORDS = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Rules:
    """One Recommend request's rules (the default: only availability)."""

    exclude_purchased: bool = False
    exclude_seen_days: int = 0
    exclude_item_ids: frozenset[str] = frozenset()
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    boosted: tuple[str, ...] = ()
    boost_share: float = 0.0
    pins: tuple[tuple[str, int], ...] = ()  # (item_id, 1-based position)
    max_per_category: int = 0
    distinct_titles: bool = False

    @property
    def filters(self) -> bool:
        """Whether anything beyond availability narrows the pool (retrieval then reaches further)."""
        return bool(self.exclude_purchased or self.exclude_seen_days or self.exclude_item_ids or self.include_categories
                    or self.exclude_categories or self.max_per_category or self.distinct_titles)

    def extra_candidates(self) -> list[str]:
        """Items the request names that must be scored whether or not retrieval found them."""
        return [i for i, _ in self.pins] + list(self.boosted)

    def shopper_exclusions(self, purchased: Sequence[str], interests: Sequence[tuple[str, float]], clock: float) -> set[str]:
        """The items this shopper may not be shown: explicit ids, what they bought, what they
        clicked, carted or bought in the last `exclude_seen_days` days of the shop's clock."""
        out = set(self.exclude_item_ids)
        if self.exclude_purchased:
            out.update(purchased)
        if self.exclude_seen_days:
            since = clock - self.exclude_seen_days * DAY
            out.update(i for i, ts in interests if ts >= since)
        return out

    def allows(self, item_id: str, item: ItemFeatures | None, excluded: set[str]) -> bool:
        """Whether an item may fill a ranked slot (pins skip the filters but not availability)."""
        if item is None or not item.available or item_id in excluded:
            return False
        category = item.text.category
        if self.include_categories and category not in self.include_categories:
            return False
        return category not in self.exclude_categories


@dataclass
class Placed:
    """One slot of the answer."""

    item_id: str
    probability: float
    placement: str = "ranked"  # ranked | boosted | pinned


@dataclass
class _Diversity:
    max_per_category: int
    distinct_titles: bool
    categories: dict[str, int] = field(default_factory=dict)
    titles: list[tuple[frozenset[str], str]] = field(default_factory=list)

    def fits(self, item: ItemFeatures) -> bool:
        if self.max_per_category and self.categories.get(item.text.category, 0) >= self.max_per_category:
            return False
        if self.distinct_titles:
            words = title_words(item.text.title)
            return not any(near_duplicate(words, other) for other in self.titles)
        return True

    def add(self, item: ItemFeatures) -> None:
        self.categories[item.text.category] = self.categories.get(item.text.category, 0) + 1
        if self.distinct_titles:
            self.titles.append(title_words(item.text.title))


def title_words(title: str) -> tuple[frozenset[str], str]:
    """A title's words (lower case) and its last word, the product noun in shop titles."""
    words = _WORDS.findall(title.lower())
    return frozenset(words), words[-1] if words else ""


def near_duplicate(a: tuple[frozenset[str], str], b: tuple[frozenset[str], str]) -> bool:
    """Variants of one product: the same last word and at most one other word swapped ("Red Mug" and
    "Blue Mug"; "RED RETROSPOT CAKE STAND" and "PINK RETROSPOT CAKE STAND"; not "Red Mug" and "Red Lamp")."""
    (words_a, head_a), (words_b, head_b) = a, b
    return head_a == head_b and len(words_a - words_b) <= 1 and len(words_b - words_a) <= 1


def arrange(ranked: Sequence[tuple[str, float]], items: dict[str, ItemFeatures], rules: Rules, k: int) -> list[Placed]:
    """The answer's k slots from `ranked` (qualifying items, best first, with their probabilities):
    pins at their positions, then the best boosted items in `boost_share` of the slots, then the rest
    in the model's order; diversity caps apply to every slot but pins. Boosted winners keep their place
    in the model's order among the others."""
    scores = dict(ranked)
    pinned = {i: p for i, p in rules.pins if p <= k and i in items and items[i].available}
    diversity = _Diversity(rules.max_per_category, rules.distinct_titles)
    for i in pinned:
        diversity.add(items[i])
    free = k - len(pinned)
    chosen: dict[str, str] = {}
    boosted = set(rules.boosted)
    quota = min(free, math.floor(rules.boost_share * k + 1e-9)) if boosted else 0
    for phase, pool in (("boosted", [r for r in ranked if r[0] in boosted]), ("ranked", ranked)):
        limit = quota if phase == "boosted" else free
        for item_id, _ in pool:
            if len(chosen) >= limit:
                break
            if item_id in chosen or item_id in pinned or not diversity.fits(items[item_id]):
                continue
            chosen[item_id] = phase
            diversity.add(items[item_id])
    position_of = {item_id: n for n, (item_id, _) in enumerate(ranked)}
    order = sorted(chosen, key=position_of.__getitem__)  # the model's order (retrieval's when degraded)
    slots = [Placed(i, scores[i], chosen[i]) for i in order]
    for item_id, position in sorted(pinned.items(), key=lambda x: x[1]):
        slots.insert(min(position - 1, len(slots)), Placed(item_id, scores.get(item_id, 0.0), "pinned"))
    return slots[:k]
