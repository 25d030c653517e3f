"""The durable event log, catalogue and job table (SQLite by default, PostgreSQL by URL).

The feedback service appends here *before* acknowledging, so an acknowledged event is never lost; the
online features in Feast are derived from this log and can always be rebuilt from it. Training reads
its labelled examples from here.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clickmodel.text import INTEREST_EVENTS, ItemText
from clickmodel.training import Event

logger = logging.getLogger(__name__)

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

# Item co-purchase neighbours, refitted by the worker whenever it trains the fusion ranker (a signal
# the scoring service reads for the shopper's recent items).
co_purchase_table = sa.Table(
    "co_purchase",
    metadata,
    sa.Column("item_id", sa.String, primary_key=True),
    sa.Column("neighbour_id", sa.String, primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
)

counters_table = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)

CLAIM_LOCK_KEY = 0x5EC5  # PostgreSQL advisory lock taken while claiming a fine-tune job
JOB_STATES = ("PENDING", "RUNNING", "SUCCEEDED", "REJECTED", "FAILED")


@dataclass(frozen=True)
class Job:
    job_id: str
    state: str
    progress: float
    message: str
    parent_version: str
    new_version: str
    max_steps: int
    created: float
    updated: float
    owner: str = ""


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    # WAL lets the worker read while the feedback service writes; FULL sync makes an ack durable.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class EventLog:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._migrate()

    def _migrate(self) -> None:
        """Columns added after a log was first created (create_all does not alter existing tables)."""
        columns = {c["name"] for c in sa.inspect(self.engine).get_columns("jobs")}
        if "owner" not in columns:
            with self.engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE jobs ADD COLUMN owner VARCHAR NOT NULL DEFAULT ''"))

    def _insert_ignore(self, table: sa.Table):  # type: ignore[no-untyped-def]
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    # --- events -------------------------------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> set[str]:
        """Store events in one transaction; returns the ids that were new (others were duplicates)."""
        if not events:
            return set()
        now = time.time()
        ids = [e.event_id for e in events]
        with self.engine.begin() as conn:
            existing = set()
            for chunk in _chunks(ids, 500):
                existing.update(conn.execute(sa.select(events_table.c.event_id).where(events_table.c.event_id.in_(chunk))).scalars())
            fresh: dict[str, Event] = {}
            for e in events:
                if e.event_id not in existing and e.event_id not in fresh:
                    fresh[e.event_id] = e
            if fresh:
                stmt = self._insert_ignore(events_table).on_conflict_do_nothing(index_elements=["event_id"])
                conn.execute(
                    stmt,
                    [
                        dict(event_id=e.event_id, user_id=e.user_id, item_id=e.item_id, event_type=e.event_type,
                             ts=e.timestamp, request_id=e.request_id, received_at=now)
                        for e in fresh.values()
                    ],
                )
        return set(fresh)

    def recent_events(self, user_id: str, limit: int, interest_only: bool = True) -> list[tuple[str, str, float]]:
        """(item_id, event_type, ts) of a user's newest events, newest first."""
        q = sa.select(events_table.c.item_id, events_table.c.event_type, events_table.c.ts).where(events_table.c.user_id == user_id)
        if interest_only:
            q = q.where(events_table.c.event_type.in_(INTEREST_EVENTS))
        q = q.order_by(events_table.c.ts.desc(), events_table.c.event_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]  # type: ignore[misc]

    def user_counts(self, user_id: str) -> tuple[int, int, float]:
        """(interest events, purchases, newest event time) of a user."""
        c = events_table.c
        q = sa.select(
            sa.func.count().filter(c.event_type.in_(INTEREST_EVENTS)),
            sa.func.count().filter(c.event_type == "purchase"),
            sa.func.max(c.ts),
        ).where(c.user_id == user_id)
        with self.engine.connect() as conn:
            n, p, last = conn.execute(q).one()
        return int(n or 0), int(p or 0), float(last or 0.0)

    def events(self, since: float | None = None, until: float | None = None) -> list[Event]:
        c = events_table.c
        q = sa.select(c.event_id, c.user_id, c.item_id, c.event_type, c.ts, c.request_id)
        if since is not None:
            q = q.where(c.ts >= since)
        if until is not None:
            q = q.where(c.ts < until)
        with self.engine.connect() as conn:
            return [Event(*r) for r in conn.execute(q.order_by(c.ts, c.event_id))]

    def interest_history(self, user_id: str, limit: int = 2000) -> list[tuple[str, float]]:
        """(item_id, ts) of a user's newest interest events (clicks, carts, purchases), newest first."""
        c = events_table.c
        q = (sa.select(c.item_id, c.ts).where(c.user_id == user_id, c.event_type.in_(INTEREST_EVENTS))
             .order_by(c.ts.desc(), c.event_id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [(r[0], float(r[1])) for r in conn.execute(q)]

    def item_counts(self, since: float) -> dict[str, int]:
        """Interest events per item at or after `since`."""
        c = events_table.c
        q = sa.select(c.item_id, sa.func.count()).where(c.ts >= since, c.event_type.in_(INTEREST_EVENTS)).group_by(c.item_id)
        with self.engine.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(q)}

    def newest_time(self) -> float | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(events_table.c.ts))).scalar_one()
        return None if value is None else float(value)

    def replace_co_purchase(self, table: dict[str, list[tuple[str, float]]]) -> None:
        """Swap in a new neighbour table in one transaction (readers see the old or the new one)."""
        rows = [dict(item_id=a, neighbour_id=b, score=float(w)) for a, nbs in table.items() for b, w in nbs]
        with self.engine.begin() as conn:
            conn.execute(sa.delete(co_purchase_table))
            if rows:
                conn.execute(sa.insert(co_purchase_table), rows)

    def co_purchase_neighbours(self, item_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        out: dict[str, list[tuple[str, float]]] = {}
        c = co_purchase_table.c
        with self.engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(item_ids)), 500):
                for a, b, w in conn.execute(sa.select(c.item_id, c.neighbour_id, c.score).where(c.item_id.in_(chunk))):
                    out.setdefault(a, []).append((b, float(w)))
        for nbs in out.values():
            nbs.sort(key=lambda x: -x[1])
        return out

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one())

    def popular_items(self, limit: int, window_s: float = 30 * 86400) -> list[str]:
        """Most purchased/clicked items over the window ending at the newest event."""
        c = events_table.c
        with self.engine.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(c.ts))).scalar_one()
            if newest is None:
                return []
            q = (
                sa.select(c.item_id, sa.func.count().label("n"))
                .where(c.event_type.in_(INTEREST_EVENTS), c.ts >= newest - window_s)
                .group_by(c.item_id)
                .order_by(sa.desc("n"), c.item_id)
                .limit(limit)
            )
            return [r[0] for r in conn.execute(q)]

    # --- catalogue ----------------------------------------------------------------------------
    def upsert_items(self, items: dict[str, ItemText]) -> None:
        now = time.time()
        rows = [dict(item_id=k, title=v.title, description=v.description, category=v.category, price=v.price, updated_at=now) for k, v in items.items()]
        if not rows:
            return
        stmt = self._insert_ignore(items_table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["item_id"],
            set_={k: getattr(stmt.excluded, k) for k in ("title", "description", "category", "price", "updated_at")},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def catalogue(self) -> dict[str, ItemText]:
        c = items_table.c
        with self.engine.connect() as conn:
            return {r[0]: ItemText(r[1], r[2], r[3], r[4]) for r in conn.execute(sa.select(c.item_id, c.title, c.description, c.category, c.price))}

    def known_items(self, item_ids: Iterable[str]) -> set[str]:
        ids = list(set(item_ids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(ids, 500):
                found.update(conn.execute(sa.select(items_table.c.item_id).where(items_table.c.item_id.in_(chunk))).scalars())
        return found

    # --- jobs ---------------------------------------------------------------------------------
    def create_job(self, job_id: str, parent_version: str, max_steps: int) -> tuple[Job, bool]:
        """Insert a PENDING job unless one with this id exists; returns (job, created)."""
        now = time.time()
        stmt = self._insert_ignore(jobs_table).on_conflict_do_nothing(index_elements=["job_id"])
        with self.engine.begin() as conn:
            result = conn.execute(
                stmt,
                dict(job_id=job_id, state="PENDING", progress=0.0, message="queued", parent_version=parent_version,
                     new_version="", max_steps=max_steps, created=now, updated=now),
            )
        job = self.get_job(job_id)
        assert job is not None
        return job, bool(result.rowcount)

    def update_job(self, job_id: str, **fields: object) -> None:
        fields.setdefault("updated", time.time())
        with self.engine.begin() as conn:
            conn.execute(sa.update(jobs_table).where(jobs_table.c.job_id == job_id).values(**fields))

    def touch_job(self, job_id: str) -> None:
        """Renew a running job's lease without changing what it reports."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(jobs_table).where(jobs_table.c.job_id == job_id, jobs_table.c.state == "RUNNING")
                         .values(updated=time.time()))

    def get_job(self, job_id: str) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.job_id == job_id)).first()
        return Job(**row._mapping) if row else None

    def claim_job(self, job_id: str, owner: str = "", lease_s: float = float("inf")) -> bool:
        """Mark the job RUNNING for `owner` unless another job is RUNNING with a live lease (reported
        within `lease_s`). One statement on SQLite (its write lock serialises it); on PostgreSQL a
        transaction-scoped advisory lock serialises concurrent claims, so two workers never both win."""
        now = time.time()
        other = sa.select(jobs_table.c.job_id).where(
            jobs_table.c.state == "RUNNING", jobs_table.c.job_id != job_id, jobs_table.c.updated > now - lease_s
        ).exists()
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})
            result = conn.execute(
                sa.update(jobs_table)
                .where(jobs_table.c.job_id == job_id, ~other,
                       sa.or_(jobs_table.c.state != "RUNNING", jobs_table.c.updated <= now - lease_s))
                .values(state="RUNNING", progress=0.0, message="starting", updated=now, owner=owner)
            )
        return bool(result.rowcount)

    def active_jobs(self, lease_s: float = float("inf")) -> list[Job]:
        """PENDING jobs and RUNNING jobs whose lease is live."""
        c = jobs_table.c
        live = sa.or_(c.state == "PENDING", sa.and_(c.state == "RUNNING", c.updated > time.time() - lease_s))
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs_table).where(live)).all()
        return [Job(**r._mapping) for r in rows]

    def abandoned_jobs(self, owner: str, lease_s: float) -> list[Job]:
        """RUNNING jobs that no live worker holds: claimed by `owner` (a worker starting under the
        name of one that died) or silent for longer than the lease."""
        c = jobs_table.c
        dead = sa.and_(c.state == "RUNNING", sa.or_(c.owner == owner, c.updated <= time.time() - lease_s))
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs_table).where(dead)).all()
        return [Job(**r._mapping) for r in rows]

    def positive_events_since(self, since: float) -> int:
        c = events_table.c
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(c.ts > since, c.event_type.in_(INTEREST_EVENTS))).scalar_one())


class ReplayBuffer:
    """Reservoir sampling (Algorithm R) over every example ever added: each has the same chance of
    being in the buffer, whatever its age, and the buffer never exceeds `capacity`."""

    def __init__(self, log: EventLog, capacity: int) -> None:
        self.log = log
        self.capacity = capacity

    def add(self, examples, seed: int = 0) -> None:  # type: ignore[no-untyped-def]
        import random

        rng = random.Random(seed)
        now = time.time()
        with self.log.engine.begin() as conn:
            seen = conn.execute(sa.select(counters_table.c.value).where(counters_table.c.name == "replay_seen")).scalar()
            fresh_counter = seen is None
            seen = seen or 0
            for e in examples:
                seen += 1
                slot = seen - 1 if seen <= self.capacity else rng.randrange(seen)
                if slot < self.capacity:
                    row = dict(user_text=e.user_text, item_text=e.item_text, label=e.label, added_at=now)
                    updated = conn.execute(sa.update(replay_table).where(replay_table.c.slot == slot).values(**row)).rowcount
                    if not updated:
                        conn.execute(sa.insert(replay_table).values(slot=slot, **row))
            if fresh_counter:
                conn.execute(sa.insert(counters_table).values(name="replay_seen", value=seen))
            else:
                conn.execute(sa.update(counters_table).where(counters_table.c.name == "replay_seen").values(value=seen))

    def sample(self, n: int, seed: int = 0) -> list:  # type: ignore[type-arg]
        import random

        from clickmodel.training import Example

        with self.log.engine.connect() as conn:
            rows = conn.execute(sa.select(replay_table.c.user_text, replay_table.c.item_text, replay_table.c.label).order_by(replay_table.c.slot)).all()
        rows = random.Random(seed).sample(rows, min(n, len(rows)))
        return [Example(u, i, float(y)) for u, i, y in rows]

    def __len__(self) -> int:
        with self.log.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(replay_table)).scalar_one())


def _chunks(seq: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
