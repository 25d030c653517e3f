"""Simulated shoppers of the synthetic shop (shopdata/synthetic.py) who look at rankings and act on
hidden, drifting tastes: what the online-experiment test and `make bench-online` play against the
real services.

Each shopper likes two categories: at the start, the two they interacted with most in the shop's
history (so a model trained on that history has something to find). Tastes drift: at a random visit
between `drift_from` and `drift_to` (fractions of the `steps` visits the simulation plans, counted
across everything it plays) each shopper swaps one favourite for a category they never liked. A shopper shown a
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
    def __init__(self, shop: Shop, steps: int, seed: int = 0, drift_from: float = 0.25, drift_to: float = 1.0) -> None:
        self.shop = shop
        self.rng = random.Random(seed)
        self.step = -1  # visits so far (the simulation's clock), advanced by next_shopper
        categories = sorted({t.category for t in shop.items.values() if t.category})
        self.tastes: dict[str, Taste] = {}
        for user in sorted({e.user_id for e in shop.events}):
            counts = Counter(shop.items[e.item_id].category for e in shop.events
                             if e.user_id == user and e.event_type != "impression" and e.item_id in shop.items)
            favourites = [c for c, _ in counts.most_common(2)]
            favourites += self.rng.sample([c for c in categories if c not in favourites], 2 - len(favourites))
            new_favourite = self.rng.choice([c for c in categories if c not in favourites])
            first, last = int(steps * drift_from), max(int(steps * drift_from), int(steps * drift_to))
            self.tastes[user] = Taste(favourites, self.rng.randint(first, last), new_favourite)
        self.users = sorted(self.tastes)

    def next_shopper(self) -> str:
        """The shopper of the next visit (the simulation's clock moves on)."""
        self.step += 1
        return self.rng.choice(self.users)

    def drifted(self) -> float:
        """Share of shoppers whose tastes have drifted by now."""
        return sum(t.drift_step <= self.step for t in self.tastes.values()) / max(len(self.tastes), 1)

    def react(self, user_id: str, ranked: list[str]) -> list[Reaction]:
        """What the shopper does with the list shown at this visit (in the order it happens)."""
        liked = set(self.tastes[user_id].at(self.step))
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

    def relevance(self, user_id: str, item_ids: list[str]) -> float:
        """Share of `item_ids` in the shopper's favourite categories now (the hidden truth)."""
        liked = set(self.tastes[user_id].at(self.step))
        return sum(self.shop.items[i].category in liked for i in item_ids if i in self.shop.items) / max(len(item_ids), 1)
