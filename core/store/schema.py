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
    sa.Column("user_id", sa.String, nullable=False, index=True),
    sa.Column("item_id", sa.String, nullable=False),
    sa.Column("event_type", sa.String, nullable=False),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("request_id", sa.String, nullable=False, default=""),
    sa.Column("received_at", sa.Float, nullable=False),
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
)

counters_table = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the worker read while the feedback service writes; FULL sync makes an ack durable.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def open_engine(url: str) -> Engine:
    """An engine on the log with every table created (and older logs migrated)."""
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    _migrate(engine)
    return engine


def _migrate(engine: Engine) -> None:
    """Columns added after a log was first created (create_all does not alter existing tables)."""
    columns = {c["name"] for c in sa.inspect(engine).get_columns("jobs")}
    if "owner" not in columns:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE jobs ADD COLUMN owner VARCHAR NOT NULL DEFAULT ''"))


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
