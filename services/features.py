"""The Feast feature store as the services use it: apply, push, and online reads.

`python -m services.features apply` registers feature_repo/definitions.py against the deployment's
registry (the same as `feast apply` in feature_repo/ with RECSYS_DATA_DIR set).
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from typing import Iterable, Sequence
from urllib.parse import urlparse

import pandas as pd

from clickmodel.text import HistoryEntry, ItemText
from services.config import PROJECT_ROOT, Settings, load

logger = logging.getLogger(__name__)

ITEM_FEATURES = ["item_text:title", "item_text:description", "item_text:category", "item_text:price"]
USER_FEATURES = [
    "user_history:recent_item_ids",
    "user_history:recent_event_types",
    "user_history:event_count",
    "user_history:purchase_count",
    "user_history:last_event_ts",
]


@dataclass(frozen=True)
class UserFeatures:
    history: list[HistoryEntry]
    event_count: int
    purchase_count: int
    last_event_ts: float


def online_store_config(settings: Settings) -> dict:
    """SQLite under the data dir by default; Redis when RECSYS_FEAST_ONLINE_URL is redis://host:port/db."""
    if settings.feast_online_url.startswith("redis://"):
        url = urlparse(settings.feast_online_url)
        db = (url.path or "/0").lstrip("/") or "0"
        return {"type": "redis", "connection_string": f"{url.hostname}:{url.port or 6379},db={db}"}
    return {"type": "sqlite", "path": str(settings.feast_dir / "online_store.db")}


def open_store(settings: Settings):  # type: ignore[no-untyped-def]
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="shoprank",
        provider="local",
        registry=str(settings.feast_dir / "registry.db"),
        online_store=online_store_config(settings),
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=str(PROJECT_ROOT / "feature_repo"),
    )
    return FeatureStore(config=config)


def apply(settings: Settings) -> None:
    """Register the feature definitions (idempotent)."""
    from feature_repo import definitions as d

    store = open_store(settings)
    store.apply([d.user, d.item, d.item_push, d.user_history_push, d.item_text, d.user_history])
    logger.info("feast definitions applied under %s", settings.feast_dir)


class FeatureClient:
    """Pushes and online reads for the services; one per process (the store caches its registry)."""

    def __init__(self, settings: Settings) -> None:
        self.store = open_store(settings)

    def push_items(self, items: dict[str, ItemText]) -> None:
        if not items:
            return
        now = pd.Timestamp.now(tz="UTC")
        df = pd.DataFrame(
            {
                "item_id": list(items),
                "title": [i.title for i in items.values()],
                "description": [i.description for i in items.values()],
                "category": [i.category for i in items.values()],
                "price": [float(i.price) for i in items.values()],
                "updated_at": [now] * len(items),
            }
        )
        self.store.push("item_push", df)

    def push_user_histories(self, rows: dict[str, UserFeatures]) -> None:
        if not rows:
            return
        now = pd.Timestamp.now(tz="UTC")
        df = pd.DataFrame(
            {
                "user_id": list(rows),
                "recent_item_ids": [[h.item_id for h in r.history] for r in rows.values()],
                "recent_event_types": [[h.event_type for h in r.history] for r in rows.values()],
                "event_count": [r.event_count for r in rows.values()],
                "purchase_count": [r.purchase_count for r in rows.values()],
                "last_event_ts": [r.last_event_ts for r in rows.values()],
                "event_time": [now] * len(rows),
            }
        )
        self.store.push("user_history_push", df)

    def get_items(self, item_ids: Sequence[str]) -> dict[str, ItemText]:
        """Text features of the known items among `item_ids` (unknown ones are absent)."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        data = self.store.get_online_features(features=ITEM_FEATURES, entity_rows=[{"item_id": i} for i in ids]).to_dict()
        out: dict[str, ItemText] = {}
        for i, item_id in enumerate(data["item_id"]):
            title = data["title"][i]
            if title is None:
                continue
            out[item_id] = ItemText(title, data["description"][i] or "", data["category"][i] or "", float(data["price"][i] or 0.0))
        return out

    def get_user(self, user_id: str) -> UserFeatures | None:
        data = self.store.get_online_features(features=USER_FEATURES, entity_rows=[{"user_id": user_id}]).to_dict()
        ids = data["recent_item_ids"][0]
        if ids is None and data["event_count"][0] is None:
            return None
        types = data["recent_event_types"][0] or []
        return UserFeatures(
            history=[HistoryEntry(i, t) for i, t in zip(ids or [], types)],
            event_count=int(data["event_count"][0] or 0),
            purchase_count=int(data["purchase_count"][0] or 0),
            last_event_ts=float(data["last_event_ts"][0] or 0.0),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["apply"])
    parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    apply(load())


if __name__ == "__main__":
    main()
