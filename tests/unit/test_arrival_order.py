"""Issue 10, items 1 and 2 at their cause: events are numbered in arrival (commit) order, concurrent
appends and feature refreshes never fail or lose an event, and a fine-tune trains on what *arrived*
after its parent's window, so one event stamped in the future cannot hide every later arrival."""
from __future__ import annotations

import threading
import time

import pytest

from core.domain import Event, ItemText
from core.feature_sync import FeatureSync
from core.features import FeatureClient, apply
from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog
from rankers import get_ranker
from rankers.base import NothingToLearn, TrainingRun

DAY = 86400.0


def test_arrival_numbers_follow_commits_not_timestamps(tmp_path):
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    log.events.append([Event("late", "u", "a", "purchase", 5_000.0), Event("early", "u", "b", "purchase", 1_000.0)])
    log.events.append([Event("early", "u", "b", "purchase", 1_000.0), Event("next", "v", "a", "click", 2_000.0)])  # one duplicate
    seqs = {e.event_id: e.seq for e in log.events.read()}
    assert seqs == {"late": 1, "early": 2, "next": 3}
    assert log.events.positive_events_after(1) == 2 and log.events.newest_seq() == 3


def test_concurrent_appends_number_every_event_once(tmp_path):
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    errors: list[BaseException] = []

    def client(c: int) -> None:
        try:
            for b in range(10):
                # every batch repeats one id another client also sends: dedup must hold under concurrency
                batch = [Event(f"c{c}-b{b}-{i}", f"u{c}", "a", "click", 1_000.0 + i) for i in range(20)]
                log.events.append(batch + [Event(f"shared-{b}", "s", "a", "click", 1.0e3)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    events = log.events.read()
    assert len(events) == 16 * 10 * 20 + 10
    assert sorted(e.seq for e in events) == list(range(1, len(events) + 1))  # unique and gap-free


def test_concurrent_batches_refresh_the_sqlite_online_store_without_failing(tmp_path):
    """Feast's stock SQLite store failed ~2% of such refreshes ("cannot start a transaction within a
    transaction"); the thread-safe store (and refreshes run one at a time) fail none and lose no shopper."""
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    apply(settings)
    log = EventLog.open(settings.eventlog)
    catalogue = {f"i{k}": ItemText(f"item {k}") for k in range(20)}
    log.catalogue.upsert(catalogue)
    features = FeatureClient(settings)
    features.push_items(catalogue)
    sync = FeatureSync(log, features, refresh_s=0.05)
    errors: list[BaseException] = []
    now = time.time()

    def client(c: int) -> None:
        try:
            for b in range(6):
                batch = [Event(f"c{c}-{b}-{i}", f"u{c}-{i % 5}", f"i{(c + i) % 20}", "purchase", now - 100 + b) for i in range(25)]
                log.events.append(batch)
                sync.after_batch({e.user_id for e in batch}, {e.item_id for e in batch})
                features.get_user(f"u{c}-0")  # reads interleave with other threads' writes
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    for c in range(16):
        for u in range(5):
            user = features.get_user(f"u{c}-{u}")
            assert user is not None and user.purchase_count == 30  # 6 batches x 5 events each


def test_sync_failure_reaches_every_batch_it_covered(tmp_path):
    class Broken:
        def push_users(self, rows):
            raise ConnectionError("online store down")

    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    sync = FeatureSync(log, Broken())  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        sync.after_batch({"u"}, {"a"})


def test_a_future_stamped_event_does_not_hide_later_arrivals_from_fine_tuning(tmp_path):
    """The issue's reproduction: one event stamped ahead of the clock, then many stamped earlier. By
    timestamp the next fine-tune finds nothing new; by arrival it trains on all of them."""
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    log = EventLog.open(settings.eventlog)
    log.events.append([Event("v1-data", "u", "a", "purchase", 1_000.0)])
    parent_seq = log.events.newest_seq()
    log.events.append([Event("future", "u", "b", "purchase", 9_999.0)])  # stamped ahead: moves the newest time
    log.events.append([Event(f"after-{k}", f"w{k}", "a", "purchase", 2_000.0 + k) for k in range(5)])
    events = log.events.read()
    repo = ModelRepository(settings.model_repository, "fusion_click")
    by_time = TrainingRun(settings, log, repo, parent=1, since=9_999.0, job_id="t")
    by_arrival = TrainingRun(settings, log, repo, parent=1, since=9_999.0, after_seq=parent_seq + 1, job_id="t")
    assert [e.event_id for e in events if by_time.is_new(e)] == []
    assert sorted(e.event_id for e in events if by_arrival.is_new(e)) == [f"after-{k}" for k in range(5)]


def test_fusion_trainer_trains_on_late_arrivals_and_records_the_window(tmp_path):
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    log = EventLog.open(settings.eventlog)
    catalogue = {f"i{k}": ItemText(f"item number {k}", category="c") for k in range(12)}
    log.catalogue.upsert(catalogue)
    log.events.append([Event(f"old-{u}-{d}", f"u{u}", f"i{(u + d) % 12}", "purchase", 1_000.0 + d * DAY + u)
                       for u in range(6) for d in range(4)])
    seen = log.events.newest_seq()
    log.events.append([Event("ahead", "u0", "i1", "purchase", 1_000.0 + 30 * DAY)])
    log.events.append([Event(f"late-{u}", f"u{u}", f"i{(u + 5) % 12}", "purchase", 1_000.0 + 5 * DAY + u) for u in range(6)])
    repo = ModelRepository(settings.model_repository, "fusion_click")
    trainer = get_ranker("fusion").trainer()
    run = TrainingRun(settings, log, repo, parent=None, since=1_000.0 + 30 * DAY, after_seq=seen, job_id="t", max_steps=2)
    candidate = trainer.train(run)
    assert candidate.lineage.seq_to == log.events.newest_seq()
    assert candidate.lineage.notes["new_lists"] >= 6  # the late baskets were the new data
    run_again = TrainingRun(settings, log, repo, parent=None, since=0.0, after_seq=candidate.lineage.seq_to, job_id="t2")
    with pytest.raises(NothingToLearn):
        trainer.train(run_again)


def test_a_full_refresh_runs_beside_event_batches_and_their_newer_counts_win(tmp_path):
    """Issue 25: the throttled full refresh scans 30 days of the log; with the refresher thread running
    (the feedback service's), a RecordEvents batch neither waits for it nor has its newer counts
    overwritten by the refresh's older read."""

    class Recorder:
        def __init__(self) -> None:
            self.pop30: dict[str, int] = {}
            self.shop_pushes = 0

        def push_users(self, rows): pass

        def push_popularity(self, counts_30d, counts_7d, as_of=0.0):
            self.pop30.update(counts_30d)

        def push_shop(self, *args, **kwargs):
            self.shop_pushes += 1

    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    features, clock = Recorder(), [0.0]
    sync = FeatureSync(log, features, refresh_s=30.0, timer=lambda: clock[0])  # type: ignore[arg-type]
    sync.start_refresher()
    now = time.time()
    log.events.append([Event("e1", "u", "a", "click", now)])
    sync.after_batch({"u"}, {"a"})  # the first batch of a process refreshes inline
    assert features.pop30 == {"a": 1} and features.shop_pushes == 1

    reading, release = threading.Event(), threading.Event()
    counts = log.events.item_counts

    def slow_full_read(since, item_ids=None):
        out = counts(since, item_ids)
        if item_ids is None and not reading.is_set():  # read now, answered late: an old snapshot
            reading.set()
            release.wait(10)
        return out

    log.events.item_counts = slow_full_read  # type: ignore[method-assign]
    clock[0] += 60.0  # the next batch finds a refresh due: it wakes the refresher and goes on
    log.events.append([Event("e2", "u", "a", "click", now + 1)])
    sync.after_batch({"u"}, {"a"})
    assert reading.wait(5), "the refresher did not start the due refresh"
    started = time.monotonic()
    log.events.append([Event("e3", "v", "a", "click", now + 2)])
    sync.after_batch({"v"}, {"a"})  # while the full refresh is stuck reading
    assert time.monotonic() - started < 2.0 and features.pop30["a"] == 3
    release.set()
    deadline = time.monotonic() + 10
    while features.shop_pushes < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert features.shop_pushes == 2 and features.pop30["a"] == 3  # not the snapshot's 2


def test_an_event_batchs_item_counts_read_an_index_alone_and_old_logs_migrate(tmp_path):
    """Issue 25: RecordEvents slowed as the log grew (p50 51 -> 140 ms over the hostile phase): each batch
    counted its items' recent events by fetching every row of their windows. The count must come from a
    covering index; a log created with the older (item_id, ts) index gets the new one when opened."""
    import sqlalchemy as sa

    from core.store.events import item_counts_query
    from core.store.schema import open_engine

    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = open_engine(url)
    with engine.begin() as conn:  # as a log from before this change
        conn.execute(sa.text("DROP INDEX ix_events_item_type_ts"))
        conn.execute(sa.text("CREATE INDEX ix_events_item_ts ON events (item_id, ts)"))
    engine.dispose()
    log = EventLog.open(url)
    log.events.append([Event(f"e{i}", f"u{i % 7}", f"i{i % 3}", ("click", "purchase", "view")[i % 3], 1_000.0 + i) for i in range(90)])
    engine = open_engine(url)
    query = item_counts_query(1_000.0, ["i0", "i1"])
    with engine.connect() as conn:
        plan = " ".join(str(row) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(query.compile(engine, compile_kwargs={"literal_binds": True}))))
        indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(events)")}
    assert "COVERING INDEX ix_events_item_type_ts" in plan, plan
    assert "ix_events_item_ts" not in indexes
    assert log.events.item_counts(1_000.0, ["i0", "i1", "i2"]) == {"i0": 30, "i1": 30}  # views are not interest events
