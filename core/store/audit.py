"""The audit log: every admin call (and every refused call to an admin RPC) with who (client, role, key
fingerprint, peer address), what, when and how it ended. Written by the server interceptor; read by the
ListAudit RPC.

Rows are chained: each stores SHA-256 over the previous row's hash and its own fields, so editing,
deleting or inserting a row in the middle breaks the chain at that row, and `verify` says where. (Whoever
can rewrite the whole table from the edit onwards can forge a new chain; the chain's newest hash, as
ListAudit shows it, copied elsewhere now and then, catches that too.) Rows from before chaining have an
empty hash and are counted as legacy. On SQLite the log is a file of its own (settings.audit_url), so an
audit write never waits on, or holds, the event log's write lock that ingest needs.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.schema import audit_table, counters_table, insert_ignore

REQUEST_CHARS = 300  # a request summary is stored cut to this many characters
AUDIT_HEAD = "audit_head"  # the counters row every writer updates first: it serialises the chain


@dataclass(frozen=True)
class AuditEntry:
    at: float
    client: str
    role: str
    method: str
    request: str
    outcome: str
    detail: str
    caller: str = ""  # the API key's fingerprint (core.security.fingerprint); "" without a key
    peer: str = ""  # the caller's address as gRPC saw it
    chain: str = ""  # SHA-256 over the previous row's chain and this row's fields; "" on legacy rows


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    chained_rows: int
    legacy_rows: int
    problem: str  # "" when ok; else the first row id where the chain breaks and why
    head: str  # the newest row's chain hash


def row_hash(previous: str, e: AuditEntry) -> str:
    fields = [previous, repr(e.at), e.client, e.role, e.method, e.request, e.outcome, e.detail, e.caller, e.peer]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=True).encode()).hexdigest()


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()  # one writer per process; the counters row serialises processes
        with engine.begin() as conn:
            conn.execute(insert_ignore(engine, counters_table).on_conflict_do_nothing(index_elements=["name"]),
                         {"name": AUDIT_HEAD, "value": 0})

    def record(self, client: object, method: str, request: str, outcome: str, detail: str, caller: str = "",
               peer: str = "") -> None:
        name, role = str(getattr(client, "name", client)), str(getattr(client, "role", ""))
        entry = AuditEntry(time.time(), name[:128], role[:32], method[:200], request[:REQUEST_CHARS], outcome[:32],
                           detail[:500], caller[:64], peer[:100])
        c = audit_table.c
        with self._lock, self.engine.begin() as conn:
            # taking the write lock first (an UPDATE) makes reading the previous hash and inserting atomic
            conn.execute(sa.update(counters_table).where(counters_table.c.name == AUDIT_HEAD)
                         .values(value=counters_table.c.value + 1))
            previous = conn.execute(sa.select(c.chain).order_by(c.id.desc()).limit(1)).scalar() or ""
            values = {k: getattr(entry, k) for k in AuditEntry.__dataclass_fields__}
            values["chain"] = row_hash(previous, entry)
            conn.execute(sa.insert(audit_table).values(**values))

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        c = audit_table.c
        q = (sa.select(c.at, c.client, c.role, c.method, c.request, c.outcome, c.detail, c.caller, c.peer, c.chain)
             .order_by(c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [AuditEntry(**r._mapping) for r in conn.execute(q)]

    def verify(self) -> ChainCheck:
        """Walk every row in order: legacy rows (no hash) may only precede the chain; each chained row's
        hash must follow from the previous row's."""
        c = audit_table.c
        q = sa.select(c.id, c.at, c.client, c.role, c.method, c.request, c.outcome, c.detail, c.caller, c.peer, c.chain).order_by(c.id)
        chained = legacy = 0
        previous = ""
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                entry = AuditEntry(*row[1:])
                if not entry.chain:
                    if chained:
                        return ChainCheck(False, chained, legacy, f"row {row.id} has no hash after the chain began", previous)
                    legacy += 1
                    continue
                if entry.chain != row_hash(previous, entry):
                    return ChainCheck(False, chained, legacy, f"row {row.id} does not match its hash (edited, "
                                      "or a row before it was edited, removed or inserted)", previous)
                previous = entry.chain
                chained += 1
        return ChainCheck(True, chained, legacy, "", previous)


def copy_legacy_rows(source: Engine, target: Engine) -> int:
    """Audit rows an older deployment kept in the event log, copied once into the audit log of their own
    (as legacy rows, ahead of the chain) when that is still empty."""
    if source is target or source.url == target.url or not sa.inspect(source).has_table(audit_table.name):
        return 0
    c = audit_table.c
    with target.connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(audit_table)).scalar():
            return 0
    with source.connect() as conn:
        cols = [col["name"] for col in sa.inspect(source).get_columns(audit_table.name)]
        rows = [dict(r._mapping) for r in conn.execute(sa.select(*[c[n] for n in ("at", "client", "role", "method", "request",
                                                                                "outcome", "detail") if n in cols]).order_by(c.id))]
    if rows:
        with target.begin() as conn:
            conn.execute(sa.insert(audit_table), [{**r, "request": redact_user_ids(r["request"]), "caller": "", "peer": "",
                                                   "chain": ""} for r in rows])
        with source.begin() as conn:  # older ForgetUser rows held raw shopper ids: none stays behind
            conn.execute(sa.delete(audit_table))
    return len(rows)


_USER_ID_TEXT = re.compile(r'(user_id: )"(?:[^"\\]|\\.)*"')


def redact_user_ids(text: str) -> str:
    """A request's text with every `user_id: "..."` replaced (legacy rows stored them word for word)."""
    return _USER_ID_TEXT.sub(r'\1"<redacted>"', text)
