"""Feast's Redis online store, with the per-entity operations forgetting a shopper needs.

Chosen by its class path as the config's `type:` (the way Feast picks any backend), like
core/feast_sqlite.py for SQLite: both offer `ping`, `delete_entities` and `count_entities` with the
same signatures, so core.features calls one interface and never branches on the backend. Reads and
writes are Feast's own. Redis keeps all of an entity's feature views in one hash (Feast's documented
Redis format: key = serialised entity key + project; per view a `_ts:<view>` field and one field per
feature, named by the murmur3 hash of `<view>:<feature>`); deleting a view's rows removes its fields.
"""
from __future__ import annotations

import struct
from typing import Any, Literal, Sequence

import mmh3
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_versioned_name
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig

STORE_TYPE = "core.feast_redis.ErasableRedisOnlineStore"


class ErasableRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Feast's Redis settings (`connection_string`, ...), selected by this store's class path."""

    type: Literal["core.feast_redis.ErasableRedisOnlineStore"] = STORE_TYPE  # type: ignore[assignment]


class ErasableRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis store plus ping and per-entity delete/count."""

    def ping(self, config: Any) -> bool:
        """Whether Redis answers PING (health checks)."""
        return bool(self._get_client(config.online_store).ping())

    def delete_entities(self, config: Any, table: Any, entity_keys: Sequence[Any]) -> int:
        """Remove `table`'s fields from these entities' hashes; returns how many entities had a row."""
        client = self._get_client(config.online_store)
        view = compute_versioned_name(table, config.registry.enable_online_feature_view_versioning)
        fields = [f"_ts:{view}".encode()] + [_field(view, f.name) for f in table.features]
        pipe = client.pipeline(transaction=True)
        for key in entity_keys:
            pipe.hexists(_key(config, key), fields[0])
            pipe.hdel(_key(config, key), *fields)
        results = pipe.execute()
        return sum(bool(had) for had in results[0::2])

    def count_entities(self, config: Any, table: Any, entity_keys: Sequence[Any]) -> int:
        """How many of these entities have a row of `table` (how a test checks an erasure)."""
        client = self._get_client(config.online_store)
        ts_field = "_ts:" + compute_versioned_name(table, config.registry.enable_online_feature_view_versioning)
        return sum(bool(client.hexists(_key(config, key), ts_field)) for key in entity_keys)


def _key(config: Any, entity_key: Any) -> bytes:
    """The entity's hash: its serialised key followed by the project name."""
    return serialize_entity_key(entity_key, entity_key_serialization_version=config.entity_key_serialization_version) + config.project.encode()


def _field(view: str, feature: str) -> bytes:
    """A feature's field in the hash: murmur3_32 of `<view>:<feature>`, little-endian, 4 bytes."""
    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))
