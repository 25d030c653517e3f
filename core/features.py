"""The Feast feature store as the services and workers use it: apply, push, and online reads.

What the ranking path reads lives here and only here (feature_repo/definitions.py declares it):
item text and popularity, the shopper's history and interest events, their stored state (a vector
per serving version, written when their events arrive), the shop's clock and popular items, and each
model version's co-purchase neighbours. `python -m core.features apply` registers the
definitions against the deployment's registry (the same as `feast apply` in feature_repo/).
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlparse

import numpy as np

from core.domain import ItemStatus, ItemText
from core.portrait import Segment
from core.settings import PROJECT_ROOT, Settings, load

logger = logging.getLogger(__name__)

SHOP_ID = "shop"
ITEM_TEXT = ["item_text:title", "item_text:description", "item_text:category", "item_text:price", "item_text:status"]
ITEM_POPULARITY = ["item_popularity:popularity_30d", "item_popularity:popularity_7d"]
USER_FEATURES = [
    "user_history:recent_item_ids",
    "user_history:recent_event_types",
    "user_history:event_count",
    "user_history:purchase_count",
    "user_history:last_event_ts",
    "user_history:interest_item_ids",
    "user_history:interest_timestamps",
    "user_history:purchased_item_ids",
]
SHOP_FEATURES = ["shop_activity:clock", "shop_activity:popular_item_ids", "shop_activity:filler_item_ids",
                 "shop_activity:trending_item_ids", "shop_activity:trending_scores", "catalogue_stamp:changed_at"]
CO_PURCHASE = ["co_purchase:neighbour_ids", "co_purchase:neighbour_scores"]
SHOPPER_STATE = ["shopper_state:version_keys", "shopper_state:vectors", "shopper_state:fingerprint"]
SEGMENT_FEATURES = ["shop_segments:segment_ids", "shop_segments:segment_names", "shop_segments:segment_sizes",
                    "shop_segments:segmented_at"]


@dataclass(frozen=True)
class UserFeatures:
    """A shopper as the online store holds them."""

    recent: list[tuple[str, str]]  # (item_id, event_type) of their newest interest events, newest first
    event_count: int
    purchase_count: int
    last_event_ts: float
    interests: list[tuple[str, float]] = field(default_factory=list)  # (item_id, ts), newest first
    purchased: list[str] = field(default_factory=list)  # distinct items bought among the interests, newest first
    # When the log was read for this row (epoch s; 0: when it is pushed). Pushed as the row's event time,
    # which the online store keeps the newest of: two processes refreshing one shopper at once end
    # with the row read last, whichever of them pushes last. Not part of what the row says (equality).
    as_of: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class ItemFeatures:
    text: ItemText
    popularity_30d: int = 0
    popularity_7d: int = 0
    available: bool = True  # False: out of stock (deleted items are not returned at all)


@dataclass(frozen=True)
class ShopperState:
    """A shopper's stored vector for one version, and what it was computed from (the encoder's
    fingerprint of their history: Rank uses it only while that still matches)."""

    vector: np.ndarray
    fingerprint: str


@dataclass(frozen=True)
class StateRow:
    """What the state writer stores per shopper: their vector for each serving version, one fingerprint."""

    fingerprint: str
    vectors: dict[str, np.ndarray]  # version key -> vector
    as_of: float = 0.0  # the as_of of the shopper row it was computed from (UserFeatures.as_of)


@dataclass(frozen=True)
class ShopFeatures:
    clock: float  # the newest event time: "now" for signals, so a replayed shop reads like a live one
    popular: list[str]  # items bought in the last 30 days, most first
    filler: list[str] = field(default_factory=list)  # catalogue items that pad a short candidate list
    trending: list[tuple[str, float]] = field(default_factory=list)  # (item, trend ratio), most rising first
    catalogue_stamp: float = 0.0  # moves whenever item text or statuses are pushed (only compared, never ordered)


class OnlineFeatures(Protocol):
    """The port the ranking path reads through (FeatureClient is the Feast adapter; tests may fake it)."""

    def get_user(self, user_id: str) -> UserFeatures | None: ...

    def get_shop(self) -> ShopFeatures: ...

    def get_items(self, item_ids: Sequence[str], popularity: bool = False) -> dict[str, ItemFeatures]: ...

    def get_co_purchase(self, key: str, item_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]: ...

    def get_shopper_state(self, user_id: str, key: str) -> ShopperState | None: ...

    def push_co_purchase(self, key: str, table: dict[str, list[tuple[str, float]]]) -> None: ...


def version_key(model_name: str, version: int | str) -> str:
    """The entity key of a model version's features."""
    return f"{model_name}:{version}"


