"""Repeat / recency / popularity signals, co-purchase neighbours and candidate merging: the inputs
the fusion ranker reads, shared by serving and training."""
import math

import numpy as np
import pytest

from rankers.fusion.co_purchase import co_purchase_scores, fit_neighbours
from rankers.fusion.signals import DAY, SIGNAL_COUNT, SIGNAL_NAMES, Purchase, candidate_signals, merge_candidates

NOW = 1_000 * DAY


def column(name):
    return SIGNAL_NAMES.index(name)


def test_repeat_and_recency_signals():
    history = [Purchase("mug", NOW - 40 * DAY, "b1"), Purchase("mug", NOW - 20 * DAY, "b2"), Purchase("pot", NOW - 20 * DAY, "b2"),
               Purchase("mug", NOW - 1 * DAY, "b3")]
    out = candidate_signals(history, NOW, ["mug", "pot", "new"], {"mug": 9, "new": 4}, {"new": 2}, {"pot": 0.5})
    assert out.shape == (3, SIGNAL_COUNT) and out.dtype == np.float32
    mug, pot, new = out
    assert mug[column("bought")] == 1 and new[column("bought")] == 0
    assert mug[column("log_count")] == pytest.approx(math.log1p(3))
    assert mug[column("count_share")] == pytest.approx(0.75) and mug[column("basket_share")] == pytest.approx(1.0)
    assert mug[column("recency_30d")] == pytest.approx(math.exp(-1 / 30))
    assert mug[column("in_last_basket")] == 1 and pot[column("in_last_basket")] == 0
    assert 0 < mug[column("due")] <= 1 and pot[column("due")] == 0  # one purchase: no interval yet
    assert mug[column("decayed_count_30d")] > pot[column("decayed_count_30d")]
    assert new[column("log_popularity_30d")] == pytest.approx(math.log1p(4)) and new[column("log_popularity_7d")] == pytest.approx(math.log1p(2))
    assert pot[column("co_purchase")] == pytest.approx(math.log1p(5))
    assert np.all(out[:, column("log_baskets")] == pytest.approx(math.log1p(3)))
    assert new[:10].sum() == 0  # never bought: every repeat signal is zero


def test_no_history_gives_only_item_signals():
    out = candidate_signals([], NOW, ["a"], {"a": 1}, {}, {})
    assert out[0, :10].sum() == 0 and out[0, column("shopper_recency")] == 0


def test_co_purchase_neighbours_and_scores():
    table = fit_neighbours([["a", "b"], ["a", "b", "c"], ["c"], ["d"]])
    assert [b for b, _ in table["a"]][:1] == ["b"]
    assert table["a"][0][1] == pytest.approx(2 / math.sqrt(2 * 2))
    scores = co_purchase_scores(["c", "a"], table)  # c most recent: weight 1; a: 1/2
    assert scores["b"] == pytest.approx(table["c"][[n for n, _ in table["c"]].index("b")][1] + 0.5 * table["a"][0][1])
    assert "d" not in table  # a lone item has no neighbours


def test_merge_candidates_keeps_own_first_and_interleaves():
    merged = merge_candidates(["o1", "o2", "o3"], ["c1", "o1", "c2"], ["p1", "c1", "p2"], size=7, own_limit=2)
    assert merged == ["o1", "o2", "c1", "p1", "c2", "p2"]
    assert merge_candidates(["a"] * 3, [], [], size=5) == ["a"]
