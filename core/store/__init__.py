"""The event log, the system of record, split by concern: events, catalogue, jobs, replay. One engine
(SQLite by default, PostgreSQL by URL) behind stores that each own their tables."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.audit import AuditLog
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
    def open(cls, url: str) -> "EventLog":
        engine = open_engine(url)
        return cls(engine, EventStore(engine), CatalogueStore(engine), JobStore(engine), AuditLog(engine), ErasureStore(engine),
                   ExperimentStore(engine), ServedStore(engine), AttributionStore(engine))

    def reachable(self) -> bool:
        """Whether the database answers a query now (a health check)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True

    def replay(self, capacity: int) -> ReplayBuffer:
        return ReplayBuffer(self.engine, capacity)
