"""Issue 25, finding 7: erasure wins every race. The tombstone (the receipt written before anything is
deleted) is checked by every writer that could put the shopper back: ingest, queued served lists,
attributions, the feature refresh and the segments run; the receipt names running fine-tunes; replay rows
from before shopper keys are dropped; Triton's shopper-embedding cache expires while idle."""
from __future__ import annotations

import time

import pytest

from core.domain import Event, Example, ItemText
from core.experiments.attribution import ServedList
from core.feature_sync import FeatureSync
from core.features import FeatureClient, apply
from core.model_repository import ModelRepository
from core.privacy import forget
from core.security import ensure_secrets
from core.settings import Settings
from core.store import EventLog


@pytest.fixture
def settings(tmp_path):
    s = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    ensure_secrets(s)
    return s


def test_writers_drop_a_tombstoned_shoppers_past_but_keep_what_they_do_after(settings):
    log = EventLog.open(settings.eventlog)
    before = time.time() - 5
    tombstone = log.erasures.tombstone("p-gone", "admin")
    # an ingest batch acknowledged before the erasure but committed after it, and a new event after it
    fresh = log.events.append([Event("late", "p-gone", "a", "purchase", before), Event("kept", "p-other", "a", "click", before),
                               Event("again", "p-gone", "b", "click", tombstone.at + 1)])
    assert fresh == {"kept", "again"}
    # a served list queued in a scoring process before the erasure, flushed after it
    log.served.append([ServedList("r1", "p-gone", before, "1", ("a",)), ServedList("r2", "p-other", before, "1", ("a",))])
    assert set(log.served.by_request(["r1", "r2"])) == {"r2"}


def test_the_feature_refresh_does_not_write_an_erased_shopper_back(settings):
    apply(settings)
    log, features = EventLog.open(settings.eventlog), FeatureClient(settings)
    log.catalogue.upsert({i: ItemText(f"item {i}") for i in "ab"})
    features.push_items({i: ItemText(f"item {i}") for i in "ab"})
    now = time.time()
    log.events.append([Event("e1", "p-gone", "a", "purchase", now - 60)])
    # the tombstone is down, the erasure's deletes have not run yet: a refresh now reads their old events
    log.erasures.tombstone("p-gone", "admin")
    FeatureSync(log, features).users({"p-gone"})
    assert not features.has_user("p-gone")
    # what they do after the erasure is theirs again
    log.events.append([Event("e2", "p-gone", "b", "click", time.time() + 1)])
    FeatureSync(log, features).users({"p-gone"})
    row = features.get_user("p-gone")
    assert row is not None and [i for i, _ in row.recent] == ["b"] and row.event_count == 1


def test_segments_leave_out_an_erased_shoppers_past(settings):
    from workers.segments import segment_shoppers

    apply(settings)
    log, features = EventLog.open(settings.eventlog), FeatureClient(settings)
    log.catalogue.upsert({i: ItemText(f"item {i}", category="c") for i in "ab"})
    now = time.time()
    log.events.append([Event(f"e{u}", f"p-{u}", "a", "purchase", now - 60) for u in range(30)])
    log.erasures.tombstone("p-0", "admin")
    segment_shoppers(log, features, segments=2)
    assert not features.has_user("p-0") and features.has_user("p-1")


def test_the_receipt_names_running_fine_tunes_and_legacy_replay_rows_go(settings):
    apply(settings)
    log, features = EventLog.open(settings.eventlog), FeatureClient(settings)
    log.jobs.create("ft-running", "1", 10)
    assert log.jobs.claim("ft-running", owner="w1")
    log.jobs.create("ft-queued", "1", 10)
    replay = log.replay(100)
    replay.add([Example("old text", "item", 1.0, ""), Example("their text", "item", 1.0, "p-gone"), Example("x", "y", 0.0, "p-other")])
    receipt = forget("p-gone", "admin", settings, log, features, ModelRepository(settings.model_repository, "fusion_click"))
    assert receipt.running_jobs == ["ft-running"]
    assert receipt.removed["replay_examples"] == 1 and receipt.removed["replay_examples_unattributed"] == 1
    assert len(replay) == 1
    stored = log.erasures.of_user("p-gone")[0]
    assert stored.running_jobs == ["ft-running"] and stored.removed == receipt.removed


