"""The worker's materialisation (beat, periodically): every item's popularity, the shop's clock and
popular list from the log, and the serving version's co-purchase table from its folder, into a real
Feast store; a version's features are keyed by version, so another version's stay untouched."""
from __future__ import annotations

import json

from core.domain import Event, ItemText, Lineage
from core.features import FeatureClient, apply, version_key
from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog
from rankers.fusion import CO_PURCHASE_FILE
from workers.materialise import materialise

DAY = 86400.0


def publish(repo: ModelRepository, table: dict) -> int:
    def write(folder):
        (folder / "model.pt").write_bytes(b"w")
        (folder / CO_PURCHASE_FILE).write_text(json.dumps(table))

    return repo.publish(write, Lineage("", "", 0.0, 0.0, 0.0, 0, 0.0, "j"), tag="j")


def test_materialise_refreshes_popularity_and_the_serving_versions_table(tmp_path):
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models", ranker="fusion")
    apply(settings)
    log = EventLog.open(settings.eventlog)
    catalogue = {i: ItemText(f"item {i}") for i in "abcd"}
    log.catalogue.upsert(catalogue)
    FeatureClient(settings).push_items(catalogue)  # as the feedback service does on upsert
    T = 100 * DAY
    log.events.append([Event("1", "u", "a", "purchase", T - 40 * DAY), Event("2", "u", "b", "purchase", T - 20 * DAY),
                       Event("3", "v", "b", "purchase", T - 5 * DAY), Event("4", "v", "c", "click", T)])
    repo = ModelRepository(settings.model_repository, "fusion_click")
    v1 = publish(repo, {"a": [["b", 0.5]]})
    v2 = publish(repo, {"a": [["c", 0.9]], "b": [["a", 0.2]]})
    repo.pin(v1)

    materialise(settings)
    features = FeatureClient(settings)
    shop = features.get_shop()
    assert shop.clock == T and shop.popular == ["b", "c"] and shop.filler == ["a", "d"]
    items = features.get_items(["a", "b", "c"], popularity=True)
    assert (items["a"].popularity_30d, items["b"].popularity_30d, items["b"].popularity_7d, items["c"].popularity_7d) == (0, 2, 1, 1)
    assert features.get_co_purchase(version_key("fusion_click", v1), ["a", "b"]) == {"a": [("b", 0.5)]}
    assert features.get_co_purchase(version_key("fusion_click", v2), ["a"]) == {}  # not serving, not materialised

    repo.pin(v2)
    materialise(settings)
    assert features.get_co_purchase(version_key("fusion_click", v2), ["a", "b"]) == {"a": [("c", 0.9)], "b": [("a", 0.2)]}
    assert features.get_co_purchase(version_key("fusion_click", v1), ["a"]) == {"a": [("b", 0.5)]}  # v1's own, intact
