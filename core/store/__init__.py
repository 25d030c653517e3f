"""The event log, the system of record, split by concern: events, catalogue, jobs, replay. One engine
(SQLite by default, PostgreSQL by URL) behind stores that each own their tables."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.audit import AuditLog, copy_legacy_rows
from core.store.catalogue import CatalogueStore
from core.store.erasures import ErasureStore
from core.store.events import EventStore
from core.store.experiments import AttributionStore, ExperimentStore, ServedStore
from core.store.jobs import JobStore
from core.store.replay import ReplayBuffer
from core.store.schema import open_engine

__all__ = ["EventLog", "EventStore", "CatalogueStore", "JobStore", "ReplayBuffer", "AuditLog", "ErasureStore", "ExperimentStore", "ServedStore", "AttributionStore", "open_engine"]


@dataclass(frozen=True)
class EventLog:
    """The stores of one log. Processes take the stores they need (the scoring service takes none)."""

    engine: Engine
    events: EventStore
    catalogue: CatalogueStore
    jobs: JobStore
    audit: AuditLog
    erasures: ErasureStore
    experiments: ExperimentStore
    served: ServedStore
    attributions: AttributionStore

    @classmethod
    def open(cls, url: str, audit_url: str = "") -> "EventLog":
        """The log at `url`; the audit log at `audit_url` when given (settings.audit_log), else in the same
        database. Rows an older deployment audited into the event log move to the audit log once."""
        engine = open_engine(url)
        audit_engine = open_engine(audit_url) if audit_url and audit_url != url else engine
        copy_legacy_rows(engine, audit_engine)
        return cls(engine, EventStore(engine), CatalogueStore(engine), JobStore(engine), AuditLog(audit_engine),
                   ErasureStore(engine), ExperimentStore(engine), ServedStore(engine), AttributionStore(engine))

    def reachable(self) -> bool:
        """Whether the database answers a query now (a health check)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True

    def replay(self, capacity: int) -> ReplayBuffer:
        return ReplayBuffer(self.engine, capacity)