@runtime_checkable
class ErasableOnlineStore(Protocol):
    """What this project needs of an online store beyond Feast's interface: a health check and per-entity
    delete and count (forgetting a shopper). core.feast_sqlite and core.feast_redis implement it, each
    chosen by its class path as the config's `type:`."""

    def online_read(self, config: Any, table: Any, entity_keys: list[Any], requested_features: list[str] | None = None) -> list[Any]: ...

    def ping(self, config: Any) -> bool: ...

    def delete_entities(self, config: Any, table: Any, entity_keys: Sequence[Any]) -> int: ...

    def count_entities(self, config: Any, table: Any, entity_keys: Sequence[Any]) -> int: ...


def online_store_config(settings: Settings) -> dict[str, Any]:
    """SQLite under the data dir by default; Redis when RECSYS_FEAST_ONLINE_URL is
    redis://[user:password@]host:port/db, or rediss://… for TLS (query: ssl_ca_certs=<CA file>, default the
    deployment's CA; ssl_cert_reqs=required|none). Both are Feast's stores extended with
    ErasableOnlineStore (core/feast_sqlite.py, core/feast_redis.py)."""
    if settings.feast_online_url.startswith(("redis://", "rediss://")):
        from core.feast_redis import STORE_TYPE as REDIS

        return {"type": REDIS, "connection_string": redis_connection_string(settings.feast_online_url, settings.ca_cert)}
    from core.feast_sqlite import STORE_TYPE as SQLITE  # Feast's SQLite store, one connection per thread

    return {"type": SQLITE, "path": str(settings.feast_dir / "online_store.db")}


def redis_connection_string(url_text: str, default_ca: Path) -> str:
    """A redis(s):// URL as Feast's connection string ("host:port,db=N,password=…,ssl=true,…": each key
    becomes a redis.Redis argument)."""
    url = urlparse(url_text)
    db = (url.path or "/0").lstrip("/") or "0"
    parts = [f"{url.hostname}:{url.port or 6379}", f"db={db}"]
    if url.username:
        parts.append(f"username={unquote(url.username)}")
    if url.password:
        parts.append(f"password={unquote(url.password)}")
    if url.scheme == "rediss":
        query = dict(parse_qsl(url.query))
        parts += ["ssl=true", f"ssl_ca_certs={query.get('ssl_ca_certs') or default_ca}",
                  f"ssl_cert_reqs={query.get('ssl_cert_reqs', 'required')}"]
    if any("," in p for p in parts):
        raise ValueError("a Redis URL for Feast cannot carry ',' in its user, password or paths")
    return ",".join(parts)


