"""The catalogue: every item the storefront upserted (the system of record behind the online store's
item features)."""
from __future__ import annotations

import time
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import ItemStatus, ItemText
from core.store.schema import chunks, insert_ignore, items_table


class CatalogueStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert(self, items: dict[str, ItemText], out_of_stock: Iterable[str] = ()) -> None:
        """Insert or replace items; each becomes available unless in `out_of_stock` (an upsert also
        restores a deleted item)."""
        now = time.time()
        unavailable = set(out_of_stock)
        rows = [dict(item_id=k, title=v.title, description=v.description, category=v.category, price=v.price, updated_at=now,
                     status=int(ItemStatus.OUT_OF_STOCK if k in unavailable else ItemStatus.AVAILABLE)) for k, v in items.items()]
        if not rows:
            return
        stmt = insert_ignore(self.engine, items_table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["item_id"],
            set_={k: getattr(stmt.excluded, k) for k in ("title", "description", "category", "price", "updated_at", "status")},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def items(self) -> dict[str, ItemText]:
        c = items_table.c
        with self.engine.connect() as conn:
            return {r[0]: ItemText(r[1], r[2], r[3], r[4]) for r in conn.execute(sa.select(c.item_id, c.title, c.description, c.category, c.price))}

    def delete(self, item_ids: Iterable[str]) -> dict[str, ItemText]:
        """Mark items deleted (the rows stay: their events are history); returns the ones that exist."""
        ids = list(dict.fromkeys(item_ids))
        c = items_table.c
        found: dict[str, ItemText] = {}
        with self.engine.begin() as conn:
            for chunk in chunks(ids, 500):
                rows = conn.execute(sa.select(c.item_id, c.title, c.description, c.category, c.price).where(c.item_id.in_(chunk)))
                found.update({r[0]: ItemText(r[1], r[2], r[3], r[4]) for r in rows})
                conn.execute(items_table.update().where(c.item_id.in_(chunk)).values(status=int(ItemStatus.DELETED), updated_at=time.time()))
        return found

    def statuses(self) -> dict[str, ItemStatus]:
        """Every item that is not available, with its status (few: the refresh reads it)."""
        c = items_table.c
        with self.engine.connect() as conn:
            return {i: ItemStatus(s) for i, s in conn.execute(sa.select(c.item_id, c.status).where(c.status != int(ItemStatus.AVAILABLE)))}

    def first_ids(self, limit: int, excluding: Iterable[str] = ()) -> list[str]:
        """The first `limit` available item ids in id order that are not in `excluding` (one indexed
        query, not the whole catalogue: the shop row's filler is refreshed every few seconds). Reading
        `limit` more rows than `excluding` holds leaves at least `limit` once they are dropped."""
        skip = set(excluding)
        query = (sa.select(items_table.c.item_id).where(items_table.c.status == int(ItemStatus.AVAILABLE))
                 .order_by(items_table.c.item_id).limit(limit + len(skip)))
        with self.engine.connect() as conn:
            return [i for (i,) in conn.execute(query) if i not in skip][:limit]

    def known(self, item_ids: Iterable[str]) -> set[str]:
        ids = list(set(item_ids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(ids, 500):
                found.update(conn.execute(sa.select(items_table.c.item_id).where(items_table.c.item_id.in_(chunk))).scalars())
        return found

    def prices(self, item_ids: Iterable[str]) -> dict[str, float]:
        """The price of each known item of `item_ids`."""
        out: dict[str, float] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(set(item_ids)), 500):
                out.update({i: float(p) for i, p in conn.execute(sa.select(items_table.c.item_id, items_table.c.price)
                                                                 .where(items_table.c.item_id.in_(chunk)))})
        return out
