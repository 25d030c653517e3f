"""Behaviour events: appended durably before the feedback service acknowledges them, deduplicated by
event id; read by the feedback service (to refresh online features) and by training. Never on the
ranking path: Rank reads the online store."""
from __future__ import annotations

import time
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import INTEREST_EVENTS, Event
from core.store.schema import chunks, events_table, insert_ignore


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, events: Sequence[Event]) -> set[str]:
        """Store events in one transaction; returns the ids that were new (others were duplicates)."""
        if not events:
            return set()
        now = time.time()
        ids = [e.event_id for e in events]
        with self.engine.begin() as conn:
            existing: set[str] = set()
            for chunk in chunks(ids, 500):
                existing.update(conn.execute(sa.select(events_table.c.event_id).where(events_table.c.event_id.in_(chunk))).scalars())
            fresh: dict[str, Event] = {}
            for e in events:
                if e.event_id not in existing and e.event_id not in fresh:
                    fresh[e.event_id] = e
            if fresh:
                stmt = insert_ignore(self.engine, events_table).on_conflict_do_nothing(index_elements=["event_id"])
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
            return [tuple(r) for r in conn.execute(q)]

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

    def read(self, since: float | None = None, until: float | None = None) -> list[Event]:
        c = events_table.c
        q = sa.select(c.event_id, c.user_id, c.item_id, c.event_type, c.ts, c.request_id)
        if since is not None:
            q = q.where(c.ts >= since)
        if until is not None:
            q = q.where(c.ts < until)
        with self.engine.connect() as conn:
            return [Event(*r) for r in conn.execute(q.order_by(c.ts, c.event_id))]

    def item_counts(self, since: float, item_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Interest events per item at or after `since` (of `item_ids` only, when given)."""
        c = events_table.c
        q = sa.select(c.item_id, sa.func.count()).where(c.ts >= since, c.event_type.in_(INTEREST_EVENTS))
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            if item_ids is None:
                return {r[0]: int(r[1]) for r in conn.execute(q.group_by(c.item_id))}
            for chunk in chunks(list(item_ids), 500):
                out.update({r[0]: int(r[1]) for r in conn.execute(q.where(c.item_id.in_(chunk)).group_by(c.item_id))})
        return out

    def newest_time(self) -> float | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(events_table.c.ts))).scalar_one()
        return None if value is None else float(value)

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one())

    def positive_events_since(self, since: float) -> int:
        c = events_table.c
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(c.ts > since, c.event_type.in_(INTEREST_EVENTS))).scalar_one())
