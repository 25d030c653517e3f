"""The EVAL protocol on a hand-made shop: cases, targets, visibility, metrics, baselines."""
import math

import pandas as pd
import pytest

from evaluation.baselines import History, Popularity, RepeatPopularity
from evaluation.metrics import auc, hit_recall_ndcg
from evaluation.protocol import EventArrays, build_cases


def shop():
    rows = [
        # user, item, time, basket
        ("old", "A", "2010-11-05 10:00", "b1"),
        ("old", "B", "2010-11-05 10:00", "b1"),
        ("old", "A", "2010-11-20 10:00", "b2"),
        ("x", "C", "2010-11-28 09:00", "b3"),
        ("x", "C", "2010-11-29 09:00", "b4"),
        ("old", "C", "2010-12-03 10:00", "b5"),  # old's first invoice of December: a case, target {C, D}
        ("old", "D", "2010-12-03 10:00", "b5"),
        ("old", "E", "2010-12-10 10:00", "b6"),  # a later invoice: not a case
        ("new", "A", "2010-12-04 10:00", "b7"),  # new shopper's first invoice: no case...
        ("new", "E", "2010-12-06 10:00", "b8"),  # ...their next one this month is
    ]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "basket_id"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    return EventArrays.from_frame(df)


def ids(ev, items):
    return {str(ev.item_ids[i]) for i in items}


def test_cases_targets_and_visibility():
    ev = shop()
    cases = build_cases(ev, ["2010-12"])
    by_user = {str(ev.user_ids[c.user]): c for c in cases}
    assert set(by_user) == {"old", "new"}
    assert ids(ev, by_user["old"].target) == {"C", "D"}
    assert ids(ev, by_user["new"].target) == {"E"}
    # strictly before the invoice: old's history is b1, b2 (and other shoppers' November events)
    assert ids(ev, ev.item[: by_user["old"].cutoff]) == {"A", "B", "C"}


def test_popularity_and_repeat_orders():
    ev = shop()
    case = next(c for c in build_cases(ev, ["2010-12"]) if str(ev.user_ids[c.user]) == "old")
    pop = Popularity(ev).recommend(case, 3)
    assert [str(ev.item_ids[i]) for i in pop] == ["A", "C", "B"]  # A and C twice each: A appeared first
    rep = RepeatPopularity(ev, History(ev)).recommend(case, 3)
    assert [str(ev.item_ids[i]) for i in rep] == ["A", "B", "C"]  # own items by count, then popular ones


def test_metrics_by_hand():
    hr, recall, ndcg = hit_recall_ndcg([5, 1, 7], frozenset({1, 9}), k=10)
    assert hr == 1.0 and recall == 0.5
    assert ndcg == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert hit_recall_ndcg([1, 2], frozenset({3}), 10) == (0.0, 0.0, 0.0)
    assert auc([0.9, 0.8], [0.1, 0.85]) == pytest.approx(0.75)
    assert auc([0.5], [0.5]) == 0.5
