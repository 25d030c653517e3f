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
    assert len(listed) == 2  # item_push and item_popularity_push, once each
    got = features.get_items([f"i{n}" for n in range(5)] + ["unknown"], popularity=True)
    assert sorted(got) == [f"i{n}" for n in range(5)]
    assert got["i3"].text.title == "item 3" and got["i3"].text.price == 3.0
    assert (got["i3"].popularity_30d, got["i3"].popularity_7d) == (13, 3)
    features.push_items({"i3": ItemText("renamed")})  # a later push of the same source wins
    assert features.get_items(["i3"])["i3"].text.title == "renamed"
