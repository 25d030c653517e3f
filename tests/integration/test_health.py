"""Health tells the truth (issue 10, item 6): with tritonserver down the scoring service answers Rank
`degraded: true` from the request order and reports NOT_SERVING; when Triton is back, SERVING again."""
from __future__ import annotations

import time

import pytest

from devtools.suite import grpc_serving
from tests.integration.conftest import start_deployment

pytestmark = pytest.mark.integration

SCORING = "shoprank.v1.ScoringService"


def wait_for(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_scoring_health_follows_triton(tmp_path, shop):
    suite = start_deployment(tmp_path, shop, {})
    client = suite.client("feedback", "scoring")
    try:
        assert grpc_serving(suite.address("scoring"), SCORING, suite.credentials())
        triton = suite.triton
        assert triton is not None
        triton.stop()
        suite.triton = None
        assert wait_for(lambda: not triton.group_alive(), 10), "tritonserver's python stubs outlived it"
        assert wait_for(lambda: not grpc_serving(suite.address("scoring"), SCORING, suite.credentials())), "scoring stayed SERVING with Triton down"
        reply = client.rank("U0001", ["SKU0001", "SKU1001", "SKU2001"])
        assert reply.degraded and [i.item_id for i in reply.items] == ["SKU0001", "SKU1001", "SKU2001"]
        suite.start_triton()
        assert wait_for(lambda: grpc_serving(suite.address("scoring"), SCORING, suite.credentials())), "scoring did not come back"
        assert not client.rank("U0001", ["SKU0001", "SKU1001"]).degraded

        # `make up`'s supervision: whatever is killed is started again, ready, on the same address
        suite.kill_process_keep("scoring")
        suite.kill_process_keep("worker")
        suite.triton.process.kill()
        suite.triton.process.wait()
        assert sorted(suite.restart_dead()) == ["scoring", "triton", "worker"]
        assert grpc_serving(suite.address("scoring"), SCORING, suite.credentials())
        assert wait_for(lambda: not client.rank("U0001", ["SKU0001", "SKU1001"]).degraded)
        assert suite.restart_dead() == []
    finally:
        client.close()
        suite.stop()
