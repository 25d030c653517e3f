"""Feast's SQLite online store, safe to use from many threads and processes at once.

Feast 0.67's `SqliteOnlineStore` keeps one `sqlite3` connection per store, opened with
`check_same_thread=False`, and every thread of a gRPC server runs its reads and writes on it: under
concurrent event batches writes fail with "cannot start a transaction within a transaction" and reads
with "no more rows available". This store (a custom online store, chosen by its class path as the
config's `type:`, the way Feast picks any backend) gives each thread its own connection in WAL mode with
a busy timeout, so SQLite's own locking serialises writers across threads and processes while readers
never block. It also deletes one entity's rows, which forgetting a shopper needs and Feast's online
store interface does not offer per entity.

Its writes keep the newer row: a row whose event time is older than the stored one's does not
replace it, as in Feast's Redis store. Feast's SQLite store overwrites whatever it is given, so two
feedback processes refreshing one shopper at once could leave the row that was read first.
"""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig, _initialize_conn, _quote_id, _table_id
from feast.utils import to_naive_utc

STORE_TYPE = "core.feast_sqlite.ThreadSafeSqliteOnlineStore"
BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another's transaction before failing


class ThreadSafeSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """The SQLite online store's settings (`path`), selected by this store's class path."""

    type: Literal["core.feast_sqlite.ThreadSafeSqliteOnlineStore"] = STORE_TYPE  # type: ignore[assignment]


class ThreadSafeSqliteOnlineStore(SqliteOnlineStore):
    """One connection per thread (WAL, busy timeout); otherwise Feast's SQLite store unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def _get_conn(self, config: Any) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            path = self._get_db_path(config)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = _initialize_conn(path)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")  # readers do not wait for writers
            conn.execute("PRAGMA synchronous=NORMAL")  # the event log is the durable record; these rows are derived
            self._local.conn = conn
        return conn

    def online_write_batch(self, config: Any, table: Any, data: list[tuple[Any, dict[str, Any], datetime, datetime | None]],
                           progress: Callable[[int], Any] | None) -> None:
        """Feast's row format (value proto, text of string values, naive UTC times), written in one
        executemany; a row replaces the stored one only if its event time is not older."""
        store = config.online_store
        if store.vector_enabled or store.enable_openai_compatible_store:  # columns this write does not fill
            super().online_write_batch(config, table, data, progress)
            return
        conn = self._get_conn(config)
        name = _quote_id(_table_id(config.project, table, config.registry.enable_online_feature_view_versioning))
        upsert = (f"INSERT INTO {name} (entity_key, feature_name, value, value_text, event_ts, created_ts) VALUES (?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, value_text = excluded.value_text, "
                  "event_ts = excluded.event_ts, created_ts = excluded.created_ts "
                  f"WHERE {name}.event_ts IS NULL OR excluded.event_ts >= {name}.event_ts")
        rows = []
        for entity_key, values, event_ts, created_ts in data:
            key = serialize_entity_key(entity_key, entity_key_serialization_version=config.entity_key_serialization_version)
            at = to_naive_utc(event_ts)  # stored as ISO text, so text order is time order
            created = to_naive_utc(created_ts) if created_ts is not None else None
            for feature, value in values.items():
                rows.append((key, feature, value.SerializeToString(), extract_text_and_num(value, False)[0], at, created))
        with conn:
            conn.executemany(upsert, rows)
        if progress:
            progress(len(data))

    def ping(self, config: Any) -> bool:
        """Whether the database file answers a query (health checks)."""
        self._get_conn(config).execute("SELECT 1").fetchone()
        return True

    def delete_entities(self, config: Any, table: Any, entity_keys: Sequence[Any]) -> int:
        """Remove every feature row of these entity keys from `table`'s online table; returns rows removed."""
        conn = self._get_conn(config)
        name = _quote_id(_table_id(config.project, table, config.registry.enable_online_feature_view_versioning))
        removed = 0
        with conn:
            for key in entity_keys:
                blob = serialize_entity_key(key, entity_key_serialization_version=config.entity_key_serialization_version)
                removed += conn.execute(f"DELETE FROM {name} WHERE entity_key = ?", (blob,)).rowcount
        return removed

    def count_entities(self, config: Any, table: Any, entity_keys: Sequence[Any]) -> int:
        """Feature rows these entity keys have in `table`'s online table (how a test checks an erasure)."""
        conn = self._get_conn(config)
        name = _quote_id(_table_id(config.project, table, config.registry.enable_online_feature_view_versioning))
        total = 0
        for key in entity_keys:
            blob = serialize_entity_key(key, entity_key_serialization_version=config.entity_key_serialization_version)
            total += conn.execute(f"SELECT count(*) FROM {name} WHERE entity_key = ?", (blob,)).fetchone()[0]
        return total
