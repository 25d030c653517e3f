"""Behaviour events: appended durably before the feedback service acknowledges them, deduplicated by
event id, numbered in arrival order; read by the feedback service (to refresh online features) and by
training. Never on the ranking path: Rank reads the online store.

Arrival numbers (`seq`) are what training windows follow: a version records the newest number it
covered and the next fine-tune trains on everything numbered after it, whatever timestamps the
storefront sent. Every append first updates the counter row that holds the newest number, which holds
the log's write lock (SQLite) or that row's lock (PostgreSQL) until commit: appends are serialised,
numbers commit in order, and a reader that sees number n sees every number below it."""
from __future__ import annotations

import logging
import time
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import INTEREST_EVENTS, Event
from core.store.erasures import erased_at
from core.store.schema import EVENT_SEQ, chunks, counters_table, events_table, insert_ignore

logger = logging.getLogger(__name__)
APPEND_ATTEMPTS = 3  # a transient database error (connection lost, deadlock) is retried before the caller sees it


def item_counts_query(since: float, item_ids: Sequence[str] | None = None) -> sa.Select:
    """Interest events per item at or after `since`: every event batch runs it for the batch's items,
    so it reads the (item_id, event_type, ts) index alone (schema.py) and costs what the counts are,
    not what the items' histories hold."""
    c = events_table.c
    q = sa.select(c.item_id, sa.func.count()).where(c.ts >= since, c.event_type.in_(INTEREST_EVENTS))
    if item_ids is not None:
        q = q.where(c.item_id.in_(item_ids))
    return q.group_by(c.item_id)


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, events: Sequence[Event]) -> set[str]:
        """Store events in one transaction; returns the ids that were new (others were duplicates)."""
        return self.append_batches([events])[0]

    def append_batches(self, batches: Sequence[Sequence[Event]]) -> list[set[str]]:
        """Store several batches in one transaction (one fsync): per batch, the ids that were new. An id
        sent twice counts as new in the first batch that carries it."""
        if not any(batches):
            return [set() for _ in batches]
        for attempt in range(APPEND_ATTEMPTS - 1):
            try:
                return self._append_batches(batches)
            except sa.exc.OperationalError as exc:  # a dropped connection or a deadlock: nothing we hold was committed
                logger.warning("event append failed (%s); retrying", type(exc.orig).__name__)
                time.sleep(0.05 * 4**attempt)
        return self._append_batches(batches)  # the last attempt: its error goes to the caller

    def _append_batches(self, batches: Sequence[Sequence[Event]]) -> list[set[str]]:
        # Retrying is safe: ids already stored are skipped. If a lost connection hid a commit that did
        # happen, the retry reports those events as duplicates; they are stored either way.
        now = time.time()
        ids = list({e.event_id for batch in batches for e in batch})
        counter = counters_table.c
        with self.engine.begin() as conn:
            # Lock first (see the module docstring), then deduplicate inside the same transaction.
            conn.execute(sa.update(counters_table).where(counter.name == EVENT_SEQ).values(value=counter.value))
            last = int(conn.execute(sa.select(counter.value).where(counter.name == EVENT_SEQ)).scalar_one())
            # an erased shopper's events from before the erasure never come back (core.store.erasures)
            erased = erased_at(conn, {e.user_id for batch in batches for e in batch})
            taken: set[str] = set()
            for chunk in chunks(ids, 500):
                taken.update(conn.execute(sa.select(events_table.c.event_id).where(events_table.c.event_id.in_(chunk))).scalars().all())
            fresh: list[set[str]] = []
            rows: list[dict[str, object]] = []
            for batch in batches:
                mine: set[str] = set()
                for e in batch:
                    if e.event_id in taken or (e.user_id in erased and e.timestamp <= erased[e.user_id]):
                        continue
                    taken.add(e.event_id)
                    mine.add(e.event_id)
                    rows.append(dict(event_id=e.event_id, user_id=e.user_id, item_id=e.item_id, event_type=e.event_type,
                                     ts=e.timestamp, request_id=e.request_id, received_at=now, seq=last + 1 + len(rows)))
                fresh.append(mine)
            if rows:
                stmt = insert_ignore(self.engine, events_table).on_conflict_do_nothing(index_elements=["event_id"])
                conn.execute(stmt, rows)
                conn.execute(sa.update(counters_table).where(counter.name == EVENT_SEQ).values(value=last + len(rows)))
        return fresh

    def recent_events_many(self, user_ids: Sequence[str], limit: int) -> dict[str, list[tuple[str, str, float, str]]]:
        """(item_id, event_type, ts, event_id) of each shopper's newest `limit` interest events, newest
        first (ties: the greater event id first), in one query per 500 shoppers."""
        c = events_table.c
        out: dict[str, list[tuple[str, str, float, str]]] = {u: [] for u in user_ids}
        with self.engine.connect() as conn:
            for chunk in chunks(list(user_ids), 500):
                rank = sa.func.row_number().over(partition_by=c.user_id, order_by=(c.ts.desc(), c.event_id.desc())).label("rank")
                inner = (sa.select(c.user_id, c.item_id, c.event_type, c.ts, c.event_id, rank)
                         .where(c.user_id.in_(chunk), c.event_type.in_(INTEREST_EVENTS)).subquery())
                q = (sa.select(inner.c.user_id, inner.c.item_id, inner.c.event_type, inner.c.ts, inner.c.event_id)
                     .where(inner.c.rank <= limit))
                for user, item, kind, ts, event_id in conn.execute(q.order_by(inner.c.user_id, inner.c.rank)).all():
                    out[user].append((item, kind, float(ts), event_id))
        return out

    def user_counts_many(self, user_ids: Sequence[str]) -> dict[str, tuple[int, int, float]]:
        """(interest events, purchases, newest event time) of each shopper (absent ones count zero)."""
        c = events_table.c
        out = {u: (0, 0, 0.0) for u in user_ids}
        with self.engine.connect() as conn:
            for chunk in chunks(list(user_ids), 500):
                q = sa.select(
                    c.user_id,
                    sa.func.count().filter(c.event_type.in_(INTEREST_EVENTS)),
                    sa.func.count().filter(c.event_type == "purchase"),
                    sa.func.max(c.ts),
                ).where(c.user_id.in_(chunk)).group_by(c.user_id)
                for user, n, p, last in conn.execute(q):
                    out[user] = (int(n or 0), int(p or 0), float(last or 0.0))
        return out

    def read(self, since: float | None = None, until: float | None = None) -> list[Event]:
        c = events_table.c
        q = sa.select(c.event_id, c.user_id, c.item_id, c.event_type, c.ts, c.request_id, sa.func.coalesce(c.seq, 0))
        if since is not None:
            q = q.where(c.ts >= since)
        if until is not None:
            q = q.where(c.ts < until)
        with self.engine.connect() as conn:
            return [Event(*r) for r in conn.execute(q.order_by(c.ts, c.event_id))]

    def item_counts(self, since: float, item_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Interest events per item at or after `since` (of `item_ids` only, when given)."""
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            if item_ids is None:
                return {r[0]: int(r[1]) for r in conn.execute(item_counts_query(since))}
            for chunk in chunks(list(item_ids), 500):
                out.update({r[0]: int(r[1]) for r in conn.execute(item_counts_query(since, chunk))})
        return out

    def active_users(self, since: float) -> list[str]:
        """Shoppers with an interest event stamped at or after `since` (a new version's state backfill)."""
        c = events_table.c
        q = sa.select(c.user_id).where(c.ts >= since, c.event_type.in_(INTEREST_EVENTS)).distinct()
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(q))

    def users_received_since(self, since: float, chunk: int = 5000) -> list[str]:
        """Shoppers of the events received (appended, by this machine's clock) at or after `since`: read
        newest first along the arrival-number index, stopping at the first chunk that reaches past it."""
        c = events_table.c
        users: set[str] = set()
        cursor: int | None = None
        with self.engine.connect() as conn:
            while True:
                q = sa.select(c.seq, c.user_id, c.received_at).where(c.seq.is_not(None))
                if cursor is not None:
                    q = q.where(c.seq < cursor)
                rows = conn.execute(q.order_by(c.seq.desc()).limit(chunk)).all()
                users.update(r[1] for r in rows if r[2] >= since)
                if len(rows) < chunk or rows[-1][2] < since:
                    return sorted(users)
                cursor = rows[-1][0]

    def newest_time(self) -> float | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(events_table.c.ts))).scalar_one()
        return None if value is None else float(value)

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one())

    def positive_events_since(self, since: float) -> int:
        """Positive events stamped after `since` (versions from before arrival numbers)."""
        c = events_table.c
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(c.ts > since, c.event_type.in_(INTEREST_EVENTS))).scalar_one())

    def positive_events_after(self, seq: int) -> int:
        """Positive events that arrived after arrival number `seq`."""
        c = events_table.c
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(c.seq > seq, c.event_type.in_(INTEREST_EVENTS))).scalar_one())

    def newest_seq(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(events_table.c.seq))).scalar() or 0)

    def of_user(self, user_id: str) -> list[Event]:
        """Every event of one shopper (by their stored id), oldest first."""
        c = events_table.c
        q = sa.select(c.event_id, c.user_id, c.item_id, c.event_type, c.ts, c.request_id, sa.func.coalesce(c.seq, 0))
        with self.engine.connect() as conn:
            return [Event(*r) for r in conn.execute(q.where(c.user_id == user_id).order_by(c.ts, c.event_id))]

    def delete_user(self, user_id: str) -> int:
        """Remove every event of one shopper; returns how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(events_table).where(events_table.c.user_id == user_id)).rowcount)

    def delete_older_than(self, before: float, batch: int = 5000) -> tuple[int, set[str]]:
        """Remove events stamped before `before` (retention), in batches; returns (removed, their shoppers)."""
        c = events_table.c
        removed, users = 0, set[str]()
        while True:
            with self.engine.begin() as conn:
                rows = conn.execute(sa.select(c.event_id, c.user_id).where(c.ts < before).limit(batch)).all()
                if not rows:
                    return removed, users
                for chunk in chunks([r[0] for r in rows], 500):
                    conn.execute(sa.delete(events_table).where(c.event_id.in_(chunk)))
            removed += len(rows)
            users.update(r[1] for r in rows)
