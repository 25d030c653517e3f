"""Recommend's rules and the catalogue's availability through real gRPC: the suite's feedback and
scoring services, Feast and tritonserver (issue 14)."""
from __future__ import annotations

from collections import Counter

import grpc
import pytest

from core.rules import near_duplicate, title_words
from devtools.client import item_message
from devtools.ports import eventually
from shoprank.v1 import common_pb2, feedback_pb2, scoring_pb2

pytestmark = pytest.mark.integration

USER = "U0001"


def recommend(client, k=10, **rules):
    request = scoring_pb2.RecommendRequest(user_id=USER, k=k, rules=common_pb2.RecommendRules(**rules))
    return client.scoring.Recommend(request, timeout=60)


def ids(reply):
    return [i.item_id for i in reply.items]


def test_exclusions_and_categories_filter_before_the_top_k_is_cut(client, shop):
    ingested = shop.split(0.6)[0]  # what the suite's deployment recorded (devtools.suite.deploy)
    bought = {e.item_id for e in ingested if e.user_id == USER and e.event_type == "purchase"}
    assert bought, "the synthetic shopper has purchases"
    plain = recommend(client)
    assert len(plain.items) == 10 and not plain.degraded and bought & set(ids(plain))

    no_bought = recommend(client, exclude_purchased=True)
    assert len(no_bought.items) == 10 and not bought & set(ids(no_bought))

    seen = {e.item_id for e in ingested if e.user_id == USER and e.event_type in ("click", "add_to_cart", "purchase")}
    unseen = recommend(client, exclude_seen_days=3650)
    assert len(unseen.items) == 10 and not seen & set(ids(unseen))

    explicit = recommend(client, exclude_item_ids=ids(plain)[:3])
    assert not set(ids(plain)[:3]) & set(ids(explicit)) and len(explicit.items) == 10

    sizes = Counter(it.category for it in shop.items.values())
    category = next(c for c, n in sizes.most_common() if n >= 5)
    only = recommend(client, k=5, include_categories=[category])
    assert len(only.items) == 5 and {shop.items[i].category for i in ids(only)} == {category}
    without = recommend(client, exclude_categories=[category])
    assert len(without.items) == 10 and category not in {shop.items[i].category for i in ids(without)}


def test_diversity_caps_categories_and_near_duplicate_titles(client, shop):
    capped = recommend(client, max_per_category=1, k=5)
    categories = [shop.items[i].category for i in ids(capped)]
    assert len(capped.items) == 5 and len(set(categories)) == 5
    distinct = recommend(client, distinct_titles=True)
    titles = [title_words(shop.items[i].title) for i in ids(distinct)]
    assert len(distinct.items) == 10
    assert not any(near_duplicate(a, b) for n, a in enumerate(titles) for b in titles[n + 1:])


def test_pins_and_boosts_take_their_slots_and_say_so(client, shop):
    plain = ids(recommend(client, k=20))
    outside = [i for i in shop.items if i not in plain]  # items the model would not put in the top 20
    pinned, boosted = outside[0], outside[1:4]
    reply = recommend(client, k=10, pins=[common_pb2.Pin(item_id=pinned, position=3)], boosted_item_ids=boosted, boost_share=0.2)
    assert len(reply.items) == 10
    assert reply.items[2].item_id == pinned and reply.items[2].placement == common_pb2.PLACEMENT_PINNED
    promoted = [i for i in reply.items if i.placement == common_pb2.PLACEMENT_BOOSTED]
    assert len(promoted) == 2 and {i.item_id for i in promoted} <= set(boosted)
    assert [i.rank for i in reply.items] == list(range(1, 11))


def test_out_of_stock_and_deleted_items_never_appear(client, shop):
    top = ids(recommend(client))[0]
    text = shop.items[top]
    gone = item_message("RULES-DELETED", shop.items[top])
    client.feedback.UpsertItems(feedback_pb2.UpsertItemsRequest(items=[gone]), timeout=30)
    try:
        sold_out = item_message(top, text)
        sold_out.out_of_stock = True
        client.feedback.UpsertItems(feedback_pb2.UpsertItemsRequest(items=[sold_out]), timeout=30)
        assert eventually(lambda: top not in ids(recommend(client)))
        pinned = recommend(client, pins=[common_pb2.Pin(item_id=top, position=1)])
        assert top not in ids(pinned) and len(pinned.items) == 10  # an unavailable pin gives its slot back
        assert client.rank(USER, [top]).items[0].item_id == top  # Rank still ranks what it is asked about
    finally:
        client.feedback.UpsertItems(feedback_pb2.UpsertItemsRequest(items=[item_message(top, text)]), timeout=30)
    assert eventually(lambda: top in ids(recommend(client)))

    assert client.rank(USER, ["RULES-DELETED"]).items[0].item_id == "RULES-DELETED"
    reply = client.feedback.DeleteItems(feedback_pb2.DeleteItemsRequest(item_ids=["RULES-DELETED", "NO-SUCH-ITEM", "bad id"]), timeout=30)
    assert reply.deleted == 1 and [(r.index, r.id) for r in reply.rejected] == [(1, "NO-SUCH-ITEM"), (2, "bad id")]

    def not_found() -> bool:
        try:
            client.rank(USER, ["RULES-DELETED"])
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.NOT_FOUND and "deleted" in exc.details()
        return False

    assert eventually(not_found)
    pinned = recommend(client, pins=[common_pb2.Pin(item_id="RULES-DELETED", position=1)])
    assert "RULES-DELETED" not in ids(pinned)
    assert client.feedback.DeleteItems(feedback_pb2.DeleteItemsRequest(item_ids=["RULES-DELETED"]), timeout=30).deleted == 1


def test_bad_rules_are_invalid_arguments(client):
    for rules in (common_pb2.RecommendRules(boost_share=2.0, boosted_item_ids=["SKU0001"]),
                  common_pb2.RecommendRules(pins=[common_pb2.Pin(item_id="SKU0001", position=11)]),
                  common_pb2.RecommendRules(exclude_seen_days=-3)):
        with pytest.raises(grpc.RpcError) as raised:
            client.scoring.Recommend(scoring_pb2.RecommendRequest(user_id=USER, k=10, rules=rules), timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rules." in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        client.feedback.DeleteItems(feedback_pb2.DeleteItemsRequest(), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
