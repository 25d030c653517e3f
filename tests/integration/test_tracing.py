"""OpenTelemetry: a scoring process with RECSYS_OTEL_EXPORTER=file writes, for one Rank, the server span
(continuing the caller's `traceparent`) and a client span for each Feast read and the Triton inference,
all in the caller's trace, the server span naming the request id the response carries."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from devtools.client import SuiteClient
from devtools.ports import free_port, wait_until
from devtools.suite import SERVICES, grpc_serving
from shoprank.v1 import scoring_pb2

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_one_rank_is_one_trace_across_grpc_feast_and_triton(serving_suite, tmp_path):
    spans_file = tmp_path / "spans.jsonl"
    env = {**serving_suite.env(), "RECSYS_OTEL_EXPORTER": "file", "RECSYS_OTEL_FILE": str(spans_file)}
    port = free_port()
    log = tmp_path / "scoring.log"
    proc = subprocess.Popen([sys.executable, "-m", "services.scoring_service", "--address", f"127.0.0.1:{port}"], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        credentials = serving_suite.credentials()
        wait_until(lambda: grpc_serving(f"127.0.0.1:{port}", SERVICES["scoring"][1], credentials.without_key()), proc, 120, "traced scoring", log)
        client = SuiteClient(serving_suite.address("feedback"), f"127.0.0.1:{port}", credentials=credentials)
        reply = client.scoring.Rank(scoring_pb2.RankRequest(user_id="trace-user", item_ids=["SKU0001", "SKU1001"]), timeout=60,
                                    metadata=(("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-01"),))
        client.close()
        assert reply.model_version and not reply.degraded
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and spans_file.read_text().count("\n") < 4:
            time.sleep(0.2)
        spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    finally:
        proc.terminate()
        proc.wait(20)

    in_trace = [s for s in spans if s["context"]["trace_id"] == "0x" + TRACE_ID]
    server = next(s for s in in_trace if s["name"] == "shoprank.v1.ScoringService/Rank")
    assert server["kind"] == "SpanKind.SERVER" and server["parent_id"] == "0x" + CALLER_SPAN
    assert server["attributes"]["shoprank.request_id"] == reply.request_id
    assert server["attributes"]["rpc.grpc.status_code"] == 0
    assert server["resource"]["attributes"]["service.name"] == "shoprank-scoring"
    children = {s["name"]: s for s in in_trace if s["parent_id"] == server["context"]["span_id"]}
    assert {"feast_shopper", "feast_items", "triton_infer"} <= set(children), sorted(children)
    assert all(children[n]["kind"] == "SpanKind.CLIENT" for n in ("feast_shopper", "feast_items", "triton_infer"))
