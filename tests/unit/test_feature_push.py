"""Pushes to the online store (core.features.FeatureClient._push): each reaches every feature view its
push source feeds, and the registry is read once per source, not on every push (Feast's push() rebuilt
every feature view from the registry on each call: half of RecordEvents' CPU under load, issue 26)."""
from __future__ import annotations

from core.features import FeatureClient, apply
from core.settings import Settings
from shoptext.text import ItemText


def test_pushes_reach_their_views_and_read_the_registry_once_per_source(tmp_path, monkeypatch):
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    apply(settings)
    features = FeatureClient(settings)
    listed: list[int] = []
    original = features.store.list_feature_views
    monkeypatch.setattr(features.store, "list_feature_views", lambda *a, **k: listed.append(1) or original(*a, **k))
    for n in range(5):
        features.push_items({f"i{n}": ItemText(f"item {n}", price=float(n))})
        features.push_popularity({f"i{n}": 10 + n}, {f"i{n}": n})
    assert len(listed) == 3  # item_push, catalogue_stamp_push and item_popularity_push, once each
    got = features.get_items([f"i{n}" for n in range(5)] + ["unknown"], popularity=True)
    assert sorted(got) == [f"i{n}" for n in range(5)]
    assert got["i3"].text.title == "item 3" and got["i3"].text.price == 3.0
    assert (got["i3"].popularity_30d, got["i3"].popularity_7d) == (13, 3)
    stamp = features.get_shop().catalogue_stamp
    features.push_popularity({"i3": 14}, {})  # popularity leaves the catalogue stamp alone
    assert features.get_shop().catalogue_stamp == stamp > 0
    features.push_items({"i3": ItemText("renamed")})  # a later push of the same source wins, and moves the stamp
    assert features.get_items(["i3"])["i3"].text.title == "renamed"
    assert features.get_shop().catalogue_stamp != stamp


def test_item_reads_skip_deleted_items_and_flag_out_of_stock_ones(tmp_path):
    """get_items reads the online store directly: the same answers as through get_online_features."""
    from core.domain import ItemStatus

    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    apply(settings)
    features = FeatureClient(settings)
    features.push_items({"a": ItemText("a", description="about a", category="Kitchen", price=2.5), "b": ItemText("b"), "c": ItemText("c")},
                        {"b": ItemStatus.OUT_OF_STOCK, "c": ItemStatus.DELETED})
    got = features.get_items(["c", "a", "b", "a", "nope"])
    assert sorted(got) == ["a", "b"] and got["a"].available and not got["b"].available
    assert (got["a"].text.description, got["a"].text.category, got["a"].text.price) == ("about a", "Kitchen", 2.5)
    assert (got["a"].popularity_30d, got["a"].popularity_7d) == (0, 0)
    assert features.get_items(["a"], popularity=True)["a"].popularity_30d == 0  # no popularity row yet: zero
