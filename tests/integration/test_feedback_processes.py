"""RECSYS_FEEDBACK_PROCESSES: one feedback address served by several processes (SO_REUSEPORT), each a
replica of the feedback service. Concurrent batches for the same shoppers through different processes
are all stored once, and each shopper's online row ends as a full read of the log would make it (the
online store keeps the row read last, whichever process pushes last)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from core.domain import Event
from core.feature_sync import INTEREST_LIMIT
from core.features import FeatureClient
from core.privacy import Pseudonyms
from core.settings import PROJECT_ROOT
from core.store import EventLog
from devtools.client import event_message, open_channel
from devtools.ports import eventually, free_port, wait_until
from devtools.suite import grpc_serving
from shoprank.v1 import feedback_pb2, feedback_pb2_grpc
from tests.integration.test_scoring_processes import _children, _cpu_ticks, stop_supervisor

pytestmark = pytest.mark.integration

SHOPPERS = ["fp-shopper-1", "fp-shopper-2"]
ITEMS = ["SKU0001", "SKU1001", "SKU2001", "SKU3001", "SKU0002"]


def _difference(rows: list, want: list) -> str:
    """Where each shopper's online row differs from the log's (the full rows are too long for a message)."""
    out = []
    for k, (row, expected) in enumerate(zip(rows, want)):
        if row is None or row == expected:
            out.append(f"shopper {k}: {'no row' if row is None else 'same'}")
            continue
        first = next((n for n, (a, b) in enumerate(zip(row[0], expected[0])) if a != b), min(len(row[0]), len(expected[0])))
        out.append(f"shopper {k}: count {row[1]} vs log {expected[1]}; {len(row[0])} vs {len(expected[0])} interests, first "
                   f"difference at {first}: {row[0][first:first + 2]} vs {expected[0][first:first + 2]}")
    return "; ".join(out)


def test_two_processes_store_every_event_and_leave_each_shopper_row_as_the_log_says(serving_suite, tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    log_file = tmp_path / "feedback-2.log"
    proc = subprocess.Popen([sys.executable, "-m", "services.feedback_service", "--address", address],
                            env={**serving_suite.env(), "RECSYS_FEEDBACK_PROCESSES": "2"}, cwd=PROJECT_ROOT,
                            stdout=open(log_file, "wb"), stderr=subprocess.STDOUT)
    children: list[int] = []
    try:
        wait_until(lambda: grpc_serving(address, "shoprank.v1.FeedbackService", serving_suite.credentials()), proc, 120, "feedback", log_file)
        wait_until(lambda: len(_children(proc.pid)) == 2, proc, 60, "feedback children", log_file)
        children = _children(proc.pid)
        before = {p: _cpu_ticks(p) for p in children}
        accepted: list[int] = []
        lock = threading.Lock()
        now = time.time()

        def client(c: int) -> None:
            channel = open_channel(address, serving_suite.credentials("storefront"), own_connection=True)
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            for b in range(12):
                events = [Event(f"fp-{c}-{b}-{k}", SHOPPERS[k], ITEMS[(c + b + k) % len(ITEMS)], "click", now - 100 + c + b / 100)
                          for k in range(len(SHOPPERS))]
                reply = stub.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(e) for e in events]), timeout=60)
                with lock:
                    accepted.append(reply.accepted)
            channel.close()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(accepted) == 8 * 12 * len(SHOPPERS)
        busy = [p for p, ticks in before.items() if _cpu_ticks(p) - ticks >= 3]
        assert len(busy) == 2, f"only {busy} of {children} took batches: connections were not spread"

        settings = serving_suite.settings()
        keys = [Pseudonyms.of(settings)(s) for s in SHOPPERS]
        log = EventLog.open(settings.eventlog)
        expected = log.events.recent_events_many(keys, INTEREST_LIMIT)
        features = FeatureClient(settings)

        def rows() -> list[tuple[list, int] | None]:
            return [None if (row := features.get_user(key)) is None else ([(i, ts) for i, ts in row.interests], row.event_count)
                    for key in keys]

        want = [([(i, ts) for i, _, ts, _ in expected[key]], len(expected[key])) for key in keys]
        # A reply may say features_pending (the refresher was further behind than RECSYS_REFRESH_WAIT_MS on a
        # busy machine): the rows then follow within seconds, without another call.
        assert eventually(lambda: rows() == want, timeout=30, interval=0.2), _difference(rows(), want)
    finally:
        stop_supervisor(proc, children, "feedback")
