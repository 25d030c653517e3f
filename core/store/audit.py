"""The audit log: every admin call (and every refused call to an admin RPC) with who, what, when, how
it ended. Written by the server interceptor; read by the ListAudit RPC."""
from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.schema import audit_table

REQUEST_CHARS = 300  # a request is stored as text, cut to this many characters


@dataclass(frozen=True)
class AuditEntry:
    at: float
    client: str
    role: str
    method: str
    request: str
    outcome: str
    detail: str


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, client: object, method: str, request: str, outcome: str, detail: str) -> None:
        name, role = str(getattr(client, "name", client)), str(getattr(client, "role", ""))
        with self.engine.begin() as conn:
            conn.execute(sa.insert(audit_table).values(at=time.time(), client=name[:128], role=role[:32], method=method[:200],
                                                      request=request[:REQUEST_CHARS], outcome=outcome, detail=detail[:500]))

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        c = audit_table.c
        q = sa.select(c.at, c.client, c.role, c.method, c.request, c.outcome, c.detail).order_by(c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [AuditEntry(*r) for r in conn.execute(q)]
