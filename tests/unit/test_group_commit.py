"""Group commit: every caller gets its own result, concurrent callers share flushes, a failed flush
fails exactly the callers it covered; and the event log's batched append deduplicates across batches."""
from __future__ import annotations

import threading
import time

import pytest

from core.domain import Event
from core.group_commit import GroupCommit
from core.store import EventLog


def test_each_caller_gets_its_own_result_and_flushes_are_shared():
    groups: list[int] = []

    def flush(items):
        groups.append(len(items))
        time.sleep(0.01)
        return [i * 10 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(flush)
    results: dict[int, int] = {}

    def caller(i: int) -> None:
        results[i] = commit.submit(i)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i * 10 for i in range(32)}
    assert sum(groups) == 32 and len(groups) < 32  # some flushes covered several callers


def test_a_failed_flush_fails_its_callers_and_the_next_flush_works():
    calls = []

    def flush(items):
        calls.append(list(items))
        if "bad" in items:
            raise ConnectionError("store down")
        return list(items)

    commit: GroupCommit[str, str] = GroupCommit(flush)
    with pytest.raises(ConnectionError):
        commit.submit("bad")
    assert commit.submit("good") == "good"
    assert calls == [["bad"], ["good"]]


def test_append_batches_deduplicates_across_batches_in_one_transaction(tmp_path):
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    log.events.append([Event("old", "u", "a", "click", 1.0)])
    fresh = log.events.append_batches([[Event("x", "u", "a", "click", 2.0), Event("old", "u", "a", "click", 1.0)],
                                       [Event("x", "v", "b", "click", 3.0), Event("y", "v", "b", "click", 4.0)]])
    assert fresh == [{"x"}, {"y"}]
    assert [(e.event_id, e.seq) for e in log.events.read()] == [("old", 1), ("x", 2), ("y", 3)]
