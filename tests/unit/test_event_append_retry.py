"""A transient database error during an event append: retried inside the store on real PostgreSQL, and
answered UNAVAILABLE (retry is safe) when it persists, never INTERNAL."""
import time

import grpc
import pytest
import sqlalchemy as sa

from core.domain import Event
from core.errors import status_for
from core.store import EventLog
from devtools.local_servers import POSTGRES_ADMIN_URL, drop_postgres_database, fresh_postgres_database, postgres_available


def _events(prefix: str, n: int) -> list[Event]:
    now = time.time()
    return [Event(f"{prefix}-{i}", "u1", f"SKU{i}", "click", now + i) for i in range(n)]


@pytest.mark.skipif(not postgres_available(), reason="no PostgreSQL answers on 127.0.0.1:5432")
def test_an_append_after_the_server_dropped_its_connections_is_retried_and_stored():
    url = fresh_postgres_database()
    log = EventLog.open(url)
    try:
        assert log.events.append(_events("a", 3)) == {"a-0", "a-1", "a-2"}  # the pool now holds a connection
        name = url.rsplit("/", 1)[1]
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # what a PostgreSQL restart or a failover does to the pool
            killed = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :d"),
                                  {"d": name}).scalar_one()
        admin.dispose()
        assert killed >= 1
        assert log.events.append(_events("b", 2)) == {"b-0", "b-1"}
        assert log.events.append(_events("b", 2)) == set()  # the retry did not store anything twice
        with log.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one() == 5
    finally:
        log.engine.dispose()
        drop_postgres_database(url)


def test_a_database_error_is_unavailable_and_says_a_retry_is_safe():
    exc = sa.exc.OperationalError("INSERT ...", {}, ConnectionError("server closed the connection unexpectedly"))
    code, message = status_for(exc)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "retrying the same call is safe" in message and "INSERT" not in message
