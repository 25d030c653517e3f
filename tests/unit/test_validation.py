import time

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from core.errors import InvalidArgument
from services.validation import validate_events, validate_items, validate_rank_request
from shoprank.v1 import common_pb2

NOW = 1_790_000_000.0


def event(**kw):
    base = dict(event_id="e1", user_id="u1", item_id="i1", event_type=common_pb2.EVENT_TYPE_PURCHASE)
    base.update({k: v for k, v in kw.items() if k != "ts"})
    msg = common_pb2.Event(**base)
    if kw.get("ts", "default") is not None:
        seconds = NOW - 60 if kw.get("ts", "default") == "default" else kw["ts"]
        msg.timestamp.CopyFrom(Timestamp(seconds=int(seconds)))
    return msg


def reasons(events, known=("i1",)):
    good, bad = validate_events(events, known, now=NOW)
    return good, [r.reason for r in bad]


def test_good_event_is_converted():
    good, bad = reasons([event()])
    assert bad == [] and good[0].timestamp == NOW - 60 and good[0].event_type == "purchase"


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(event_id=""), "missing event_id"),
        (dict(user_id=""), "missing user_id"),
        (dict(item_id=""), "missing item_id"),
        (dict(item_id="nope"), "unknown item_id"),
        (dict(event_type=17), "event_type 17 is not one of EVENT_TYPE_IMPRESSION"),
        (dict(event_type=common_pb2.EVENT_TYPE_UNSPECIFIED), "missing event_type"),
        (dict(ts=None), "missing timestamp"),
        (dict(ts=NOW + 3600), "in the future"),
        (dict(ts=12345), "before 2000"),
        (dict(user_id="bad id with spaces"), "characters outside"),
    ],
)
def test_bad_events_are_rejected_with_reason(kw, fragment):
    good, bad = reasons([event(**kw)])
    assert good == [] and len(bad) == 1 and fragment in bad[0]


def test_malformed_nanos_rejected():
    e = event()
    e.timestamp.nanos = -5
    assert "malformed timestamp" in reasons([e])[1][0]


def test_mixed_batch_keeps_good_ones_and_reports_indexes():
    good, bad = validate_events([event(event_id="a"), event(event_id="b", event_type=9), event(event_id="c")], {"i1"}, now=NOW)
    assert [g.event_id for g in good] == ["a", "c"]
    assert [(b.index, b.id) for b in bad] == [(1, "b")]


def test_small_clock_skew_is_tolerated():
    assert reasons([event(ts=NOW + 60)])[1] == []


def test_items_validation():
    items = [common_pb2.Item(item_id="a", title="Mug", price=2.0), common_pb2.Item(item_id="b"), common_pb2.Item(item_id="c", title="X", price=-1)]
    good, bad = validate_items(items)
    assert list(good) == ["a"]
    assert [(b.index, b.reason) for b in bad] == [(1, "missing title"), (2, "price -1.0 is not a non-negative number")]


def test_rank_request_validation():
    assert validate_rank_request("u", ["a", "b"], 5) == ["a", "b"]
    for user, items, fragment in [("u", [], "empty"), ("u", list("abcdef"), "at most 5"), ("", ["a"], "missing user_id"), ("u", ["a", "a"], "duplicate")]:
        with pytest.raises(InvalidArgument, match=fragment):
            validate_rank_request(user, items, 5)


def test_now_defaults_to_the_wall_clock():
    good, bad = validate_events([event(ts=time.time() - 10)], {"i1"})
    assert bad == [] and len(good) == 1
