"""Issue 26: RecordEvents answers once the events are durable; the shopper rows they change are refreshed
off the call (core.feature_refresher). By default the call waits for that refresh (the next read sees
the events); with RECSYS_REFRESH_WAIT_MS=0, as when the refresher is behind, the answer says
features_pending and the rows follow on their own; a SIGTERM finishes the queued refreshes before the
process exits. A feedback process of its own on the serving suite, over TLS through the client library."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from core.features import FeatureClient
from core.privacy import Pseudonyms
from core.settings import PROJECT_ROOT
from devtools.ports import free_port, wait_until
from devtools.suite import grpc_serving
from shoprank_client import Event, ShopRankClient

pytestmark = pytest.mark.integration


def feedback_process(suite, tmp_path, env: dict[str, str]) -> tuple[subprocess.Popen, str, object]:
    address = f"127.0.0.1:{free_port()}"
    log_file = tmp_path / "feedback.log"
    proc = subprocess.Popen([sys.executable, "-m", "services.feedback_service", "--address", address],
                            env={**suite.env(), **env}, cwd=PROJECT_ROOT, stdout=open(log_file, "wb"), stderr=subprocess.STDOUT)
    wait_until(lambda: grpc_serving(address, "shoprank.v1.FeedbackService", suite.credentials()), proc, 120, "feedback", log_file)
    return proc, address, log_file


def storefront(suite, feedback_address: str) -> ShopRankClient:
    settings = suite.settings()
    key = (settings.secrets_path / "storefront.key").read_text().strip()
    return ShopRankClient(feedback_address, suite.address("scoring"), suite.address("profile"), ca=settings.ca_cert, api_key=key, timeout_s=30)


def clicks(user: str, n: int, tag: str) -> list[Event]:
    now = time.time()
    return [Event(f"{tag}-{time.time_ns():x}-{k}", user, f"SKU{k + 1:04d}", "click", now - 10 + k) for k in range(n)]


def events_online(suite, user: str) -> int:
    row = FeatureClient(suite.settings()).get_user(Pseudonyms.of(suite.settings())(user))
    return row.event_count if row is not None else 0


def test_by_default_the_answer_comes_after_the_refresh(serving_suite, tmp_path):
    proc, address, _ = feedback_process(serving_suite, tmp_path, {})
    try:
        with storefront(serving_suite, address) as shop:
            answer = shop.record_events(clicks("refresh-wait-user", 3, "rw"))
            assert answer.accepted == 3 and not answer.features_pending
            assert events_online(serving_suite, "refresh-wait-user") == 3  # read-your-writes
            assert shop.get_profile("refresh-wait-user").event_count == 3
    finally:
        proc.terminate()
        proc.wait(30)


def test_without_waiting_the_answer_says_pending_and_the_rows_follow_even_through_a_sigterm(serving_suite, tmp_path):
    proc, address, log_file = feedback_process(serving_suite, tmp_path, {"RECSYS_REFRESH_WAIT_MS": "0"})
    try:
        with storefront(serving_suite, address) as shop:
            answer = shop.record_events(clicks("refresh-async-user", 4, "ra"))
            assert answer.accepted == 4 and answer.features_pending
            wait_until(lambda: events_online(serving_suite, "refresh-async-user") == 4, proc, 30, "the refreshed row", log_file)

            users = [f"refresh-drain-user-{k}" for k in range(20)]
            for user in users:  # acknowledged, queued, then the process is told to stop at once
                assert shop.record_events(clicks(user, 2, "rd")).accepted == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert all(events_online(serving_suite, user) == 2 for user in users)  # drained before it exited
        assert "still queued" not in log_file.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
