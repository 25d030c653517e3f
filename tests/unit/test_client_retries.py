"""shoprank_client's channel: UNAVAILABLE is retried by gRPC's policy, other errors are not, and the
per-call deadline holds. A throwaway servicer on a real socket stands in for the scoring service."""
from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import pytest

from shoprank.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc
from shoprank_client import ShopRankClient


class Flaky(scoring_pb2_grpc.ScoringServiceServicer):
    def __init__(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, delay_s: float = 0.0) -> None:
        self.failures, self.code, self.delay_s, self.calls = failures, code, delay_s, 0
        self.lock = threading.Lock()

    def Rank(self, request, context):
        with self.lock:
            self.calls += 1
            failing = self.calls <= self.failures
        if failing:
            context.abort(self.code, "not now")
        time.sleep(self.delay_s)
        return scoring_pb2.RankResponse(items=[common_pb2.ScoredItem(item_id=i, probability=0.5, rank=n + 1)
                                               for n, i in enumerate(request.item_ids)], model_version="7", request_id="r")


@pytest.fixture
def serve():
    servers = []

    def start(servicer):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        scoring_pb2_grpc.add_ScoringServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for s in servers:
        s.stop(0)


def test_unavailable_is_retried_and_the_answer_is_typed(serve):
    flaky = Flaky(failures=2)
    address = serve(flaky)
    with ShopRankClient(address, address, retries=3, plaintext=True) as client:
        ranking = client.rank("u", ["a", "b"])
    assert flaky.calls == 3 and ranking.model_version == "7" and [i.item_id for i in ranking.items] == ["a", "b"]
    assert ranking.items[0].placement == "ranked" and ranking.items[0].reasons == ()


def test_other_errors_and_exhausted_retries_reach_the_caller(serve):
    invalid = Flaky(failures=5, code=grpc.StatusCode.INVALID_ARGUMENT)
    with ShopRankClient(serve(invalid), serve(invalid), retries=3, plaintext=True) as client, pytest.raises(grpc.RpcError) as raised:
        client.rank("u", ["a"])
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and invalid.calls == 1
    down = Flaky(failures=10)
    address = serve(down)
    with ShopRankClient(address, address, retries=2, plaintext=True) as client, pytest.raises(grpc.RpcError) as raised:
        client.rank("u", ["a"])
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE and down.calls == 3


def test_the_deadline_holds(serve):
    slow = Flaky(failures=0, delay_s=1.0)
    address = serve(slow)
    with ShopRankClient(address, address, timeout_s=0.2, plaintext=True) as client:
        started = time.perf_counter()
        with pytest.raises(grpc.RpcError) as raised:
            client.rank("u", ["a"])
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.perf_counter() - started < 0.9
        assert client.rank("u", ["a"], timeout_s=5).items  # a per-call deadline overrides the client's
