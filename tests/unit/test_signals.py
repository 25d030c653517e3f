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


def reference_signals(history, now, candidates):
    """The per-event loop candidate_signals had before its whole-history passes moved to C (issue 26):
    the repeat columns (0-9) and the shopper's own (13, 14), for comparison."""
    from collections import defaultdict

    times, baskets, all_baskets = defaultdict(list), defaultdict(set), {}
    for item, timestamp, basket in history:
        if all_baskets.get(basket) is None or timestamp > all_baskets[basket]:
            all_baskets[basket] = timestamp
        if item in set(candidates):
            times[item].append(timestamp)
            baskets[item].add(basket)
    last = max(all_baskets, key=all_baskets.__getitem__) if all_baskets else None
    out = np.zeros((len(candidates), SIGNAL_COUNT))
    for row, item in enumerate(candidates):
        ts = times.get(item)
        if ts:
            ages = [(now - t) / DAY for t in ts]
            visits = sorted(set(ts))
            due = 0.0
            if len(visits) >= 2:
                interval = (visits[-1] - visits[0]) / DAY / (len(visits) - 1)
                due = math.exp(-abs(math.log((min(ages) + 1) / (interval + 1))))
            out[row, :10] = (1.0, math.log1p(len(ts)), len(ts) / max(1, len(history)), len(baskets[item]) / max(1, len(all_baskets)),
                             math.exp(-min(ages) / 30), math.exp(-min(ages) / 180), math.log1p(sum(math.exp(-a / 30) for a in ages)),
                             math.log1p(sum(math.exp(-a / 120) for a in ages)), due, 1.0 if last in baskets[item] else 0.0)
    out[:, 13] = math.log1p(len(all_baskets))
    out[:, 14] = math.exp(-(now - all_baskets[last]) / DAY / 30) if last is not None else 0.0
    return out


@pytest.mark.parametrize("seed", range(20))
def test_signals_equal_the_per_event_reference(seed):
    """Random histories with repeated items, shared baskets and tied newest timestamps (the last basket
    is then the tied one that appears first): the same repeat and shopper columns as the reference."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    days = rng.integers(0, 60, size=n)  # few distinct days: ties at the newest time are common
    history = [Purchase(f"i{rng.integers(0, 30)}", NOW - float(d) * DAY, f"b{rng.integers(0, 40)}" if seed % 2 else NOW - float(d) * DAY)
               for d in days]
    candidates = [f"i{k}" for k in rng.permutation(40)[:25]]
    got = candidate_signals(history, NOW, candidates, {}, {}, {})
    want = reference_signals(history, NOW, candidates)
    columns = list(range(10)) + [13, 14]
    np.testing.assert_allclose(got[:, columns], want[:, columns].astype(np.float32), rtol=1e-6)
