"""ShopperStateWriter.run_once (ranking/shopper_states.py) over a real Feast SQLite store, with Triton's
answer stood in for: coalescing, one row per shopper holding every version, and surviving a failure."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.domain import ItemText
from core.features import FeatureClient, UserFeatures, apply
from core.settings import Settings
from rankers import get_ranker
from ranking.shopper_states import ShopperStateWriter


class StandInTriton:
    """Answers a state request with one row per shopper (its weights' sum, so rows tell shoppers apart);
    fails the first `failures` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.failures, self.requests = failures, []

    def shopper_vectors(self, inputs, version):
        self.requests.append((version, inputs["history_index"].shape[0]))
        if self.failures:
            self.failures -= 1
            raise RuntimeError("connection reset")
        return np.repeat(inputs["history_weights"].sum(1, keepdims=True), 384, axis=1).astype(np.float32)


def writer_over(tmp_path: Path, triton: StandInTriton) -> tuple[ShopperStateWriter, FeatureClient]:
    settings = Settings(data_dir=tmp_path, feast_online_url="")
    apply(settings)
    features = FeatureClient(settings)
    features.push_items({i: ItemText(f"item {i}") for i in "abc"})
    writer = ShopperStateWriter(get_ranker("fusion"), features, triton, serving_versions=lambda: ["1", "2"])  # type: ignore[arg-type]
    return writer, features


def row(*interests: tuple[str, float]) -> UserFeatures:
    return UserFeatures([], len(interests), len(interests), 0.0, list(interests))


def test_newest_history_wins_and_every_version_is_in_one_row(tmp_path):
    triton = StandInTriton()
    writer, features = writer_over(tmp_path, triton)
    writer.submit({"u": row(("a", 10.0))})
    writer.submit({"u": row(("b", 20.0), ("a", 10.0)), "v": row(("c", 5.0))})  # u again: only the newest counts
    assert writer.run_once() and not writer.run_once()
    assert triton.requests == [("1", 2), ("2", 2)]  # both shoppers in one request per version
    fingerprint = get_ranker("fusion").state_encoder.fingerprint([("b", 20.0), ("a", 10.0)])
    for version in ("fusion_click:1", "fusion_click:2"):
        state = features.get_shopper_state("u", version)
        assert state is not None and state.fingerprint == fingerprint and state.vector.shape == (384,)
    assert features.get_shopper_state("u", "fusion_click:3") is None


def test_a_failure_puts_the_shoppers_back_and_the_writer_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr("ranking.shopper_states.RETRY_S", 0.0)
    triton = StandInTriton(failures=1)
    writer, features = writer_over(tmp_path, triton)
    writer.submit({"u": row(("a", 10.0))})
    assert not writer.run_once() and features.get_shopper_state("u", "fusion_click:1") is None
    assert writer.stats.failures == 1
    assert writer.run_once() and features.get_shopper_state("u", "fusion_click:1") is not None


def test_the_first_look_asks_the_service_and_a_later_version_backfills(tmp_path):
    writer, _ = writer_over(tmp_path, StandInTriton())
    first, new = [], []
    writer.on_first_look, writer.on_new_versions = first.append, new.append
    writer.check_versions()  # a (re)started writer: it cannot tell a restart from a fresh deployment itself
    assert first == [["1", "2"]] and new == []
    writer.serving_versions = lambda: ["1", "2", "3"]
    writer.check_versions()
    assert new == [["3"]] and first == [["1", "2"]]


def test_a_fresh_deployment_is_backfilled_and_a_restart_is_not(tmp_path):
    from core.domain import Event
    from core.feature_sync import FeatureSync
    from core.features import StateRow
    from core.store import EventLog
    from services.feedback_service import backfill_if_missing

    settings = Settings(data_dir=tmp_path, feast_online_url="")
    apply(settings)
    features, log = FeatureClient(settings), EventLog.open(settings.eventlog)
    log.events.append([Event(f"e{k}", f"u{k % 5}", "a", "purchase", 1000.0 + k) for k in range(10)])
    resubmitted: list[str] = []
    sync = FeatureSync(log, features, on_users=lambda rows: resubmitted.extend(rows))
    key = get_ranker("fusion").version_key
    assert backfill_if_missing(sync, log, features, key, ["1"], days=90) == 5  # no state stored: every active shopper
    assert sorted(resubmitted) == [f"u{k}" for k in range(5)]
    features.push_shopper_states({f"u{k}": StateRow("f", {key("1"): np.ones(384, np.float32)}, 0.0) for k in range(4)})
    resubmitted.clear()
    assert backfill_if_missing(sync, log, features, key, ["1"], days=90) == 0 and resubmitted == []  # a restart: stored
    assert backfill_if_missing(sync, log, features, key, ["2"], days=90) == 5  # a version none of them has
