"""The catalogue: every item the storefront upserted (the system of record behind the online store's
item features)."""
from __future__ import annotations

import time
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import ItemText
from core.store.schema import chunks, insert_ignore, items_table


class CatalogueStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert(self, items: dict[str, ItemText]) -> None:
        now = time.time()
        rows = [dict(item_id=k, title=v.title, description=v.description, category=v.category, price=v.price, updated_at=now) for k, v in items.items()]
        if not rows:
            return
        stmt = insert_ignore(self.engine, items_table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["item_id"],
            set_={k: getattr(stmt.excluded, k) for k in ("title", "description", "category", "price", "updated_at")},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def items(self) -> dict[str, ItemText]:
        c = items_table.c
        with self.engine.connect() as conn:
            return {r[0]: ItemText(r[1], r[2], r[3], r[4]) for r in conn.execute(sa.select(c.item_id, c.title, c.description, c.category, c.price))}

    def first_ids(self, limit: int, excluding: Iterable[str] = ()) -> list[str]:
        """The first `limit` item ids in id order that are not in `excluding` (one indexed query, not
        the whole catalogue: the shop row's filler is refreshed every few seconds). Reading `limit`
        more rows than `excluding` holds leaves at least `limit` once they are dropped."""
        skip = set(excluding)
        query = sa.select(items_table.c.item_id).order_by(items_table.c.item_id).limit(limit + len(skip))
        with self.engine.connect() as conn:
            return [i for (i,) in conn.execute(query) if i not in skip][:limit]

    def known(self, item_ids: Iterable[str]) -> set[str]:
        ids = list(set(item_ids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(ids, 500):
                found.update(conn.execute(sa.select(items_table.c.item_id).where(items_table.c.item_id.in_(chunk))).scalars())
        return found
