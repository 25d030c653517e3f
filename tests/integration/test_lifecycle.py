"""Versions over their life: a worse candidate is rejected and never served, a rollback restores an
earlier version in Rank's answers, and a worker killed mid-training leaves the repository loadable."""
from __future__ import annotations

import json
import time

import pytest

from core.domain import Event
from core.features import FeatureClient
from core.privacy import Pseudonyms
from devtools.client import SuiteClient
from rankers import get_ranker
from rankers.fusion import CO_PURCHASE_FILE
from shoprank.v1 import model_admin_pb2
from shoprank_client.enums import job_state_of
from tests.integration.conftest import start_deployment
from tests.integration.test_loop import wait_job

pytestmark = pytest.mark.integration

CANDIDATES = ["SKU0001", "SKU1001", "SKU2001", "SKU3001"]


def fresh_events(tag: str, n: int = 12) -> list[Event]:
    now = time.time()
    items = ["SKU0001", "SKU0002", "SKU1001", "SKU1002", "SKU2001", "SKU3001"]
    return [Event(f"{tag}-{i}", f"U{i % 4:04d}", items[i % len(items)], "purchase", now - 600 + i) for i in range(n)]


def versions(client: SuiteClient) -> dict[str, model_admin_pb2.ModelVersion]:
    return {v.version: v for v in client.admin.ListVersions(model_admin_pb2.ListVersionsRequest(), timeout=30).versions}


def test_gate_rollback_and_killed_worker(tmp_path, shop):
    # the cross-encoder: its training runs long enough to kill the worker mid-step
    suite = start_deployment(tmp_path, shop, {"RECSYS_RANKER": "cross-encoder"})
    client = suite.client("feedback", "scoring")
    repo_dir = suite.model_repository / "bert_click"
    try:
        # a good candidate passes the gate and serves
        _, fresh = shop.split(0.6)
        client.record_events(fresh)
        done, _ = wait_job(client, client.trigger(job_id="good", max_steps=3).job_id)
        assert job_state_of(done.state) == "SUCCEEDED" and done.new_version == "2", done.message
        assert client.rank("U0001", CANDIDATES).model_version == "2"
        assert versions(client)["2"].gate.startswith("passed")

        # a candidate forced to be worse (a learning rate that wrecks the weights) is kept, not served
        client.record_events(fresh_events("worse", 15))
        done, _ = wait_job(client, client.trigger(job_id="worse", max_steps=8, learning_rate=0.5).job_id)
        assert job_state_of(done.state) == "REJECTED" and done.new_version == "3", done.message
        assert "not served" in done.message
        assert client.rank("U0001", CANDIDATES).model_version == "2"
        listed = versions(client)
        assert listed["3"].gate.startswith("rejected") and not listed["3"].serving and listed["2"].serving

        # rollback to version 1: Rank answers from it; unknown versions are NOT_FOUND
        reply = client.admin.Rollback(model_admin_pb2.RollbackRequest(version="1"), timeout=180)
        assert reply.serving and reply.version == "1"
        assert client.rank("U0001", CANDIDATES).model_version == "1"
        assert versions(client)["1"].serving
        import grpc

        with pytest.raises(grpc.RpcError) as info:
            client.admin.Rollback(model_admin_pb2.RollbackRequest(version="99"), timeout=30)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        # a worker killed during training leaves no half-written version, and the next run recovers
        job = client.trigger(job_id="killed", max_steps=400)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job = client.job("killed")
            if job_state_of(job.state) == "RUNNING" and job.message.startswith("step"):
                break
            time.sleep(0.3)
        assert job.message.startswith("step"), job.message
        suite.kill_process("worker")
        before = sorted(p.name for p in repo_dir.iterdir())
        assert "4" not in before  # nothing published for the killed job
        assert client.rank("U0001", CANDIDATES).model_version == "1"  # serving untouched
        suite.start_worker()
        assert job_state_of(client.job("killed").state) == "FAILED" and "interrupted" in client.job("killed").message
        assert not [p for p in repo_dir.iterdir() if p.name.startswith(".tmp-")]
        client.record_events(fresh_events("after", 12))
        done, _ = wait_job(client, client.trigger(job_id="after-kill", max_steps=3).job_id)
        assert job_state_of(done.state) == "SUCCEEDED" and done.new_version == "4", done.message
        assert client.rank("U0001", CANDIDATES).model_version == "4"
    finally:
        client.close()
        suite.stop()


