"""Drift statistics (core.drift) and the season-change shop the drift experiment runs on."""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from core.domain import Event
from core.drift import item_divergence, js_divergence, performance_drop
from shopdata.synthetic import SEASON_SHIFT, generate_season_change

DAY = 86400.0


def test_js_divergence_is_zero_for_equal_mixes_and_one_bit_for_disjoint_ones() -> None:
    assert js_divergence(Counter(a=2, b=2), Counter(a=5, b=5)) == pytest.approx(0.0)
    assert js_divergence(Counter(a=3), Counter(b=7)) == pytest.approx(1.0)
    assert js_divergence(Counter(), Counter(a=1)) == 0.0
    partial = js_divergence(Counter(a=3, b=1), Counter(a=1, b=3))
    assert 0.0 < partial < 1.0
    assert partial == pytest.approx(js_divergence(Counter(a=1, b=3), Counter(a=3, b=1)))


def test_item_divergence_counts_interest_events_of_each_window_only() -> None:
    events = [Event("1", "u", "a", "purchase", 1.0), Event("2", "u", "a", "click", 2.0), Event("3", "u", "b", "impression", 12.0),
              Event("4", "u", "b", "purchase", 13.0), Event("5", "u", "c", "purchase", 30.0)]
    assert item_divergence(events, (10.0, 20.0), (0.0, 10.0)) == pytest.approx(1.0)  # b vs a; the impression is not interest
    assert item_divergence(events, (0.0, 5.0), (1.0, 3.0)) == pytest.approx(0.0)


def test_performance_drop_is_the_newest_period_below_the_versions_own_mean() -> None:
    assert performance_drop([0.4]) == 0.0
    assert performance_drop([0.4, 0.5, 0.3]) == pytest.approx(0.15)
    assert performance_drop([0.3, 0.4]) == pytest.approx(-0.1)


def test_season_change_moves_every_shoppers_purchases_to_the_partner_categories() -> None:
    shop = generate_season_change(n_users=30, n_days=40, change_day=20, seed=3)
    t0 = min(e.timestamp for e in shop.events)
    before, after = defaultdict(set), defaultdict(set)
    for e in shop.events:
        if e.event_type != "purchase":  # only liked items are bought: purchases reveal the tastes
            continue
        day = (e.timestamp - t0) / DAY
        if day < 17:
            before[e.user_id].add(shop.items[e.item_id].category)
        elif day > 23:
            after[e.user_id].add(shop.items[e.item_id].category)
    shoppers = [u for u in before if u in after]
    assert len(shoppers) >= 20
    for u in shoppers:
        assert len(before[u]) <= 2 and len(after[u]) <= 2
        if len(before[u]) == 2:  # both favourites seen: every later purchase is in one of their partners
            assert after[u] <= {SEASON_SHIFT[c] for c in before[u]}
    assert sum(not (after[u] & before[u]) for u in shoppers) > len(shoppers) / 2  # most shoppers like none of their old categories
    # a purchase carries its click's timestamp: the two are one basket
    clicks = {(e.user_id, e.item_id, e.timestamp) for e in shop.events if e.event_type == "click"}
    assert all((e.user_id, e.item_id, e.timestamp) in clicks for e in shop.events if e.event_type == "purchase")
    assert SEASON_SHIFT == {v: k for k, v in SEASON_SHIFT.items()}  # partners: an involution
