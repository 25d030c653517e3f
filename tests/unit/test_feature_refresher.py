"""Issue 26: RecordEvents answers once its events are durable; the features they change are refreshed on
the refresher's thread (core.feature_refresher), in passes that coalesce queued batches. A caller waits
when the refresher is close, is answered at once when it is behind, and a failed pass is retried; the
rows pushed are always those of the log. Real SQLite log and FeatureSync; the online store's side is a
recorder."""
from __future__ import annotations

import threading
import time

import pytest

import core.feature_refresher as feature_refresher
from core.domain import Event
from core.feature_refresher import FeatureRefresher
from core.feature_sync import FeatureSync
from core.store import EventLog
from tests.unit.test_shopper_rows import Rows, full_read


class GatedSync(FeatureSync):
    """A FeatureSync whose passes can be held at a gate or made to fail, and which records each pass."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = 0
        self.passes: list[frozenset[str]] = []

    def after_batch(self, user_ids, item_ids, fresh=None) -> bool:
        self.entered.set()
        self.gate.wait(10)
        self.passes.append(frozenset(user_ids))
        if self.fail:
            self.fail -= 1
            raise ConnectionError("online store unreachable")
        return super().after_batch(user_ids, item_ids, fresh)


@pytest.fixture()
def setup(tmp_path):
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    rows = Rows()
    sync = GatedSync(log, rows, refresh_s=1e9)  # type: ignore[arg-type]
    return log, rows, sync


def record(log: EventLog, refresher: FeatureRefresher, batch: list[Event]):
    """What the feedback service does: append, then queue the refresh of what was stored."""
    fresh = log.events.append(batch)
    return refresher.submit([e for e in batch if e.event_id in fresh], {e.user_id for e in batch}, {e.item_id for e in batch})


def test_a_caller_waits_for_its_refresh_when_the_refresher_is_close(setup):
    log, rows, sync = setup
    refresher = FeatureRefresher(sync, wait_s=5.0)
    refresher.start()
    ticket = record(log, refresher, [Event("e1", "u", "a", "click", 100.0), Event("e2", "v", "b", "purchase", 101.0)])
    assert refresher.refreshed(ticket)  # read-your-writes: the row is there when the call answers
    assert rows.users == full_read(log, ["u", "v"])


def test_queued_batches_are_refreshed_in_one_pass_and_each_shopper_once(setup):
    log, rows, sync = setup
    refresher = FeatureRefresher(sync, wait_s=5.0)
    refresher.start()
    sync.gate.clear()
    first = record(log, refresher, [Event("e0", "w", "a", "click", 99.0)])
    assert sync.entered.wait(5)  # the first pass is running (held at the gate)
    tickets = [record(log, refresher, [Event(f"e{k}", user, "a", "click", 100.0 + k)]) for k, user in enumerate(["u", "v", "u", "v"], 1)]
    sync.gate.set()
    assert refresher.refreshed(first) and all(refresher.refreshed(t) for t in tickets)
    assert sync.passes == [frozenset({"w"}), frozenset({"u", "v"})]
    assert rows.users == full_read(log, ["u", "v", "w"])


def test_a_caller_is_answered_at_once_when_the_refresher_is_behind_and_the_rows_follow(setup):
    log, rows, sync = setup
    refresher = FeatureRefresher(sync, wait_s=0.05)
    refresher._cost_s = 1.0  # as if each shopper took a second: any queue is further than wait_s
    refresher.start()
    sync.gate.clear()
    ticket = record(log, refresher, [Event("e1", "u", "a", "click", 100.0)])
    started = time.monotonic()
    assert not refresher.refreshed(ticket)  # features pending: the call does not wait for them
    assert time.monotonic() - started < 1.0
    sync.gate.set()
    assert refresher.drain(10)
    assert rows.users == full_read(log, ["u"])


def test_never_waiting_when_the_wait_is_zero(setup):
    log, rows, sync = setup
    refresher = FeatureRefresher(sync, wait_s=0.0)
    refresher.start()
    sync.gate.clear()
    assert not refresher.refreshed(record(log, refresher, [Event("e1", "u", "a", "click", 100.0)]))
    sync.gate.set()
    assert refresher.drain(10) and rows.users == full_read(log, ["u"])


def test_a_failed_pass_reaches_its_waiting_caller_and_is_retried_until_it_succeeds(setup, monkeypatch):
    monkeypatch.setattr(feature_refresher, "RETRY_S", (0.05, 0.1))
    log, rows, sync = setup
    sync.fail = 2
    refresher = FeatureRefresher(sync, wait_s=5.0)
    refresher.start()
    ticket = record(log, refresher, [Event("e1", "u", "a", "click", 100.0)])
    with pytest.raises(ConnectionError):
        refresher.refreshed(ticket)  # the caller answers UNAVAILABLE (retrying the batch is safe)
    assert refresher.drain(10)
    assert refresher.failures == 2 and sync.passes == [frozenset({"u"})] * 3
    assert rows.users == full_read(log, ["u"])  # nobody retried the batch: the refresher did


def test_submitting_waits_while_the_backlog_is_longer_than_max_lag(setup):
    log, rows, sync = setup
    refresher = FeatureRefresher(sync, wait_s=0.0, max_lag_s=0.5)
    refresher._cost_s = 0.2  # three queued shoppers: 0.6 s of work, over the bound
    refresher.start()
    sync.gate.clear()
    record(log, refresher, [Event("e0", "w", "a", "click", 99.0)])
    assert sync.entered.wait(5)
    refresher._running_ends = 0.0  # the held pass counts for nothing: only the queue is measured
    for k, user in enumerate(["u1", "u2", "u3"]):
        record(log, refresher, [Event(f"e{k + 1}", user, "a", "click", 100.0)])
    submitted = threading.Event()
    threading.Thread(target=lambda: (record(log, refresher, [Event("e9", "u9", "a", "click", 100.0)]), submitted.set()), daemon=True).start()
    assert not submitted.wait(0.5)  # held back: the backlog would take longer than max_lag_s
    sync.gate.set()
    assert submitted.wait(10)
    assert refresher.drain(10) and set(rows.users) == {"w", "u1", "u2", "u3", "u9"}


def test_catch_up_refreshes_the_shoppers_of_recently_received_events(setup):
    log, rows, sync = setup
    log.events.append([Event("old", "x", "a", "click", 100.0)])
    since = time.time()
    log.events.append([Event("new1", "u", "a", "click", 50.0), Event("new2", "v", "b", "purchase", 60.0)])
    users = log.events.users_received_since(since)  # by arrival, whatever the events' own time stamps say
    assert users == ["u", "v"]
    refresher = FeatureRefresher(sync, wait_s=0.0)
    refresher.start()
    refresher.catch_up(users)
    assert refresher.drain(10) and set(rows.users) == {"u", "v"}
    assert log.events.users_received_since(since, chunk=1) == ["u", "v"]  # the chunked walk stops at the same place
