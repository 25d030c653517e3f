"""Issue 26: a shopper's next event batch merges its events into the row this process pushed before
(core.feature_sync.ShopperRows) instead of reading their whole interest history again, and the row it
pushes is always the one a full read of the log gives, whoever else wrote or deleted their events."""
from __future__ import annotations

import random

import pytest

import core.feature_sync as feature_sync
from core.domain import Event
from core.feature_sync import FeatureSync, ShopperRows
from core.store import EventLog


class Rows:
    """What FeatureSync pushes (the online store's side of it)."""

    def __init__(self) -> None:
        self.users: dict = {}

    def push_users(self, rows):
        self.users.update(rows)

    def push_popularity(self, counts_30d, counts_7d, as_of=0.0): pass

    def push_shop(self, *args, **kwargs): pass

    def forget_user(self, user_id):
        self.users.pop(user_id, None)


def full_read(log: EventLog, users) -> dict:
    """The rows a process that never saw these shoppers pushes: everything read from the log."""
    rows = Rows()
    FeatureSync(log, rows).users(users)  # type: ignore[arg-type]
    return rows.users


def append(sync: FeatureSync, log: EventLog, batch: list[Event]) -> None:
    """What the feedback service's ingest does: append, then refresh with the events that were stored."""
    fresh = log.events.append(batch)
    stored = list({e.event_id: e for e in batch if e.event_id in fresh}.values())
    sync.after_batch({e.user_id for e in batch}, {e.item_id for e in batch}, stored)


@pytest.fixture(autouse=True)
def small_limit(monkeypatch):
    monkeypatch.setattr(feature_sync, "INTEREST_LIMIT", 7)  # histories longer than the limit are the hard case


def test_merged_rows_equal_a_full_read_of_the_log(tmp_path):
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    rows = Rows()
    sync = FeatureSync(log, rows, refresh_s=1e9)  # type: ignore[arg-type]
    rng = random.Random(3)
    users = [f"u{k}" for k in range(4)]
    for b in range(40):
        # ties in time, events older than the kept ones, impressions, a duplicate id now and then
        batch = [Event(f"e{b}-{i}", rng.choice(users), rng.choice("abcdef"), rng.choice(["click", "purchase", "impression", "add_to_cart"]),
                       float(rng.choice([100, 200, 300, 1000 + b]))) for i in range(rng.randint(1, 4))]
        if b % 7 == 3:
            batch.append(Event(f"e{b - 1}-0", "u0", "a", "purchase", 5.0))
        append(sync, log, batch)
        full = full_read(log, users)
        assert rows.users == {u: full[u] for u in rows.users}
    assert sync.merged_rows > 60  # most batches merged; the first of each shopper read the log


def test_events_written_elsewhere_send_the_shopper_to_a_full_read(tmp_path):
    """Another feedback replica appends a shopper's events this process never sees; retention deletes
    some. The counts no longer add up, so the next batch reads the log instead of merging."""
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    rows = Rows()
    sync = FeatureSync(log, rows, refresh_s=1e9)  # type: ignore[arg-type]
    append(sync, log, [Event("a1", "u", "a", "purchase", 100.0)])
    log.events.append([Event("other-replica", "u", "b", "click", 150.0)])  # not through this sync
    merged = sync.merged_rows
    append(sync, log, [Event("a2", "u", "c", "click", 200.0)])
    assert sync.merged_rows == merged and rows.users == full_read(log, ["u"])
    assert [i for i, _ in rows.users["u"].interests] == ["c", "b", "a"]

    log.events.delete_older_than(120.0)  # retention, without telling this process
    append(sync, log, [Event("a3", "u", "d", "click", 300.0)])
    assert sync.merged_rows == merged and [i for i, _ in rows.users["u"].interests] == ["d", "c", "b"]
    append(sync, log, [Event("a4", "u", "e", "click", 400.0)])
    assert sync.merged_rows == merged + 1 and rows.users == full_read(log, ["u"])


def test_an_erased_shopper_is_never_merged_into_their_old_row(tmp_path):
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    rows = Rows()
    sync = FeatureSync(log, rows, refresh_s=1e9)  # type: ignore[arg-type]
    append(sync, log, [Event("a1", "u", "a", "purchase", 100.0)])
    receipt = log.erasures.tombstone("u", "admin")
    log.events.delete_user("u")
    append(sync, log, [Event("a2", "u", "b", "click", receipt.at + 10)])
    assert [i for i, _ in rows.users["u"].interests] == ["b"] and rows.users == full_read(log, ["u"])


def test_remembered_rows_stay_within_their_event_budget():
    rows = ShopperRows(max_events=10)
    for k in range(5):
        rows.remember(f"u{k}", (4, 0, 0.0), [("a", "click", float(t), f"e{k}{t}") for t in range(4)])
    assert len(rows) == 2  # the least recently remembered went first
    assert rows.merged("u4", [], (4, 0, 0.0)) is not None and rows.merged("u0", [], (4, 0, 0.0)) is None


def test_an_event_appended_during_a_full_read_is_not_merged_twice(tmp_path):
    """This process's own request thread appends a shopper's event between the refresh pass's count and its
    interest read (the refresher runs beside ingest): the read already holds the event, the next pass
    brings it again as fresh, and the counts add up. The row must hold it once."""
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    rows = Rows()
    sync = FeatureSync(log, rows, refresh_s=1e9)  # type: ignore[arg-type]
    log.events.append([Event("a1", "u", "a", "click", 100.0)])  # before this process started: its first pass reads the log
    racing = Event("a2", "u", "b", "click", 200.0)
    read = log.events.recent_events_many

    def read_after_a_concurrent_append(users, limit):
        log.events.append([racing])
        return read(users, limit)

    log.events.recent_events_many = read_after_a_concurrent_append  # type: ignore[method-assign]
    sync.users(["u"])
    log.events.recent_events_many = read  # type: ignore[method-assign]
    sync.after_batch({"u"}, {"b"}, [racing])  # the pass that takes the racing event's own batch
    assert rows.users == full_read(log, ["u"])
    assert [i for i, _ in rows.users["u"].interests] == ["b", "a"]
