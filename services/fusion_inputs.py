"""What the fusion click model reads for one shopper at request time, from the event log: the
shopper's interest history (repeat signals), item popularity over 30 and 7 days, co-purchase
neighbours of their recent items; plus retrieval for Recommend. The signal definitions themselves
live in clickmodel.signals / clickmodel.co_purchase, shared with training.

Time is the log's clock (its newest event), so a replayed shop and a live one read the same way.
"""
from __future__ import annotations

import threading
import time
from typing import Sequence

import numpy as np

from clickmodel.co_purchase import RECENT_ITEMS, co_purchase_scores
from clickmodel.fusion import ITEM_TEXT_LENGTH, USER_TEXT_LENGTH, encode_texts
from clickmodel.signals import DAY, Purchase, candidate_signals, merge_candidates
from services.eventlog import EventLog

POPULARITY_CACHE_S = 30.0
RETRIEVE_SIZE = 100


class FusionInputs:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._popularity: tuple[float, float, dict[str, int], dict[str, int], list[str]] = (0.0, 0.0, {}, {}, [])

    def popularity(self) -> tuple[float, dict[str, int], dict[str, int], list[str]]:
        """(now, 30-day counts, 7-day counts, items by 30-day count), refreshed every 30 s."""
        with self._lock:
            stamp, now, pop30, pop7, ranked = self._popularity
            if time.monotonic() - stamp > POPULARITY_CACHE_S:
                now = self.log.newest_time() or time.time()
                pop30 = self.log.item_counts(now - 31 * DAY)
                pop7 = self.log.item_counts(now - 8 * DAY)
                ranked = sorted(pop30, key=lambda i: (-pop30[i], i))
                self._popularity = (time.monotonic(), now, pop30, pop7, ranked)
            return now, pop30, pop7, ranked

    def history(self, user_id: str) -> list[tuple[str, float]]:
        return self.log.interest_history(user_id)

    def signals(self, history: list[tuple[str, float]], candidates: Sequence[str]) -> np.ndarray:
        now, pop30, pop7, _ = self.popularity()
        now = max(now, history[0][1] if history else now)
        purchases = [Purchase(item, ts, ts) for item, ts in history]  # no basket ids: one basket per timestamp
        recent = [item for item, _ in history[:RECENT_ITEMS]]
        co = co_purchase_scores(recent, self.log.co_purchase_neighbours(recent))
        return candidate_signals(purchases, now, candidates, pop30, pop7, co)

    def retrieve(self, user_id: str, size: int = RETRIEVE_SIZE, history: list[tuple[str, float]] | None = None) -> list[str]:
        """The shopper's items (most bought first), co-purchase neighbours and popular items."""
        history = self.history(user_id) if history is None else history
        counts: dict[str, int] = {}
        for item, _ in history:
            counts[item] = counts.get(item, 0) + 1
        own = sorted(counts, key=lambda i: -counts[i])
        recent = [item for item, _ in history[:RECENT_ITEMS]]
        co = co_purchase_scores(recent, self.log.co_purchase_neighbours(recent))
        _, _, _, popular = self.popularity()
        return merge_candidates(own, [i for i, _ in co.most_common(size)], popular[:size], size)


def model_inputs(user_text: str, item_texts: Sequence[str], signals: np.ndarray) -> dict[str, np.ndarray]:
    """The fusion_click request: shopper text tokens, candidate text tokens, signals."""
    user = encode_texts([user_text], USER_TEXT_LENGTH)
    items = encode_texts(list(item_texts), ITEM_TEXT_LENGTH)
    return {"user_input_ids": user["input_ids"], "user_attention_mask": user["attention_mask"],
            "item_input_ids": items["input_ids"], "item_attention_mask": items["attention_mask"],
            "signals": signals.astype(np.float32)}
