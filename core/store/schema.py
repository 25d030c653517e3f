"""Tables of the event log (the system of record) and how an engine is opened on it: SQLite by
default, PostgreSQL by URL. Each concern reads and writes its own tables through its own store
(events.py, catalogue.py, jobs.py, replay.py)."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

events_table = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("user_id", sa.String, nullable=False),  # indexed by ix_events_user_interest (_migrate)
    sa.Column("item_id", sa.String, nullable=False),
    sa.Column("event_type", sa.String, nullable=False),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("request_id", sa.String, nullable=False, default=""),
    sa.Column("received_at", sa.Float, nullable=False),
    # Arrival number: 1, 2, 3, ... in commit order (appends are serialised on the counter row below).
    sa.Column("seq", sa.BigInteger, nullable=True, unique=True, index=True),
)

items_table = sa.Table(
    "items",
    metadata,
    sa.Column("item_id", sa.String, primary_key=True),
    sa.Column("title", sa.String, nullable=False),
    sa.Column("description", sa.String, nullable=False, default=""),
    sa.Column("category", sa.String, nullable=False, default=""),
    sa.Column("price", sa.Float, nullable=False, default=0.0),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("status", sa.Integer, nullable=False, default=0),  # core.domain.ItemStatus
)

jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", sa.String, primary_key=True),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("message", sa.String, nullable=False, default=""),
    sa.Column("parent_version", sa.String, nullable=False, default=""),
    sa.Column("new_version", sa.String, nullable=False, default=""),
    sa.Column("max_steps", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.Float, nullable=False),
    # Every progress report refreshes `updated`: it is the running job's heartbeat (its lease).
    sa.Column("updated", sa.Float, nullable=False),
    # The worker (Celery node name) that claimed the job.
    sa.Column("owner", sa.String, nullable=False, server_default=""),
)

# Reservoir of past training examples replayed in later fine-tunes (against forgetting); bounded,
# persisted here so a restarted worker keeps it.
replay_table = sa.Table(
    "replay_buffer",
    metadata,
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("user_text", sa.String, nullable=False),
    sa.Column("item_text", sa.String, nullable=False),
    sa.Column("label", sa.Float, nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
    # The pseudonymous shopper the example came from, so forgetting them reaches the reservoir too.
    sa.Column("user_key", sa.String, nullable=False, server_default=""),
)

counters_table = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# One row per ForgetUser: what was removed, when, by whom (the shopper appears only as a pseudonym).
erasures_table = sa.Table(
    "erasures",
    metadata,
    sa.Column("receipt_id", sa.String, primary_key=True),
    sa.Column("user_key", sa.String, nullable=False, index=True),
    sa.Column("requested_by", sa.String, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("removed", sa.JSON, nullable=False),  # {store: rows removed}
    sa.Column("trained_versions", sa.JSON, nullable=False),  # published versions whose data window held their events
    sa.Column("running_jobs", sa.JSON, nullable=False, server_default="[]"),  # fine-tunes running when it began
)

# Every admin call: who, what, when, and how it ended.
audit_table = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("client", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("method", sa.String, nullable=False),
    sa.Column("request", sa.String, nullable=False),  # the request as text, cut short
    sa.Column("outcome", sa.String, nullable=False),  # the gRPC status code name
    sa.Column("detail", sa.String, nullable=False),
    sa.Column("caller", sa.String, nullable=False, server_default=""),  # the API key's fingerprint
    sa.Column("peer", sa.String, nullable=False, server_default=""),  # the caller's address
    sa.Column("chain", sa.String, nullable=False, server_default=""),  # core.store.audit.row_hash
)


# Online experiments (core/experiments): one row each; `definition` is core.experiments.definition's JSON.
experiments_table = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.String, primary_key=True),
    sa.Column("state", sa.String, nullable=False, index=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("ended", sa.Float, nullable=False, default=0.0),
    # the sequential test's running minima per arm ({arm: [p_equal, p_inferior]}): always-valid across looks
    sa.Column("tests", sa.JSON, nullable=False),
)

# Every ranking answer for a shopper as served (and each shadow arm's would-be answer), written by the
# scoring service off the request path; what attribution joins events to.
served_lists_table = sa.Table(
    "served_lists",
    metadata,
    sa.Column("request_id", sa.String, primary_key=True),
    sa.Column("arm", sa.String, primary_key=True),  # "" outside experiments
    sa.Column("shadow", sa.Boolean, primary_key=True),
    sa.Column("user_key", sa.String, nullable=False),
    sa.Column("served_at", sa.Float, nullable=False, index=True),
    sa.Column("experiment_id", sa.String, nullable=False, index=True),
    sa.Column("version", sa.String, nullable=False),
    sa.Column("rpc", sa.String, nullable=False),
    sa.Column("item_ids", sa.JSON, nullable=False),
    sa.Index("ix_served_lists_user", "user_key", "served_at"),
)

# Which served list (and position) each interest event answers; one row per attributed event.
attributions_table = sa.Table(
    "attributions",
    metadata,
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("request_id", sa.String, nullable=False, index=True),
    sa.Column("experiment_id", sa.String, nullable=False, index=True),
    sa.Column("arm", sa.String, nullable=False),
    sa.Column("version", sa.String, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("item_id", sa.String, nullable=False),
    sa.Column("event_type", sa.String, nullable=False),
    sa.Column("method", sa.String, nullable=False),
    sa.Column("user_key", sa.String, nullable=False, index=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("value", sa.Float, nullable=False, default=0.0),
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the worker read while the feedback service writes; FULL sync makes an ack durable.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    # an erased shopper's rows are overwritten on disk, not left in free pages for a file reader
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def open_engine(url: str) -> Engine:
    """An engine on the log with every table created (and older logs migrated)."""
    if sa.engine.make_url(url).get_backend_name() == "sqlite":
        engine = sa.create_engine(url, future=True)
    else:  # a server restart or failover drops pooled connections: test each one as it is checked out
        engine = sa.create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    _migrate(engine)
    return engine


EVENT_SEQ = "event_seq"  # the counters row holding the newest arrival number
ATTRIBUTED_SEQ = "attributed_seq"  # the newest arrival number attribution has looked at


def _migrate(engine: Engine) -> None:
    """Columns added after a log was first created (create_all does not alter existing tables)."""
    inspector = sa.inspect(engine)
    columns = {c["name"] for c in inspector.get_columns("jobs")}
    if "owner" not in columns:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE jobs ADD COLUMN owner VARCHAR NOT NULL DEFAULT ''"))
    if "seq" not in {c["name"] for c in inspector.get_columns("events")}:
        # Older logs get arrival numbers in the order they were received.
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE events ADD COLUMN seq BIGINT"))
            conn.execute(sa.text(
                "UPDATE events SET seq = numbered.n FROM (SELECT event_id, row_number() OVER "
                "(ORDER BY received_at, ts, event_id) AS n FROM events) AS numbered WHERE events.event_id = numbered.event_id"))
            conn.execute(sa.text("CREATE UNIQUE INDEX IF NOT EXISTS ix_events_seq ON events (seq)"))
    if "user_key" not in {c["name"] for c in inspector.get_columns("replay_buffer")}:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE replay_buffer ADD COLUMN user_key VARCHAR NOT NULL DEFAULT ''"))
    if "status" not in {c["name"] for c in inspector.get_columns("items")}:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE items ADD COLUMN status INTEGER NOT NULL DEFAULT 0"))
    if "running_jobs" not in {c["name"] for c in inspector.get_columns("erasures")}:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE erasures ADD COLUMN running_jobs JSON NOT NULL DEFAULT '[]'"))
    audit_columns = {c["name"] for c in inspector.get_columns("audit_log")}
    for name in ("caller", "peer", "chain"):
        if name not in audit_columns:
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE audit_log ADD COLUMN {name} VARCHAR NOT NULL DEFAULT ''"))
    with engine.begin() as conn:
        # what the feature refresh reads per shopper of every batch (their counts and newest interest
        # events, core.store.events) comes from this index alone, never a row fetched per event: 0.73 vs
        # 1.15 ms of CPU per shopper on the shop-like log (3,000 shoppers, 396,000 events). Its prefix
        # serves every other lookup by shopper, so the older indexes on (user_id) and (user_id, ts) go.
        conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_events_user_interest ON events (user_id, event_type, ts, item_id, event_id)"))
        conn.execute(sa.text("DROP INDEX IF EXISTS ix_events_user_ts"))
        conn.execute(sa.text("DROP INDEX IF EXISTS ix_events_user_id"))
        # an item's recent count reads this index alone (event_type in it: no row fetched per event; with
        # (item_id, ts) each batch's counts read every row of its items' windows, and RecordEvents slowed
        # as the log grew: 21.6 ms vs 1.2 ms for 20 items at 100,000 events)
        conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_events_item_type_ts ON events (item_id, event_type, ts)"))
        conn.execute(sa.text("DROP INDEX IF EXISTS ix_events_item_ts"))
        newest = conn.execute(sa.select(sa.func.max(events_table.c.seq))).scalar() or 0
        stmt = insert_ignore(engine, counters_table).on_conflict_do_nothing(index_elements=["name"])
        conn.execute(stmt, {"name": EVENT_SEQ, "value": int(newest)})
        conn.execute(stmt, {"name": ATTRIBUTED_SEQ, "value": int(newest)})  # older events were never served by us
        conn.execute(stmt, {"name": "erasure_lock", "value": 0})  # core.store.erasures.ERASURE_LOCK


def insert_ignore(engine: Engine, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT on both dialects."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert(table)


def chunks(seq: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
