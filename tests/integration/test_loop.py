"""The whole loop on real processes: upsert items → record events → Rank (version 1) → record
purchases → trigger fine-tune → job succeeds → Rank answers from version 2; lineage lists both.
Once on the embedded default (SQLite everywhere, fusion ranker) and once on PostgreSQL (event log, Feast
registry) + Redis (Celery broker, Feast online store) with the cross-encoder ranker."""
from __future__ import annotations

import time

import pytest

from core.domain import Event
from devtools.client import SuiteClient
from devtools.local_servers import drop_postgres_database, fresh_postgres_database, postgres_available
from feature_repo.definitions import FEATURE_VIEWS
from shoprank.v1 import model_admin_pb2, scoring_pb2
from shoprank_client.enums import job_state_of
from shoptext.text import ItemText
from tests.integration.conftest import flush_redis_db, redis_available, start_deployment

pytestmark = pytest.mark.integration


def wait_job(client: SuiteClient, job_id: str, timeout: float = 600.0):
    deadline = time.monotonic() + timeout
    seen_progress = set()
    while time.monotonic() < deadline:
        job = client.job(job_id)
        seen_progress.add(round(job.progress, 2))
        if job_state_of(job.state) in ("SUCCEEDED", "REJECTED", "FAILED"):
            return job, seen_progress
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} still {job_state_of(job.state)} after {timeout}s: {job.message}")


def run_loop(suite, shop) -> None:
    client = suite.client()
    try:
        # upsert items: two new products arrive
        new_items = {"NEW-1": ItemText("Pink Floral Teapot", "A new teapot.", "kitchen", 12.5), "NEW-2": ItemText("Owl Lantern", "", "lighting", 9.0)}
        assert client.upsert_items(new_items) == 2

        # record events for a shopper
        now = time.time()
        history = [Event(f"loop-e{i}", "loop-user", item, "click", now - 3600 + i) for i, item in enumerate(["NEW-1", "SKU0001", "SKU0002"])]
        assert client.record_events(history) == (3, 0, 0)

        # Rank answers from version 1, with a request id
        candidates = ["NEW-1", "NEW-2", "SKU0001", "SKU1001", "SKU2001", "SKU3001"]
        first = client.rank("loop-user", candidates)
        assert first.model_version == "1" and not first.degraded and first.request_id
        assert sorted(i.item_id for i in first.items) == sorted(candidates)
        assert [i.rank for i in first.items] == list(range(1, len(candidates) + 1))
        probs = [i.probability for i in first.items]
        assert probs == sorted(probs, reverse=True) and all(0.0 < p < 1.0 for p in probs)

        # record purchases attributed to that ranking, plus the rest of the shop's stream
        purchases = [Event(f"loop-p{i}", "loop-user", item, "purchase", now - 60 + i, first.request_id) for i, item in enumerate(["NEW-2", "SKU1001"])]
        assert client.record_events(purchases)[0] == 2
        _, fresh = shop.split(0.6)
        client.record_events(fresh)

        # trigger a fine-tune; the same job id again is the same job (idempotent)
        job = client.trigger(job_id="loop-job", max_steps=3)
        assert job_state_of(job.state) in ("PENDING", "RUNNING") and job.parent_version == "1"
        again = client.trigger(job_id="loop-job", max_steps=3)
        assert again.job_id == job.job_id and again.created == job.created
        done, progress = wait_job(client, "loop-job")
        assert job_state_of(done.state) == "SUCCEEDED", done.message
        assert done.new_version == "2"
        assert max(progress) == 1.0

        # Rank now answers from version 2
        second = client.rank("loop-user", candidates)
        assert second.model_version == "2" and not second.degraded

        # lineage lists both, newest first; only version 2 is serving
        versions = client.admin.ListVersions(model_admin_pb2.ListVersionsRequest(), timeout=30).versions
        assert [v.version for v in versions] == ["2", "1"]
        v2, v1 = versions
        assert v2.parent_version == "1" and v1.parent_version == ""
        assert v2.serving and not v1.serving
        assert v2.job_id == "loop-job" and v2.example_count > 0 and v2.final_loss > 0
        assert v2.data_to.seconds >= v1.data_to.seconds
    finally:
        client.close()


def test_whole_loop_embedded_default(tmp_path, shop):
    # a tolerant gate: the loop's mechanics are under test (test_lifecycle tests the gate), and a 3-step
    # fine-tune on this small synthetic shop lands within noise of its parent's NDCG
    suite = start_deployment(tmp_path, shop, {"RECSYS_GATE_NDCG_TOLERANCE": "1.0"})
    try:
        run_loop(suite, shop)
        # With Triton gone, Rank still answers, in the given order, and says it is degraded.
        suite.triton.stop()
        client = suite.client("feedback", "scoring")
        reply = client.scoring.Rank(scoring_pb2.RankRequest(user_id="loop-user", item_ids=["SKU0001", "NEW-1"]), timeout=60)
        assert reply.degraded and reply.model_version == "" and [i.item_id for i in reply.items] == ["SKU0001", "NEW-1"]
        client.close()
    finally:
        suite.stop()


@pytest.mark.redis
@pytest.mark.skipif(not redis_available(), reason="no Redis answers on 127.0.0.1:6379")
@pytest.mark.skipif(not postgres_available(), reason="no PostgreSQL answers on 127.0.0.1:5432")
def test_whole_loop_on_postgresql_and_redis(tmp_path, shop):
    """The scale-out stores: PostgreSQL holds the event log and Feast's registry, Redis is Celery's broker
    and Feast's online store; with the cross-encoder ranker."""
    for db in (13, 14):
        flush_redis_db(db)
    database = fresh_postgres_database()
    env = {
        "RECSYS_EVENTLOG_URL": database,
        "RECSYS_FEAST_REGISTRY_URL": database,
        "RECSYS_CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
        "RECSYS_CELERY_RESULT_URL": "redis://127.0.0.1:6379/13",
        "RECSYS_FEAST_ONLINE_URL": "redis://127.0.0.1:6379/14",
        "RECSYS_RANKER": "cross-encoder",
    }
    suite = start_deployment(tmp_path, shop, env)
    try:
        run_loop(suite, shop)
        import redis
        import sqlalchemy as sa

        assert redis.Redis(host="127.0.0.1", port=6379, db=14).dbsize() > 0, "Feast wrote nothing to Redis"
        engine = sa.create_engine(database)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar() > len(shop.events) // 2
            assert conn.execute(sa.text("SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'")).scalar() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM feature_views")).scalar() == len(FEATURE_VIEWS)
        engine.dispose()
        for local in ("eventlog.db", "feast/online_store.db", "feast/registry.db", "celery-broker.db"):
            assert not (suite.data_dir / local).exists(), local
    finally:
        suite.stop()
        drop_postgres_database(database)
        for db in (13, 14):
            flush_redis_db(db)
