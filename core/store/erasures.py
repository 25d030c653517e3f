"""Erasure receipts: one per forgotten shopper (by pseudonym), saying what was removed from which store,
when, by whom, and which published versions had been trained on their data."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.schema import erasures_table


@dataclass(frozen=True)
class ErasureReceipt:
    receipt_id: str
    user_key: str
    requested_by: str
    at: float
    removed: dict[str, int]
    trained_versions: list[str]


class ErasureStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, user_key: str, requested_by: str, removed: dict[str, int], trained_versions: list[str]) -> ErasureReceipt:
        receipt = ErasureReceipt(f"er-{uuid.uuid4().hex[:16]}", user_key, requested_by, time.time(), removed, trained_versions)
        with self.engine.begin() as conn:
            conn.execute(sa.insert(erasures_table).values(receipt_id=receipt.receipt_id, user_key=user_key, requested_by=requested_by,
                                                          at=receipt.at, removed=removed, trained_versions=trained_versions))
        return receipt

    def of_user(self, user_key: str) -> list[ErasureReceipt]:
        c = erasures_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.receipt_id, c.user_key, c.requested_by, c.at, c.removed, c.trained_versions)
                                .where(c.user_key == user_key).order_by(c.at)).all()
        return [ErasureReceipt(*r) for r in rows]
