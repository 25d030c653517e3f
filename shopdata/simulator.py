"""Simulated shoppers of the synthetic shop (shopdata/synthetic.py) who look at rankings and act on
hidden, drifting tastes: what the online-experiment test and `make bench-online` play against the
real services.

Each shopper likes two categories: at the start, the two they interacted with most in the shop's
history (so a model trained on that history has something to find). Tastes drift: at a random step of
the simulation each shopper swaps one favourite for a category they never liked. A shopper shown a
ranked list examines position p with probability p ** -EXAMINATION_DECAY (the position bias any
storefront has), clicks an examined item with probability LIKED_CLICK when its category is a
favourite and OTHER_CLICK otherwise, puts a clicked item in the cart with CART and buys a carted one
with PURCHASE. None of this is visible to the services: they see only the events.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from shopdata import Shop

EXAMINATION_DECAY = 0.7
LIKED_CLICK = 0.45
OTHER_CLICK = 0.03
CART = 0.5
PURCHASE = 0.6


@dataclass
class Taste:
    favourites: list[str]
    drift_step: int  # from this simulation step on, the second favourite is replaced
    drift_to: str

    def at(self, step: int) -> list[str]:
        return self.favourites if step < self.drift_step else [self.favourites[0], self.drift_to]


@dataclass(frozen=True)
class Reaction:
    item_id: str
    position: int  # 1-based position in the list shown
    event_type: str  # click, add_to_cart, purchase


class SimulatedShoppers:
    def __init__(self, shop: Shop, steps: int, seed: int = 0) -> None:
        self.shop = shop
        self.rng = random.Random(seed)
        categories = sorted({t.category for t in shop.items.values() if t.category})
        self.tastes: dict[str, Taste] = {}
        for user in sorted({e.user_id for e in shop.events}):
            counts = Counter(shop.items[e.item_id].category for e in shop.events
                             if e.user_id == user and e.event_type != "impression" and e.item_id in shop.items)
            favourites = [c for c, _ in counts.most_common(2)]
            favourites += self.rng.sample([c for c in categories if c not in favourites], 2 - len(favourites))
            drift_to = self.rng.choice([c for c in categories if c not in favourites])
            self.tastes[user] = Taste(favourites, self.rng.randrange(steps // 4, steps + 1) if steps >= 4 else steps, drift_to)
        self.users = sorted(self.tastes)

    def next_shopper(self) -> str:
        return self.rng.choice(self.users)

    def react(self, user_id: str, ranked: list[str], step: int) -> list[Reaction]:
        """What the shopper does with the list shown at simulation `step` (in the order it happens)."""
        liked = set(self.tastes[user_id].at(step))
        out: list[Reaction] = []
        for position, item_id in enumerate(ranked, start=1):
            if self.rng.random() >= position ** -EXAMINATION_DECAY:
                continue
            category = self.shop.items[item_id].category if item_id in self.shop.items else ""
            if self.rng.random() >= (LIKED_CLICK if category in liked else OTHER_CLICK):
                continue
            out.append(Reaction(item_id, position, "click"))
            if self.rng.random() < CART:
                out.append(Reaction(item_id, position, "add_to_cart"))
                if self.rng.random() < PURCHASE:
                    out.append(Reaction(item_id, position, "purchase"))
        return out

    def relevance(self, user_id: str, item_ids: list[str], step: int) -> float:
        """Share of `item_ids` in the shopper's favourite categories at `step` (the hidden truth)."""
        liked = set(self.tastes[user_id].at(step))
        return sum(self.shop.items[i].category in liked for i in item_ids if i in self.shop.items) / max(len(item_ids), 1)
