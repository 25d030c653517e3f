"""Prometheus metrics: after traffic, each service's /metrics and Triton's count what happened, by RPC
and status code, with the scoring path's Feast and Triton latencies, degraded answers, ingested events,
the serving version and fine-tune jobs by state."""
from __future__ import annotations

import time
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.domain import Event
from shoprank.v1 import profile_pb2, scoring_pb2

pytestmark = pytest.mark.integration


def samples(url: str) -> list:
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def scrape(url: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(s.value for s in samples(url) if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_every_endpoint_counts_the_traffic(serving_suite):
    client = serving_suite.client()
    client.record_events([Event("metrics-1", "metrics-user", "SKU0001", "purchase", time.time() - 60)])
    client.rank("metrics-user", ["SKU0001", "SKU1001"])
    client.recommend("metrics-user", 3)
    client.profile.GetProfile(profile_pb2.GetProfileRequest(user_id="metrics-user"), timeout=30)
    with pytest.raises(grpc.RpcError):
        client.scoring.Rank(scoring_pb2.RankRequest(user_id="", item_ids=["SKU0001"]), timeout=10)
    client.close()

    feedback, scoring, profile = (serving_suite.metrics_url(n) for n in ("feedback", "scoring", "profile"))
    assert scrape(feedback, "shoprank_rpc_requests_total", method="/shoprank.v1.FeedbackService/RecordEvents", code="OK") >= 1
    assert scrape(feedback, "shoprank_ingested_events_total") >= 1
    assert "# TYPE shoprank_fine_tune_jobs gauge" in _text(feedback)  # by state; samples once a job exists
    depths = {s.labels["queue"]: s.value for s in samples(feedback) if s.name == "shoprank_queue_depth"}
    assert set(depths) == {"training", "features"} and all(d >= 0 for d in depths.values())  # read from the broker
    assert scrape(scoring, "shoprank_rpc_requests_total", method="/shoprank.v1.ScoringService/Rank", code="OK") >= 1
    assert scrape(scoring, "shoprank_rpc_requests_total", method="/shoprank.v1.ScoringService/Rank", code="INVALID_ARGUMENT") >= 1
    assert scrape(scoring, "shoprank_rpc_requests_total", method="/shoprank.v1.ScoringService/Recommend", code="OK") >= 1
    assert scrape(scoring, "shoprank_rpc_latency_seconds_count", method="/shoprank.v1.ScoringService/Rank") >= 2
    for dependency in ("feast_shopper", "feast_items", "triton_infer"):
        assert scrape(scoring, "shoprank_dependency_latency_seconds_count", dependency=dependency) >= 1, dependency
    assert scrape(scoring, "shoprank_serving_version", model="fusion_click") >= 1
    assert any(s.name == "shoprank_degraded_answers_total" for s in samples(scoring))
    assert scrape(profile, "shoprank_rpc_requests_total", method="/shoprank.v1.ProfileService/GetProfile", code="OK") >= 1
    assert scrape(serving_suite.metrics_url("triton"), "nv_inference_request_success_total", model="fusion_click") >= 2  # the parser names counters _total


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode()
