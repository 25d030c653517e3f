"""Issue 10 item 1 end to end: 16 concurrent storefront clients sending batches of 50 to the real
feedback service over TLS lose nothing and fail no call, on the embedded default (SQLite log, Feast
SQLite online store) and on PostgreSQL + Redis; the online features agree with the log afterwards."""
from __future__ import annotations

import os

import pytest

from core.features import FeatureClient
from core.privacy import Pseudonyms
from core.store import EventLog
from devtools.load import ingest
from devtools.local_servers import drop_postgres_database, flush_redis_db, fresh_postgres_database, postgres_available, redis_available
from devtools.suite import Suite
from tests.integration.conftest import TEST_ENV

pytestmark = pytest.mark.integration

REDIS_DB = 12


@pytest.mark.parametrize("backend", ["embedded", "postgresql+redis"])
def test_sixteen_concurrent_clients_lose_nothing(tmp_path, shop, backend):
    env = dict(TEST_ENV)
    if backend != "embedded":
        if not (redis_available() and postgres_available()):
            pytest.skip("PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are needed for this backend")
        flush_redis_db(REDIS_DB)
        env.update(RECSYS_EVENTLOG_URL=fresh_postgres_database(), RECSYS_FEAST_ONLINE_URL=f"redis://127.0.0.1:6379/{REDIS_DB}")
    suite = Suite(data_dir=tmp_path / "data", model_repository=tmp_path / "models", extra_env=env)
    try:
        suite.start_ingest(shop.items)
        users = [f"load-user-{k}" for k in range(40)]
        report = ingest(suite.address("feedback"), suite.credentials("storefront"), users, sorted(shop.items),
                        clients=16, batches=8, batch_size=50, prefix=f"ingest-{os.getpid()}")
        assert report.failed_calls == 0 and report.retried_calls == 0, report.statuses
        assert len(report.acked) == 16 * 8 * 50
        settings = suite.settings()
        log = EventLog.open(settings.eventlog)
        persisted = {e.event_id for e in log.events.read()}
        assert report.acked <= persisted, f"{len(report.acked - persisted)} acknowledged events were lost"
        # the online store agrees with the log for every shopper (no refresh was skipped)
        features, pseudonyms = FeatureClient(settings), Pseudonyms.of(settings)
        counts = log.events.user_counts_many([pseudonyms(u) for u in users])
        for user in users:
            online = features.get_user(pseudonyms(user))
            assert online is not None and (online.event_count, online.purchase_count) == counts[pseudonyms(user)][:2], user
        print(f"{backend}: {len(report.acked)} events in {report.seconds:.1f}s = {report.events_per_s:.0f} events/s")
    finally:
        suite.stop()
        if backend != "embedded":
            flush_redis_db(REDIS_DB)
            drop_postgres_database(env["RECSYS_EVENTLOG_URL"])


def test_feedback_killed_under_load_loses_no_acknowledged_event(tmp_path, shop):
    """SIGKILL the feedback service while 16 clients send; the supervisor starts it again, clients retry
    their batch with the same ids: everything acknowledged is in the log, nothing twice."""
    import threading
    import time

    suite = Suite(data_dir=tmp_path / "data", model_repository=tmp_path / "models", extra_env=dict(TEST_ENV))
    try:
        suite.start_ingest(shop.items)
        box: dict = {}
        load = threading.Thread(target=lambda: box.update(report=ingest(
            suite.address("feedback"), suite.credentials("storefront"), [f"kill-user-{k}" for k in range(200)], sorted(shop.items),
            clients=16, batches=20, batch_size=50, prefix="kill")))
        load.start()
        time.sleep(1.5)
        suite.kill_process_keep("feedback")
        assert suite.restart_dead() == ["feedback"]
        load.join()
        report = box["report"]
        assert report.failed_calls == 0 and report.retried_calls > 0, report.statuses
        events = EventLog.open(suite.settings().eventlog).events.read()
        persisted = [e.event_id for e in events]
        assert len(persisted) == len(set(persisted)) == 16 * 20 * 50  # every batch landed once, retries deduplicated
        assert report.acked == set(persisted)
    finally:
        suite.stop()
