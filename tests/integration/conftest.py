"""Fixtures that start the whole suite as real processes (Merlin's run_triton_server() style):
free ports, readiness waits, fail fast with the process log if one dies, always cleaned up."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devtools.suite import Suite
from shopdata import Shop
from shopdata.synthetic import generate

pytestmark = pytest.mark.integration

TEST_ENV = {
    "RECSYS_MAX_CANDIDATES": "50",
    "RECSYS_FINE_TUNE_BATCH": "8",
    "RECSYS_FINE_TUNE_STEPS": "3",
}


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def flush_redis_db(db: int) -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


@pytest.fixture(scope="session")
def shop() -> Shop:
    return generate(n_users=16, n_days=30, seed=11)


def start_deployment(root: Path, shop: Shop, extra_env: dict[str, str]) -> Suite:
    """Catalogue and past events through the feedback service, version 1 bootstrapped, then
    tritonserver, scoring, profile and a Celery worker."""
    from workers.publishing import bootstrap

    suite = Suite(data_dir=root / "data", model_repository=root / "triton_models", extra_env={**TEST_ENV, **extra_env})
    try:
        suite.prepare()
        suite.start_services(("feedback", "profile"))
        past, _ = shop.split(0.6)
        client = suite.client("feedback")
        client.upsert_items(shop.items)
        client.record_events(past)
        client.close()
        bootstrap(suite.settings(), max_steps=2, batch_size=8)
        suite.start_triton()
        suite.start_services(("scoring",))
        suite.start_worker()
    except BaseException:
        suite.stop()
        raise
    return suite


@pytest.fixture(scope="session")
def serving_suite(tmp_path_factory, shop):
    """One shared deployment for tests that do not change which version serves."""
    suite = start_deployment(tmp_path_factory.mktemp("serving"), shop, {})
    yield suite
    suite.stop()


@pytest.fixture
def client(serving_suite):
    c = serving_suite.client()
    yield c
    c.close()