def baskets(tag: str) -> list[Event]:
    """Multi-item baskets (one shopper, one moment): what co-purchase neighbours are fitted on."""
    now = time.time() - 900  # before fresh_events: a data window follows event time (issue 10)
    pairs = [("U0001", "SKU0001", "SKU1001"), ("U0002", "SKU0001", "SKU2001"), ("U0003", "SKU1001", "SKU3001")]
    return [Event(f"{tag}-{k}-{item}", user, item, "purchase", now + k) for k, (user, *items) in enumerate(pairs) for item in items]


def test_fusion_gate_rejects_a_worse_ranker_and_rollback_serves_the_old_one(tmp_path, shop):
    suite = start_deployment(tmp_path, shop, {})
    client = suite.client("feedback", "scoring")
    try:
        _, fresh = shop.split(0.6)
        client.record_events(fresh + baskets("basket"))
        done, _ = wait_job(client, client.trigger(job_id="good", max_steps=3).job_id)
        assert job_state_of(done.state) == "SUCCEEDED" and done.new_version == "2", done.message
        assert client.rank("U0001", CANDIDATES).model_version == "2"
        assert versions(client)["2"].gate.startswith("passed")
        client.record_events(fresh_events("worse", 15))
        done, _ = wait_job(client, client.trigger(job_id="worse", max_steps=3, learning_rate=0.5).job_id)
        assert job_state_of(done.state) == "REJECTED" and done.new_version == "3", done.message
        assert client.rank("U0001", CANDIDATES).model_version == "2"
        # each version carries its own co-purchase table, and Rank reads the serving version's
        repo = suite.model_repository / "fusion_click"
        tables = {v: json.loads((repo / v / CO_PURCHASE_FILE).read_text()) for v in ("1", "2")}
        assert tables["1"] != tables["2"]  # version 2 learned from baskets version 1 never saw
        features, ranker = FeatureClient(suite.settings()), get_ranker("fusion")
        user = "U0001"  # bought SKU0001 with SKU1001 after version 1 was trained
        stored = Pseudonyms.of(suite.settings())(user)  # the online store knows them by pseudonym
        recent = [i for i, _ in ranker.shopper(features, stored, "2").interests[:20]]

        def expected(version: str) -> dict:
            return {a: [tuple(x) for x in tables[version][a]] for a in dict.fromkeys(recent) if tables[version].get(a)}

        assert ranker.shopper(features, stored, "2").co_purchase == expected("2")

        # rollback to version 1 switches the model and its features together
        reply = client.admin.Rollback(model_admin_pb2.RollbackRequest(version="1"), timeout=180)
        assert reply.serving and client.rank(user, CANDIDATES).model_version == "1"
        assert ranker.shopper(features, stored, "1").co_purchase == expected("1") != expected("2")
        assert sorted(p.name for p in repo.iterdir() if p.name.isdigit()) == ["1", "2", "3"]
    finally:
        client.close()
        suite.stop()


def test_event_volume_triggers_a_fine_tune_that_rank_uses(tmp_path, shop):
    suite = start_deployment(tmp_path, shop, {"RECSYS_AUTO_FINE_TUNE_EVENTS": "10", "RECSYS_FINE_TUNE_STEPS": "8"})
    client = suite.client("feedback", "scoring")
    try:
        from devtools.client import event_message
        from shoprank.v1 import feedback_pb2

        few = client.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(e) for e in fresh_events("vol-a", 4)]), timeout=60)
        assert few.accepted == 4 and few.fine_tune_job_id == ""  # below the threshold
        more = client.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(e) for e in fresh_events("vol-b", 12)]), timeout=60)
        assert more.fine_tune_job_id.startswith("volume-v1-")
        done, _ = wait_job(client, more.fine_tune_job_id)
        assert job_state_of(done.state) == "SUCCEEDED", done.message
        assert client.rank("U0001", CANDIDATES).model_version == done.new_version == "2"
    finally:
        client.close()
        suite.stop()


def test_a_fine_tune_past_its_time_limit_fails_and_serving_stays(tmp_path, shop):
    suite = start_deployment(tmp_path, shop, {"RECSYS_FINE_TUNE_TIME_LIMIT_S": "1", "RECSYS_FINE_TUNE_STEPS": "40"})
    client = suite.client("feedback", "scoring")
    try:
        from devtools.client import event_message
        from shoprank.v1 import feedback_pb2

        client.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(e) for e in fresh_events("slow", 12)]), timeout=60)
        job = client.trigger(job_id="too-slow", max_steps=40)
        done, _ = wait_job(client, job.job_id)
        assert job_state_of(done.state) == "FAILED" and "time limit" in done.message, done.message
        assert client.rank("U0001", CANDIDATES).model_version == "1"  # nothing half-trained was served
    finally:
        client.close()
        suite.stop()
