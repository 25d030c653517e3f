"""Experiments, served lists and attributions (core/experiments): the experiment rows with their
sequential tests' running state, the lists the scoring service served, and which list each interest
event answered."""
from __future__ import annotations

import json
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import INTEREST_EVENTS, Event
from core.experiments.attribution import Attribution, ServedList
from core.experiments.definition import RUNNING, Experiment
from core.store.erasures import ERASURE_LOCK, erased_at, take_lock
from core.store.schema import ATTRIBUTED_SEQ, attributions_table, chunks, counters_table, events_table, experiments_table, insert_ignore, served_lists_table


class ExperimentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, experiment: Experiment) -> tuple[Experiment, bool]:
        """Insert unless the id exists; returns (the stored experiment, created)."""
        stmt = insert_ignore(self.engine, experiments_table).on_conflict_do_nothing(index_elements=["experiment_id"])
        with self.engine.begin() as conn:
            result = conn.execute(stmt, dict(experiment_id=experiment.experiment_id, state=experiment.state,
                                             definition=experiment.to_json(), created=experiment.created, ended=0.0, tests={}))
        stored = self.get(experiment.experiment_id)
        assert stored is not None
        return stored, bool(result.rowcount)

    def get(self, experiment_id: str) -> Experiment | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(experiments_table.c.definition).where(experiments_table.c.experiment_id == experiment_id)).first()
        return Experiment.from_json(row[0]) if row else None

    def running(self) -> list[Experiment]:
        c = experiments_table.c
        with self.engine.connect() as conn:
            return [Experiment.from_json(r[0]) for r in conn.execute(sa.select(c.definition).where(c.state == RUNNING).order_by(c.created))]

    def recent(self, limit: int) -> list[Experiment]:
        c = experiments_table.c
        with self.engine.connect() as conn:
            return [Experiment.from_json(r[0]) for r in conn.execute(sa.select(c.definition).order_by(c.created.desc()).limit(limit))]

    def finish(self, experiment: Experiment) -> bool:
        """Store an ended experiment if it was still running (one decider wins a race); returns whether it did."""
        c = experiments_table.c
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(experiments_table).where(c.experiment_id == experiment.experiment_id, c.state == RUNNING)
                                  .values(state=experiment.state, definition=experiment.to_json(), ended=experiment.ended))
        return bool(result.rowcount)

    def tests(self, experiment_id: str) -> dict[str, tuple[float, float]]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(experiments_table.c.tests).where(experiments_table.c.experiment_id == experiment_id)).first()
        return {arm: (float(p[0]), float(p[1])) for arm, p in (row[0] if row else {}).items()}

    def save_tests(self, experiment_id: str, tests: dict[str, tuple[float, float]]) -> None:
        """Keep the running minima (never raise a stored p-value: a concurrent look may have lowered it)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(experiments_table.c.tests).where(experiments_table.c.experiment_id == experiment_id)
                               .with_for_update()).first()
            old = row[0] if row else {}
            merged = {arm: [min(p[0], old.get(arm, [1.0, 1.0])[0]), min(p[1], old.get(arm, [1.0, 1.0])[1])] for arm, p in tests.items()}
            conn.execute(sa.update(experiments_table).where(experiments_table.c.experiment_id == experiment_id).values(tests=merged))


class ServedStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, lists: Sequence[ServedList]) -> None:
        if not lists:
            return
        stmt = insert_ignore(self.engine, served_lists_table).on_conflict_do_nothing(index_elements=["request_id", "arm", "shadow"])
        with self.engine.begin() as conn:
            take_lock(conn, ERASURE_LOCK)  # a list queued before an erasure must not land after it
            erased = erased_at(conn, {s.user_key for s in lists})
            lists = [s for s in lists if not (s.user_key in erased and s.served_at <= erased[s.user_key])]
            if not lists:
                return
            conn.execute(stmt, [dict(request_id=s.request_id, arm=s.arm, shadow=s.shadow, user_key=s.user_key, served_at=s.served_at,
                                     experiment_id=s.experiment_id, version=s.version, rpc=s.rpc, item_ids=list(s.item_ids)) for s in lists])

    def by_request(self, request_ids: Iterable[str]) -> dict[str, ServedList]:
        """The shown list of each request id."""
        c = served_lists_table.c
        out: dict[str, ServedList] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(set(request_ids)), 500):
                for row in conn.execute(sa.select(served_lists_table).where(c.request_id.in_(chunk), c.shadow.is_(False))):
                    out[row.request_id] = _served(row)
        return out

    def of_users(self, wanted: dict[str, set[str]], since: float) -> dict[str, list[ServedList]]:
        """Each shopper's shown lists served at or after `since` that show one of their `wanted` items
        (user key -> item ids: what their events name). A frequent shopper has hundreds of lists in
        the window; the attributor needs only those that show what they clicked or bought, so the
        stored text is searched for the items before any list is decoded (decoding every list was a
        sixth of the feedback service's CPU under the shop-like load)."""
        c = served_lists_table.c
        out: dict[str, list[ServedList]] = {}
        raw = sa.type_coerce(c.item_ids, sa.String).label("raw_item_ids")
        with self.engine.connect() as conn:
            for chunk in chunks(list(wanted), 500):
                q = (sa.select(c.request_id, c.arm, c.shadow, c.user_key, c.served_at, c.experiment_id, c.version, c.rpc, raw)
                     .where(c.user_key.in_(chunk), c.served_at >= since, c.shadow.is_(False)))
                needles = {u: [json.dumps(i, ensure_ascii=a) for i in wanted[u] for a in (True, False)] for u in chunk}
                for row in conn.execute(q):
                    text = row.raw_item_ids if isinstance(row.raw_item_ids, str) else json.dumps(row.raw_item_ids)
                    if any(n in text for n in needles[row.user_key]):
                        out.setdefault(row.user_key, []).append(_served(row, json.loads(text)))
        return out

    def of_experiment(self, experiment_id: str, until: float | None = None) -> list[ServedList]:
        c = served_lists_table.c
        q = sa.select(served_lists_table).where(c.experiment_id == experiment_id)
        if until is not None:
            q = q.where(c.served_at < until)
        with self.engine.connect() as conn:
            return [_served(r) for r in conn.execute(q.order_by(c.served_at))]

    def delete_user(self, user_key: str) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(served_lists_table).where(served_lists_table.c.user_key == user_key)).rowcount)

    def delete_older_than(self, before: float) -> int:
        """Retention: served lists served before `before` (wall clock)."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(served_lists_table).where(served_lists_table.c.served_at < before)).rowcount)


def _served(row: sa.Row, items: list[str] | None = None) -> ServedList:
    """The row as a ServedList; `items`: its item ids when the caller decoded them already."""
    if items is None:
        items = row.item_ids if isinstance(row.item_ids, list) else json.loads(row.item_ids)
    return ServedList(row.request_id, row.user_key, float(row.served_at), row.version, tuple(items), row.experiment_id, row.arm,
                      bool(row.shadow), row.rpc)


class AttributionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, received_before: float, limit: int = 5000) -> tuple[list[tuple[Event, float]], int, int]:
        """Interest events that arrived after the watermark, in arrival order, up to the first one
        received at or after `received_before` (its served list may still be on its way); and the
        watermark now and the arrival number it may move to."""
        c = events_table.c
        with self.engine.connect() as conn:
            mark = int(conn.execute(sa.select(counters_table.c.value).where(counters_table.c.name == ATTRIBUTED_SEQ)).scalar() or 0)
            rows = conn.execute(sa.select(c.event_id, c.user_id, c.item_id, c.event_type, c.ts, c.request_id, c.seq, c.received_at)
                                .where(c.seq > mark).order_by(c.seq).limit(limit)).all()
        out, last = [], mark
        for r in rows:
            if r.received_at >= received_before:
                break
            last = int(r.seq)
            if r.event_type in INTEREST_EVENTS:
                out.append((Event(r.event_id, r.user_id, r.item_id, r.event_type, float(r.ts), r.request_id, int(r.seq)), float(r.received_at)))
        return out, mark, last

    def record(self, attributions: Sequence[Attribution], watermark: int) -> None:
        """Store attributions and move the watermark in one transaction (idempotent by event id)."""
        with self.engine.begin() as conn:
            erased = erased_at(conn, {a.user_key for a in attributions})
            attributions = [a for a in attributions if not (a.user_key in erased and a.received_at <= erased[a.user_key])]
            if attributions:
                stmt = insert_ignore(self.engine, attributions_table).on_conflict_do_nothing(index_elements=["event_id"])
                conn.execute(stmt, [dict(event_id=a.event_id, request_id=a.request_id, experiment_id=a.experiment_id, arm=a.arm,
                                         version=a.version, position=a.position, item_id=a.item_id, event_type=a.event_type,
                                         method=a.method, user_key=a.user_key, received_at=a.received_at, value=a.value)
                                    for a in attributions])
            c = counters_table.c
            conn.execute(sa.update(counters_table).where(c.name == ATTRIBUTED_SEQ, c.value < watermark).values(value=watermark))

    def of_experiment(self, experiment_id: str, until: float | None = None) -> list[Attribution]:
        c = attributions_table.c
        q = sa.select(attributions_table).where(c.experiment_id == experiment_id)
        if until is not None:
            q = q.where(c.received_at < until)
        with self.engine.connect() as conn:
            return [_attribution(r) for r in conn.execute(q)]

    def of_events(self, event_ids: Iterable[str]) -> dict[str, Attribution]:
        c = attributions_table.c
        out = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(event_ids), 500):
                for r in conn.execute(sa.select(attributions_table).where(c.event_id.in_(chunk))):
                    out[r.event_id] = _attribution(r)
        return out

    def delete_user(self, user_key: str) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(attributions_table).where(attributions_table.c.user_key == user_key)).rowcount)

    def delete_older_than(self, before: float) -> int:
        """Retention: attributions of events received before `before` (wall clock)."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(attributions_table).where(attributions_table.c.received_at < before)).rowcount)




def _attribution(r: sa.Row) -> Attribution:
    return Attribution(r.event_id, r.request_id, r.experiment_id, r.arm, r.version, r.position, r.item_id, r.event_type, r.method,
                       r.user_key, float(r.received_at), float(r.value))
