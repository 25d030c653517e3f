"""Erasure receipts: one per forgotten shopper (by pseudonym), saying what was removed from which store,
when, by whom, which published versions had been trained on their data and which fine-tunes were running.

A receipt is first written as a tombstone, before anything is deleted, and every writer that could put
the shopper back checks it: the event log and the served-list log drop rows of a tombstoned shopper that
describe what happened before the erasure (inside their transaction, after taking the lock the tombstone
is written under, so a write either lands before the tombstone, and the erasure's deletes remove it, or
sees it); the feature refresh and the segments run, which write to the online store from what they read
earlier, look again after writing and erase what they wrote back (`erased_since`). What a shopper does
after their erasure is new history and is kept.
"""
from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.schema import EVENT_SEQ, chunks, counters_table, erasures_table

ERASURE_LOCK = "erasure_lock"  # counters row: tombstones and served-list writes take it (see above)


@dataclass(frozen=True)
class ErasureReceipt:
    receipt_id: str
    user_key: str
    requested_by: str
    at: float
    removed: dict[str, int]
    trained_versions: list[str]
    running_jobs: list[str] = dataclasses.field(default_factory=list)  # fine-tunes running at the erasure


def take_lock(conn: sa.Connection, *names: str) -> None:
    """Serialise with other writers of these counters rows (a no-op UPDATE holds the row's lock)."""
    c = counters_table.c
    for name in names:
        conn.execute(sa.update(counters_table).where(c.name == name).values(value=c.value))


def erased_at(conn: sa.Connection, user_keys: Iterable[str]) -> dict[str, float]:
    """user key -> when their newest erasure began, for the keys that were ever erased."""
    c = erasures_table.c
    out: dict[str, float] = {}
    for chunk in chunks(sorted(set(user_keys)), 500):
        for key, at in conn.execute(sa.select(c.user_key, sa.func.max(c.at)).where(c.user_key.in_(chunk)).group_by(c.user_key)):
            out[key] = float(at)
    return out


class ErasureStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def tombstone(self, user_key: str, requested_by: str) -> ErasureReceipt:
        """The receipt, written before anything is deleted: from its commit on, writers drop the shopper."""
        receipt = ErasureReceipt(f"er-{uuid.uuid4().hex[:16]}", user_key, requested_by, time.time(), {}, [])
        with self.engine.begin() as conn:
            take_lock(conn, EVENT_SEQ, ERASURE_LOCK)
            conn.execute(sa.insert(erasures_table).values(receipt_id=receipt.receipt_id, user_key=user_key, requested_by=requested_by,
                                                          at=receipt.at, removed={}, trained_versions=[], running_jobs=[]))
        return receipt

    def complete(self, receipt: ErasureReceipt, removed: dict[str, int], trained_versions: list[str],
                 running_jobs: list[str]) -> ErasureReceipt:
        done = dataclasses.replace(receipt, removed=removed, trained_versions=trained_versions, running_jobs=running_jobs)
        with self.engine.begin() as conn:
            conn.execute(sa.update(erasures_table).where(erasures_table.c.receipt_id == receipt.receipt_id)
                         .values(removed=removed, trained_versions=trained_versions, running_jobs=running_jobs))
        return done

    def erased_at_map(self, user_keys: Iterable[str]) -> dict[str, float]:
        """user key -> when their newest erasure began, for the keys ever erased."""
        with self.engine.connect() as conn:
            return erased_at(conn, user_keys)

    def erased_since(self, user_keys: Iterable[str], since: float) -> set[str]:
        """The keys among `user_keys` whose erasure began at or after `since`."""
        with self.engine.connect() as conn:
            return {k for k, at in erased_at(conn, user_keys).items() if at >= since}

    def of_user(self, user_key: str) -> list[ErasureReceipt]:
        c = erasures_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.receipt_id, c.user_key, c.requested_by, c.at, c.removed, c.trained_versions, c.running_jobs)
                                .where(c.user_key == user_key).order_by(c.at)).all()
        return [ErasureReceipt(*r) for r in rows]