def registry_config(settings: Settings) -> Any:
    """A registry file under the data dir by default (one machine, or a shared volume); Feast's SQL
    registry when RECSYS_FEAST_REGISTRY_URL names a database (several machines: compose's PostgreSQL)."""
    if not settings.feast_registry_url:
        return str(settings.feast_dir / "registry.db")
    return {"registry_type": "sql", "path": settings.feast_registry_url, "cache_ttl_seconds": 60,
            "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True}}


def repo_config(settings: Settings) -> dict[str, Any]:
    """The one description of this deployment's feature store, as feature_store.yaml's keys: the services
    build their store from it and `python -m core.features yaml` prints it for the feast CLI."""
    return {
        "project": "shoprank",
        "provider": "local",
        "registry": registry_config(settings),
        "online_store": online_store_config(settings),
        "offline_store": {"type": "file"},  # parquet batch sources of the push sources; the event log is the record
        "entity_key_serialization_version": 3,
    }


def open_store(settings: Settings) -> Any:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    return FeatureStore(config=RepoConfig(**repo_config(settings), repo_path=str(PROJECT_ROOT / "feature_repo")))


def apply(settings: Settings) -> None:
    """Register the feature definitions (idempotent)."""
    from feature_repo import definitions as d

    store = open_store(settings)
    store.apply([*d.ENTITIES, *d.PUSH_SOURCES, *d.FEATURE_VIEWS])
    logger.info("feast definitions applied under %s", settings.feast_dir)


class FeatureClient:
    """Pushes and online reads; one per process (the store caches its registry)."""

    def __init__(self, settings: Settings) -> None:
        from feast.infra.online_stores.helpers import get_online_store_from_config

        self.store = open_store(settings)
        # the online store named by the config's `type:`, for the reads and deletes Feast's API lacks
        online = get_online_store_from_config(self.store.config.online_store)
        if not isinstance(online, ErasableOnlineStore):
            raise ValueError(f"online store type {self.store.config.online_store.type!r} cannot forget a shopper; "
                             "use core.feast_sqlite.ThreadSafeSqliteOnlineStore or core.feast_redis.ErasableRedisOnlineStore")
        self.online: ErasableOnlineStore = online
        self._push_views: dict[str, list[Any]] = {}
        self._views: dict[str, Any] = {}
        self._provider: Any = None

    # --- writes ---------------------------------------------------------------------------------
    def _push(self, source: str, columns: dict[str, list[Any]], as_of: Sequence[float] | float = 0.0) -> None:
        """What FeatureStore.push(source, df) does for our online-only push sources, in fewer steps:
        - push() rebuilds every feature view of the registry from its proto on each call (twice, and the
          feature services once more): the views a source feeds are looked up once, like _shopper_views;
        - ingest_df() then goes pandas -> Arrow -> one Python object per cell -> protos, which profiled as
          ~45% of the feedback service's CPU under the shop-like load (issue 26): each column here becomes
          Feast's value protos in one call (feast.type_map.python_values_to_proto_values, lists copied
          whole), and the rows go to the provider's online_write_batch, where ingest_df ends too.
        `as_of`: each row's event time (epoch s; one for all rows, or one per row; 0: now). The online
        stores keep a row only if it is not older than the stored one (Feast's Redis store does so
        itself; core.feast_sqlite does for SQLite)."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
        from feast.type_map import python_values_to_proto_values

        n = len(next(iter(columns.values())))
        if not n:
            return
        now = time.time()
        times = [as_of] * n if isinstance(as_of, (int, float)) else list(as_of)
        written_at = [datetime.fromtimestamp(t or now, timezone.utc) for t in times]
        for view in self._views_fed_by(source):
            join_keys = [entity.name for entity in view.entity_columns]
            keys = {e.name: python_values_to_proto_values(columns[e.name], e.dtype.to_value_type()) for e in view.entity_columns}
            values = {f.name: python_values_to_proto_values(columns[f.name], f.dtype.to_value_type()) for f in view.features}
            rows = [(EntityKeyProto(join_keys=join_keys, entity_values=[keys[k][i] for k in join_keys]),
                     {name: column[i] for name, column in values.items()}, written_at[i], None) for i in range(n)]
            self._online_provider().online_write_batch(self.store.config, view, rows, None)

    def _views_fed_by(self, source: str) -> list[Any]:
        views = self._push_views.get(source)
        if views is None:
            views = [fv for fv in self.store.list_feature_views() if fv.stream_source is not None and fv.stream_source.name == source]
            if not views:
                raise ValueError(f"no feature view reads the push source {source!r}: run `python -m core.features apply`")
            self._push_views[source] = views
        return views

    def _online_provider(self) -> Any:
        """The provider the config names (Feast's get_provider, as FeatureStore builds its own)."""
        if self._provider is None:
            from feast.infra.provider import get_provider

            self._provider = get_provider(self.store.config)
        return self._provider

    def push_items(self, items: dict[str, ItemText], statuses: dict[str, ItemStatus] | None = None) -> None:
        """Items' text and status (available unless `statuses` says otherwise)."""
        statuses = statuses or {}
        self._push("item_push", {
            "item_id": list(items),
            "title": [i.title for i in items.values()],
            "description": [i.description for i in items.values()],
            "category": [i.category for i in items.values()],
            "price": [float(i.price) for i in items.values()],
            "status": [int(statuses.get(k, ItemStatus.AVAILABLE)) for k in items],
        })
        # after the rows: a reader that sees the new stamp and reads the items again finds them
        self._push("catalogue_stamp_push", {"shop_id": [SHOP_ID], "changed_at": [time.time()]})

    def push_users(self, rows: dict[str, UserFeatures]) -> None:
        self._push("user_history_push", {
            "user_id": list(rows),
            "recent_item_ids": [[i for i, _ in r.recent] for r in rows.values()],
            "recent_event_types": [[t for _, t in r.recent] for r in rows.values()],
            "event_count": [r.event_count for r in rows.values()],
            "purchase_count": [r.purchase_count for r in rows.values()],
            "last_event_ts": [r.last_event_ts for r in rows.values()],
            "interest_item_ids": [[i for i, _ in r.interests] for r in rows.values()],
            "interest_timestamps": [[float(t) for _, t in r.interests] for r in rows.values()],
            "purchased_item_ids": [list(r.purchased) for r in rows.values()],
        }, [r.as_of for r in rows.values()])

    def push_popularity(self, counts_30d: dict[str, int], counts_7d: dict[str, int], as_of: float = 0.0) -> None:
        """Popularity of the items in `counts_30d` (an item absent from `counts_7d` had none in 7 days),
        counted from the log as it was at `as_of` (0: now)."""
        self._push("item_popularity_push", {
            "item_id": list(counts_30d),
            "popularity_30d": [int(n) for n in counts_30d.values()],
            "popularity_7d": [int(counts_7d.get(i, 0)) for i in counts_30d],
        }, as_of)

    def push_shop(self, clock: float, popular: Sequence[str], filler: Sequence[str] = (),
                  trending: Sequence[tuple[str, float]] = ()) -> None:
        self._push("shop_push", {"shop_id": [SHOP_ID], "clock": [float(clock)], "popular_item_ids": [list(popular)],
                                 "filler_item_ids": [list(filler)], "trending_item_ids": [[i for i, _ in trending]],
                                 "trending_scores": [[float(s) for _, s in trending]]})

    def push_co_purchase(self, key: str, table: dict[str, list[tuple[str, float]]]) -> None:
        """One model version's co-purchase neighbours (see version_key)."""
        self._push("co_purchase_push", {
            "model_version": [key] * len(table),
            "item_id": list(table),
            "neighbour_ids": [[b for b, _ in nbs] for nbs in table.values()],
            "neighbour_scores": [[float(s) for _, s in nbs] for nbs in table.values()],
        })

    def push_shopper_states(self, rows: dict[str, StateRow]) -> None:
        """Shoppers' states: each row replaces the shopper's previous one (every serving version at once)."""
        self._push("shopper_state_push", {
            "user_id": list(rows),
            "version_keys": [list(r.vectors) for r in rows.values()],
            "vectors": [np.concatenate([np.asarray(v, dtype=np.float32) for v in r.vectors.values()]).tolist() if r.vectors else []
                        for r in rows.values()],
            "fingerprint": [r.fingerprint for r in rows.values()],
        }, [r.as_of for r in rows.values()])

    def push_segments(self, assignments: dict[str, int], segments: Sequence[Segment], segmented_at: float) -> None:
        """A clustering's result: every shopper's segment id, and the segment list."""
        self._push("user_segment_push", {"user_id": list(assignments), "segment_id": [int(s) for s in assignments.values()],
                                         "segmented_at": [float(segmented_at)] * len(assignments)})
        self._push("shop_segments_push", {"shop_id": [SHOP_ID], "segment_ids": [[s.segment_id for s in segments]],
                                          "segment_names": [[s.name for s in segments]], "segment_sizes": [[s.size for s in segments]],
                                          "segmented_at": [float(segmented_at)]})

    # --- erasure --------------------------------------------------------------------------------
    def _user_keys(self, user_id: str) -> list[Any]:
        return self._entity_keys("user_id", [user_id])

    def _shopper_views(self) -> tuple[Any, ...]:
        """The feature views keyed by shopper: history (read per request), state and segment."""
        return self._view("user_history"), self._view("shopper_state"), self._view("user_segment")

    def _view(self, name: str) -> Any:
        view = self._views.get(name)
        if view is None:  # the registry lookup costs more than the read; the views never change
            view = self._views[name] = self.store.get_feature_view(name)
        return view

    def forget_user(self, user_id: str) -> int:
        """Delete the shopper's online rows (history, interests, counts, state of every version, segment);
        returns rows removed."""
        keys = self._user_keys(user_id)
        return sum(self.online.delete_entities(self.store.config, view, keys) for view in self._shopper_views())

    def has_user(self, user_id: str) -> bool:
        """Whether the online store holds any row of the shopper (an erasure check reads it)."""
        keys = self._user_keys(user_id)
        return sum(self.online.count_entities(self.store.config, view, keys) for view in self._shopper_views()) > 0

    def reachable(self) -> bool:
        """Whether the online store answers now (a health check: Redis PING, or a query on SQLite)."""
        return self.online.ping(self.store.config)

    # --- reads ----------------------------------------------------------------------------------
    def get_items(self, item_ids: Sequence[str], popularity: bool = False) -> dict[str, ItemFeatures]:
        """Features of the known items among `item_ids` (unknown and deleted ones are absent)."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        # read from the online store directly, as get_user does: the candidates' rows are the scoring
        # path's biggest read, and get_online_features' request and response framing cost about as much
        # as the read itself (issue 26's profile); the item views have no TTL, so nothing is filtered
        keys = self._entity_keys("item_id", ids)
        texts = self._read_view("item_text", keys, ITEM_TEXT)
        counts = self._read_view("item_popularity", keys, ITEM_POPULARITY) if popularity else [{}] * len(ids)
        out: dict[str, ItemFeatures] = {}
        for item_id, row, pop in zip(ids, texts, counts):
            title = row.get("title")
            status = int(row.get("status") or 0)
            if title is None or status == ItemStatus.DELETED:
                continue
            text = ItemText(title, row.get("description") or "", row.get("category") or "", float(row.get("price") or 0.0))
            available = status == ItemStatus.AVAILABLE
            if popularity:
                out[item_id] = ItemFeatures(text, int(pop.get("popularity_30d") or 0), int(pop.get("popularity_7d") or 0), available)
            else:
                out[item_id] = ItemFeatures(text, available=available)
        return out

    @staticmethod
    def _entity_keys(join_key: str, values: Sequence[str]) -> list[Any]:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        return [EntityKey(join_keys=[join_key], entity_values=[Value(string_val=v)]) for v in values]

    def _read_view(self, name: str, keys: list[Any], features: list[str]) -> list[dict[str, Any]]:
        """Python values of `features` ("view:feature") per key, in order ({} where the store has no row)."""
        from feast.type_map import feast_value_type_to_python_type

        rows = self.online.online_read(self.store.config, self._view(name), keys, [f.split(":", 1)[1] for f in features])
        return [{k: feast_value_type_to_python_type(v) for k, v in values.items()} if values else {} for _, values in rows]

    def get_user(self, user_id: str) -> UserFeatures | None:
        """The shopper's row, read from the online store directly: the one read the ranking path makes
        on every request (feature_cache.py caches the rest), so it skips get_online_features' response
        assembly, which costs more than the read itself."""
        data = self._read_view("user_history", self._user_keys(user_id), USER_FEATURES)[0]
        if not data:
            return None
        ids = data.get("recent_item_ids")
        if ids is None and data.get("event_count") is None:
            return None
        return UserFeatures(
            recent=list(zip(ids or [], data.get("recent_event_types") or [])),
            event_count=int(data.get("event_count") or 0),
            purchase_count=int(data.get("purchase_count") or 0),
            last_event_ts=float(data.get("last_event_ts") or 0.0),
            interests=list(zip(data.get("interest_item_ids") or [], map(float, data.get("interest_timestamps") or []))),
            purchased=list(data.get("purchased_item_ids") or []),
        )

    def get_shopper_state(self, user_id: str, key: str) -> ShopperState | None:
        """The shopper's stored vector for the version `key` (None: none stored for that version)."""
        data = self._read_view("shopper_state", self._user_keys(user_id), SHOPPER_STATE)[0]
        keys = list(data.get("version_keys") or [])
        if key not in keys:
            return None
        vectors = np.asarray(data.get("vectors") or [], dtype=np.float32)
        width = len(vectors) // len(keys)
        at = keys.index(key)
        return ShopperState(vectors[at * width : (at + 1) * width], str(data.get("fingerprint") or ""))

    def get_shop(self) -> ShopFeatures:
        data = self.store.get_online_features(features=SHOP_FEATURES, entity_rows=[{"shop_id": SHOP_ID}]).to_dict()
        return ShopFeatures(float(data["clock"][0] or 0.0), list(data["popular_item_ids"][0] or []),
                            list(data["filler_item_ids"][0] or []),
                            list(zip(data["trending_item_ids"][0] or [], map(float, data["trending_scores"][0] or []))),
                            float(data["changed_at"][0] or 0.0))

    def get_segments(self) -> tuple[list[Segment], float]:
        """The latest clustering's segments and when it ran (none and 0 before the first)."""
        data = self.store.get_online_features(features=SEGMENT_FEATURES, entity_rows=[{"shop_id": SHOP_ID}]).to_dict()
        ids, names, sizes = (data[k][0] or [] for k in ("segment_ids", "segment_names", "segment_sizes"))
        return [Segment(int(i), n, int(z)) for i, n, z in zip(ids, names, sizes)], float(data["segmented_at"][0] or 0.0)

    def get_segment(self, user_id: str) -> int | None:
        data = self.store.get_online_features(features=["user_segment:segment_id"], entity_rows=[{"user_id": user_id}]).to_dict()
        value = data["segment_id"][0]
        return None if value is None else int(value)

    def get_co_purchase(self, key: str, item_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        """Neighbours of `item_ids` in the version `key` (items without neighbours are absent)."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        rows = [{"model_version": key, "item_id": i} for i in ids]
        data = self.store.get_online_features(features=CO_PURCHASE, entity_rows=rows).to_dict()
        out = {}
        for k, item_id in enumerate(data["item_id"]):
            nbs = data["neighbour_ids"][k]
            if nbs:
                out[item_id] = list(zip(nbs, map(float, data["neighbour_scores"][k])))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["apply", "yaml"], help="apply the definitions, or print this deployment's feature_store.yaml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    if args.command == "yaml":
        import yaml

        print("# Generated by `python -m core.features yaml` from this deployment's RECSYS_* settings (core/features.py).")
        print(yaml.safe_dump(repo_config(load()), sort_keys=False), end="")
        return
    apply(load())


if __name__ == "__main__":
    main()
