"""A small synthetic gift shop whose shoppers' tastes drift over time; deterministic by seed.

- `generate`: used where ../shared/data is absent. Each shopper starts with two favourite categories
  and, at a random moment in the second half of the timeline, moves one favourite to a new category.
- `generate_season_change`: the controlled drift of the lifelong-learning experiment
  (evaluation/drift_experiment.py). On one day the whole shop's tastes move together: every shopper who
  liked category c now likes `SEASON_SHIFT[c]` instead. What shoppers did before the change predicts
  what they do after it only through that mapping, which a model has to learn from behaviour after
  the change: a frozen model cannot, a model that keeps learning can.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Sequence

from core.domain import Event
from shopdata import Shop
from shoptext.text import ItemText

CATALOGUE = {
    "kitchen": (["teapot", "mug", "cake tin", "apron", "egg cup", "tea towel", "jam jar", "mixing bowl"], (2, 18)),
    "garden": (["plant pot", "watering can", "bird feeder", "trowel", "seed tin", "garden kneeler", "wind chime"], (3, 25)),
    "toys": (["spinning top", "jigsaw", "rag doll", "toy train", "skipping rope", "yo-yo", "puppet"], (1, 12)),
    "stationery": (["notebook", "pencil case", "gift wrap", "greeting card", "sticker set", "photo album"], (1, 8)),
    "lighting": (["tea light holder", "lantern", "fairy lights", "candle", "night light", "lamp shade"], (2, 30)),
    "textiles": (["cushion cover", "tote bag", "blanket", "doorstop", "hot water bottle", "peg bag"], (3, 20)),
    "party": (["bunting", "paper cups", "balloons", "party bags", "cake candles", "napkins"], (1, 6)),
    "christmas": (["bauble", "advent calendar", "wreath", "stocking", "tree topper", "snow globe"], (2, 15)),
}
STYLES = ["vintage", "retro", "red spotty", "blue polkadot", "pink floral", "scandi", "regency", "rustic", "heart", "owl"]


def _catalogue(rng: random.Random) -> tuple[dict[str, ItemText], dict[str, list[str]]]:
    items: dict[str, ItemText] = {}
    by_category: dict[str, list[str]] = {}
    for c_index, (category, (nouns, (lo, hi))) in enumerate(CATALOGUE.items()):
        ids: list[str] = []
        for noun in nouns:
            for style in rng.sample(STYLES, 2):
                item_id = f"SKU{c_index}{len(ids):03d}"
                title = f"{style} {noun}".title()
                items[item_id] = ItemText(title, f"A {style} {noun} from our {category} range.", category, round(rng.uniform(lo, hi), 2))
                ids.append(item_id)
        by_category[category] = ids
    return items, by_category


def _session(rng: random.Random, events: list[Event], items: dict[str, ItemText], by_category: dict[str, list[str]],
             user_id: str, s: int, ts: float, prefs: Sequence[str], shown_liked: int = 3, shown_other: int = 3,
             purchase_delay: float = 0.3) -> None:
    """One visit: items from the liked categories and random ones shown, liked ones clicked and bought
    (`purchase_delay` seconds after the click)."""
    request_id = f"r{user_id[1:]}-{s:02d}"
    shown = [rng.choice(by_category[rng.choice(prefs)]) for _ in range(shown_liked)]
    shown += [rng.choice(items_list) for items_list in rng.sample(list(by_category.values()), shown_other)]
    for k, item_id in enumerate(dict.fromkeys(shown)):
        t = ts + k
        events.append(Event(f"e-{user_id}-{s}-{k}-imp", user_id, item_id, "impression", t, request_id))
        liked = items[item_id].category in prefs
        if liked and rng.random() < 0.6:
            events.append(Event(f"e-{user_id}-{s}-{k}-clk", user_id, item_id, "click", t + 0.5, request_id))
            if rng.random() < 0.5:
                events.append(Event(f"e-{user_id}-{s}-{k}-buy", user_id, item_id, "purchase", t + 0.5 + purchase_delay, request_id))
        elif not liked and rng.random() < 0.04:
            events.append(Event(f"e-{user_id}-{s}-{k}-clk", user_id, item_id, "click", t + 0.5, request_id))


def generate(n_users: int = 40, n_days: int = 60, seed: int = 7, start: str = "2026-09-01") -> Shop:
    rng = random.Random(seed)
    items, by_category = _catalogue(rng)
    categories = list(CATALOGUE)

    t0 = datetime.fromisoformat(start).replace(tzinfo=timezone.utc).timestamp()
    span = n_days * 86400
    events: list[Event] = []
    for u in range(n_users):
        user_id = f"U{u:04d}"
        favourites = rng.sample(categories, 2)
        drift_at = t0 + span * rng.uniform(0.45, 0.8)
        drift_to = rng.choice([c for c in categories if c not in favourites])
        n_sessions = rng.randint(6, 14)
        for s in range(n_sessions):
            ts = t0 + span * (s + rng.random()) / n_sessions
            prefs = favourites if ts < drift_at else [favourites[0], drift_to]
            _session(rng, events, items, by_category, user_id, s, ts, prefs)
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    return Shop("synthetic", items, events)


# The season change: each category's fans move to its partner (an involution, so no favourite survives
# unless a shopper liked both partners).
_CATEGORIES = list(CATALOGUE)
SEASON_SHIFT = {c: _CATEGORIES[(k + len(_CATEGORIES) // 2) % len(_CATEGORIES)] for k, c in enumerate(_CATEGORIES)}


def generate_season_change(n_users: int = 300, n_days: int = 126, change_day: float = 63.0, visits_every_days: float = 3.5,
                           seed: int = 11, start: str = "2026-01-05") -> Shop:
    """A shop whose shoppers each keep two favourite categories until `change_day` (± 2 days per
    shopper), then like the partners `SEASON_SHIFT` gives instead; about one visit every
    `visits_every_days` per shopper, each with impressions, clicks and purchases. A purchase carries its
    click's timestamp, so the two are one basket: otherwise "the item clicked a second ago" predicts
    every purchase whatever the shopper's taste, and the experiment would measure nothing."""
    rng = random.Random(seed)
    items, by_category = _catalogue(rng)
    t0 = datetime.fromisoformat(start).replace(tzinfo=timezone.utc).timestamp()
    events: list[Event] = []
    for u in range(n_users):
        user_id = f"U{u:04d}"
        favourites = rng.sample(_CATEGORIES, 2)
        changed = [SEASON_SHIFT[c] for c in favourites]
        switch = t0 + 86400 * (change_day + rng.uniform(-2, 2))
        ts, s = t0 + 86400 * rng.uniform(0, visits_every_days), 0
        while ts < t0 + 86400 * n_days:
            _session(rng, events, items, by_category, user_id, s, ts, favourites if ts < switch else changed, purchase_delay=0.0)
            ts += 86400 * rng.expovariate(1 / visits_every_days)
            s += 1
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    return Shop("season-change", items, events)


def preferred_categories(shop: Shop, user_id: str, after: float) -> list[str]:
    """The categories a shopper bought or clicked most after `after` (for demo reporting)."""
    from collections import Counter

    counts = Counter(shop.items[e.item_id].category for e in shop.events
                     if e.user_id == user_id and e.timestamp >= after and e.event_type != "impression")
    return [c for c, _ in counts.most_common(2)]
