"""EVAL.md's reference rows, reproduced on the full protocol from the shared Online Retail II file."""
import numpy as np
import pytest

from evaluation.baselines import History, Popularity, RepeatPopularity
from evaluation.metrics import hit_recall_ndcg
from evaluation.protocol import EventArrays, build_cases
from shopdata.uci_retail import DEFAULT_PATH, load_interactions

pytestmark = pytest.mark.skipif(not DEFAULT_PATH.exists(), reason=f"shared data absent: {DEFAULT_PATH}")

REFERENCE = {
    "popularity-30d": (0.5360, 0.0588, 0.1161),
    "repeat+popularity": (0.7405, 0.1678, 0.2704),
}


@pytest.fixture(scope="module")
def protocol():
    items, events = load_interactions()
    ev = EventArrays.from_frame(events)
    return items, events, ev, build_cases(ev)


def test_cleaning_counts(protocol):
    items, events, ev, cases = protocol
    assert (len(events), events["user_id"].nunique(), len(items)) == (766_079, 5_852, 4_619)
    assert len(cases) == 11_004


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_rows_within_tolerance(protocol, name):
    _, _, ev, cases = protocol
    rec = Popularity(ev) if name == "popularity-30d" else RepeatPopularity(ev, History(ev))
    got = np.mean([hit_recall_ndcg(rec.recommend(c), c.target) for c in cases], axis=0)
    assert np.all(np.abs(got - np.array(REFERENCE[name])) <= 0.002), f"{name}: {got.round(4)} vs {REFERENCE[name]}"
