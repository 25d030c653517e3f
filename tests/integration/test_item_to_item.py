"""SimilarItems, FrequentlyBoughtTogether and Trending through real gRPC: the serving version's tables
in Feast, the model on tritonserver for a named shopper, and Recommend's rules (issue 14)."""
from __future__ import annotations

import time

import grpc
import pytest

from core.domain import Event
from core.features import FeatureClient
from devtools.ports import eventually
from rankers import get_ranker
from shoprank.v1 import common_pb2, scoring_pb2
from workers.materialise import materialise

pytestmark = pytest.mark.integration


def ids(reply):
    return [i.item_id for i in reply.items]


def test_similar_items_are_text_neighbours_and_honour_the_rules(client, shop):
    seed = "SKU0001"
    reply = client.scoring.SimilarItems(scoring_pb2.SimilarItemsRequest(item_id=seed, k=5), timeout=60)
    assert len(reply.items) == 5 and seed not in ids(reply) and reply.model_version == "1"
    scores = [i.score for i in reply.items]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= 1
    category = shop.items[seed].category
    assert sum(shop.items[i].category == category for i in ids(reply)) >= 3  # "Style Noun" titles of one range are near
    ruled = client.scoring.SimilarItems(scoring_pb2.SimilarItemsRequest(
        item_id=seed, k=5, rules=common_pb2.RecommendRules(exclude_categories=[category], exclude_item_ids=ids(reply)[:1])), timeout=60)
    assert len(ruled.items) == 5 and all(shop.items[i].category != category for i in ids(ruled))
    personal = client.scoring.SimilarItems(scoring_pb2.SimilarItemsRequest(item_id=seed, k=5, user_id="U0001"), timeout=60)
    probabilities = [i.probability for i in personal.items]
    assert len(personal.items) == 5 and probabilities == sorted(probabilities, reverse=True) and probabilities[0] > 0
    assert all(i.score > 0 for i in personal.items)  # each still says how similar it is


def test_frequently_bought_together_reads_the_versions_co_purchase_table(serving_suite, client):
    """The synthetic shop's purchases each have their own timestamp, so its baskets hold one item and
    version 1's co-purchase table is empty: the test pushes rows for two seed items under version 1's
    key, as the worker's materialise does, and reads them back through the RPC."""
    ranker = get_ranker(serving_suite.settings().ranker)
    features = FeatureClient(serving_suite.settings())
    features.push_co_purchase(ranker.neighbour_key(1, "co_purchase"), {
        "SKU5001": [("SKU1001", 0.5), ("SKU2002", 0.25), ("SKU6003", 0.2)], "SKU6003": [("SKU1001", 0.3), ("SKU3003", 0.1)]})
    request = scoring_pb2.FrequentlyBoughtTogetherRequest(item_ids=["SKU5001", "SKU6003"], k=5)
    reply = client.scoring.FrequentlyBoughtTogether(request, timeout=60)
    assert [(i.item_id, round(i.score, 4)) for i in reply.items] == [("SKU1001", 0.8), ("SKU2002", 0.25), ("SKU3003", 0.1)]
    ruled = client.scoring.FrequentlyBoughtTogether(scoring_pb2.FrequentlyBoughtTogetherRequest(
        item_ids=["SKU5001", "SKU6003"], k=5, rules=common_pb2.RecommendRules(exclude_item_ids=["SKU1001"])), timeout=60)
    assert ids(ruled) == ["SKU2002", "SKU3003"]
    with pytest.raises(grpc.RpcError) as raised:
        client.scoring.FrequentlyBoughtTogether(scoring_pb2.FrequentlyBoughtTogetherRequest(item_ids=["NO-SUCH-ITEM"]), timeout=30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as raised:
        client.scoring.FrequentlyBoughtTogether(scoring_pb2.FrequentlyBoughtTogetherRequest(), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_trending_is_rising_interest_per_category(serving_suite, client, shop):
    """Clicks on two items now (other tests move the shop's clock to today, past the synthetic history),
    then the periodic refresh the worker's materialise task runs, then Trending."""
    now = time.time()
    hits = [Event(f"trend-{item}-{k}-{now}", f"trend-user-{k}", item, "click", now - 300 + k)
            for item, n in (("SKU4001", 5), ("SKU4002", 3)) for k in range(n)]
    assert client.record_events(hits)[0] == len(hits)
    materialise(serving_suite.settings())

    def rising():  # k=100: tests that ran before may have made other items rise faster
        reply = client.scoring.Trending(scoring_pb2.TrendingRequest(k=100), timeout=60)
        return reply if {"SKU4001", "SKU4002"} <= {i.item_id for i in reply.items} else None

    reply = eventually(rising)
    assert reply is not None and all(i.score > 0 for i in reply.items)
    assert [i.score for i in reply.items] == sorted((i.score for i in reply.items), reverse=True)
    category = shop.items["SKU4001"].category
    per_category = client.scoring.Trending(scoring_pb2.TrendingRequest(
        k=100, rules=common_pb2.RecommendRules(include_categories=[category])), timeout=60)
    assert "SKU4001" in ids(per_category) and {shop.items[i].category for i in ids(per_category)} == {category}
    personal = client.scoring.Trending(scoring_pb2.TrendingRequest(k=5, user_id="U0003"), timeout=60)
    assert personal.model_version == "1" and personal.items[0].probability > 0


def test_item_to_item_bad_input_is_a_clear_status(client):
    for call, request, code in (
        (client.scoring.SimilarItems, scoring_pb2.SimilarItemsRequest(item_id=""), grpc.StatusCode.INVALID_ARGUMENT),
        (client.scoring.SimilarItems, scoring_pb2.SimilarItemsRequest(item_id="NO-SUCH-ITEM"), grpc.StatusCode.NOT_FOUND),
        (client.scoring.SimilarItems, scoring_pb2.SimilarItemsRequest(item_id="SKU0001", k=101), grpc.StatusCode.INVALID_ARGUMENT),
        (client.scoring.Trending, scoring_pb2.TrendingRequest(rules=common_pb2.RecommendRules(boost_share=0.5)), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call(request, timeout=30)
        assert raised.value.code() == code and "Traceback" not in raised.value.details()
