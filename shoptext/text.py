"""How a shopper and a product become model text: the single source of truth for serving and training.

Training/serving skew in how this text is built is the classic bug of text recommenders, so the
scoring service and the fine-tuning worker both call these functions and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from core.domain import EVENT_TYPES, HISTORY_LENGTH, INTEREST_EVENTS, POSITIVE_EVENTS, ItemText, price_band

__all__ = ["EVENT_TYPES", "HISTORY_LENGTH", "INTEREST_EVENTS", "POSITIVE_EVENTS", "ItemText", "HistoryEntry", "item_text", "user_text",
           "history_from_events", "price_band"]
TEXT_HISTORY_ITEMS = 8  # of which the most recent few are spelt out in the model text
USER_TEXT_LENGTH = 96  # tokens of the shopper's text in the two-tower model (recent item titles)
ITEM_TEXT_LENGTH = 32  # tokens of an item's text in the two-tower model (title first)


@dataclass(frozen=True)
class HistoryEntry:
    """One past interest event of a shopper, most recent first in a history."""

    item_id: str
    event_type: str


def item_text(item: ItemText) -> str:
    """Text for a candidate product: title first (it survives truncation), then category, price, description."""
    parts = [item.title.strip()]
    if item.category:
        parts.append(f"category {item.category.strip()}")
    if item.price and item.price > 0:
        parts.append(f"price {price_band(item.price)}")
    if item.description and item.description.strip().lower() != item.title.strip().lower():
        parts.append(item.description.strip())
    return ". ".join(p for p in parts if p)


def user_text(history: Sequence[HistoryEntry], titles: dict[str, str]) -> str:
    """Text for a shopper from their recent interest events (most recent first).

    A shopper with no history gets a fixed phrase, so a ranking still comes from item text alone.
    """
    shown = [h for h in history if h.item_id in titles][:TEXT_HISTORY_ITEMS]
    if not shown:
        return "new shopper with no history"
    bought = [titles[h.item_id] for h in shown if h.event_type == "purchase"]
    viewed = [titles[h.item_id] for h in shown if h.event_type != "purchase"]
    parts = []
    if bought:
        parts.append("bought: " + "; ".join(bought))
    if viewed:
        parts.append("viewed: " + "; ".join(viewed))
    return ". ".join(parts)


def history_from_events(events: Iterable[tuple[str, str, float]], limit: int = HISTORY_LENGTH) -> list[HistoryEntry]:
    """Recent interest history from (item_id, event_type, timestamp) events, most recent first.

    The feedback service uses this to build the online feature; training uses it to build the history a
    shopper had at the time of each labelled event, so both see the same thing.
    """
    interest = [e for e in events if e[1] in INTEREST_EVENTS]
    interest.sort(key=lambda e: e[2], reverse=True)
    return [HistoryEntry(item_id=i, event_type=t) for i, t, _ in interest[:limit]]
