"""The replay reservoir: a bounded, persisted sample of past training examples that later fine-tunes
replay against forgetting (the cross-encoder's; the fusion ranker replays baskets from the log)."""
from __future__ import annotations

import random
import time
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import Example
from core.store.schema import counters_table, replay_table


class ReplayBuffer:
    """Reservoir sampling (Algorithm R) over every example ever added: each has the same chance of
    being in the buffer, whatever its age, and the buffer never exceeds `capacity`."""

    def __init__(self, engine: Engine, capacity: int) -> None:
        self.engine = engine
        self.capacity = capacity

    def add(self, examples: Iterable[Example], seed: int = 0) -> None:
        rng = random.Random(seed)
        now = time.time()
        with self.engine.begin() as conn:
            seen = conn.execute(sa.select(counters_table.c.value).where(counters_table.c.name == "replay_seen")).scalar()
            fresh_counter = seen is None
            seen = seen or 0
            for e in examples:
                seen += 1
                slot = seen - 1 if seen <= self.capacity else rng.randrange(seen)
                if slot < self.capacity:
                    row = dict(user_text=e.user_text, item_text=e.item_text, label=e.label, added_at=now, user_key=e.user_key)
                    updated = conn.execute(sa.update(replay_table).where(replay_table.c.slot == slot).values(**row)).rowcount
                    if not updated:
                        conn.execute(sa.insert(replay_table).values(slot=slot, **row))
            if fresh_counter:
                conn.execute(sa.insert(counters_table).values(name="replay_seen", value=seen))
            else:
                conn.execute(sa.update(counters_table).where(counters_table.c.name == "replay_seen").values(value=seen))

    def sample(self, n: int, seed: int = 0) -> list[Example]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(replay_table.c.user_text, replay_table.c.item_text, replay_table.c.label).order_by(replay_table.c.slot)).all()
        rows = random.Random(seed).sample(rows, min(n, len(rows)))
        return [Example(u, i, float(y)) for u, i, y in rows]

    def delete_user(self, user_key: str) -> int:
        """Remove the shopper's examples (their slots are refilled by later examples)."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(replay_table).where(replay_table.c.user_key == user_key)).rowcount)

    def count_user(self, user_key: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(replay_table.c.user_key == user_key)).scalar_one())

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(replay_table)).scalar_one())
