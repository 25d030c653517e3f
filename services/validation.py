"""Validation of incoming events, items and ranking requests: pure functions, unit-tested."""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from core.domain import EVENT_TYPES, Event, ItemText
from core.errors import InvalidArgument
from core.ids import MAX_ID_LENGTH, check_id, shown
from core.rules import Rules
from shoprank_client.enums import event_type_of

MAX_TEXT_LENGTH = 2000
FUTURE_TOLERANCE_S = 300.0  # storefront clocks drift; more than this ahead is a bad timestamp
EARLIEST_TS = 946684800.0  # 2000-01-01: anything older is a unit or clock error
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # terminal escapes and other control characters


@dataclass(frozen=True)
class Rejected:
    index: int
    id: str
    reason: str


def validate_events(
    raw: Sequence, known_items: Iterable[str], now: float | None = None
) -> tuple[list[Event], list[Rejected]]:
    """Split a batch of proto Events into valid events and per-event rejections (in order)."""
    now = time.time() if now is None else now
    known = set(known_items)
    good: list[Event] = []
    bad: list[Rejected] = []
    for index, e in enumerate(raw):
        reason = (
            check_id(e.event_id, "event_id")
            or check_id(e.user_id, "user_id")
            or check_id(e.item_id, "item_id")
            or _check_type(e.event_type, event_type_of(e.event_type))
            or _check_time(e, now)
            or (check_id(e.request_id, "request_id") if e.request_id else None)
            or (None if e.item_id in known else f"unknown item_id {shown(e.item_id)} (upsert it first)")
        )
        if reason:
            bad.append(Rejected(index, e.event_id[:MAX_ID_LENGTH], reason))
            continue
        ts = e.timestamp.seconds + e.timestamp.nanos / 1e9
        good.append(Event(e.event_id, e.user_id, e.item_id, event_type_of(e.event_type) or "", ts, e.request_id))
    return good, bad


def _check_type(value: int, event_type: str | None) -> str | None:
    if event_type not in EVENT_TYPES:
        names = ", ".join(f"EVENT_TYPE_{t.upper()}" for t in EVENT_TYPES)
        return f"event_type {value} is not one of {names}" if value else f"missing event_type (one of {names})"
    return None


def _check_time(e, now: float) -> str | None:
    if not e.HasField("timestamp"):
        return "missing timestamp"
    if not 0 <= e.timestamp.nanos < 1_000_000_000:
        return f"malformed timestamp (nanos {e.timestamp.nanos} outside 0..999999999)"
    ts = e.timestamp.seconds + e.timestamp.nanos / 1e9
    if ts < EARLIEST_TS:
        return f"timestamp {e.timestamp.seconds} is before 2000-01-01 (seconds since the epoch expected)"
    if ts > now + FUTURE_TOLERANCE_S:
        return f"timestamp is {ts - now:.0f}s in the future"
    return None


def validate_items(raw: Sequence) -> tuple[dict[str, ItemText], list[Rejected]]:
    good: dict[str, ItemText] = {}
    bad: list[Rejected] = []
    for index, it in enumerate(raw):
        reason = check_id(it.item_id, "item_id")
        if not reason and not it.title.strip():
            reason = "missing title"
        elif not reason and any(len(t) > MAX_TEXT_LENGTH for t in (it.title, it.description, it.category)):
            reason = f"text field longer than {MAX_TEXT_LENGTH} characters"
        elif not reason and any(_CONTROL.search(t) for t in (it.title, it.description, it.category)):
            reason = "text field contains control characters (terminal escapes are not stored)"
        elif not reason and (math.isnan(it.price) or math.isinf(it.price) or it.price < 0):
            reason = f"price {it.price} is not a non-negative number"
        if reason:
            bad.append(Rejected(index, it.item_id[:MAX_ID_LENGTH], reason))
            continue
        good[it.item_id] = ItemText(it.title.strip(), it.description.strip(), it.category.strip(), float(it.price))
    return good, bad


def validate_rank_request(user_id: str, item_ids: Sequence[str], max_candidates: int) -> list[str]:
    """Raise InvalidArgument for a bad Rank request; returns the candidate ids."""
    if reason := check_id(user_id, "user_id"):
        raise InvalidArgument(reason)
    if not item_ids:
        raise InvalidArgument("item_ids is empty: send 1 to %d candidates" % max_candidates)
    if len(item_ids) > max_candidates:
        raise InvalidArgument(f"{len(item_ids)} candidates; at most {max_candidates} per request")
    for i in item_ids:
        if reason := check_id(i, "item_id"):
            raise InvalidArgument(reason)
    if len(set(item_ids)) != len(item_ids):
        dup = sorted({i for i in item_ids if item_ids.count(i) > 1})
        raise InvalidArgument(f"duplicate candidates: {', '.join(shown(d) for d in dup[:5])}")
    return list(item_ids)


MAX_RULE_IDS = 1000  # ids or categories in one rules list
MAX_SEEN_DAYS = 3650


def validate_rules(rules, k: int) -> Rules:
    """A RecommendRules message as core.rules.Rules; InvalidArgument names the first bad field."""
    for name in ("exclude_item_ids", "include_categories", "exclude_categories", "boosted_item_ids"):
        if len(getattr(rules, name)) > MAX_RULE_IDS:
            raise InvalidArgument(f"rules.{name} has {len(getattr(rules, name))} entries; at most {MAX_RULE_IDS}")
    for name in ("exclude_item_ids", "boosted_item_ids"):
        for value in getattr(rules, name):
            if reason := check_id(value, "item_id"):
                raise InvalidArgument(f"rules.{name}: {reason}")
    for name in ("include_categories", "exclude_categories"):
        for value in getattr(rules, name):
            if len(value) > MAX_TEXT_LENGTH or _CONTROL.search(value):
                raise InvalidArgument(f"rules.{name}: {shown(value)} is not a category")
    if not 0 <= rules.exclude_seen_days <= MAX_SEEN_DAYS:
        raise InvalidArgument(f"rules.exclude_seen_days {rules.exclude_seen_days} outside 0..{MAX_SEEN_DAYS}")
    if math.isnan(rules.boost_share) or not 0.0 <= rules.boost_share <= 1.0:
        raise InvalidArgument(f"rules.boost_share {rules.boost_share} outside 0..1")
    if rules.boost_share and not rules.boosted_item_ids:
        raise InvalidArgument("rules.boost_share is set but rules.boosted_item_ids is empty")
    if rules.max_per_category < 0:
        raise InvalidArgument(f"rules.max_per_category {rules.max_per_category} is negative (0 turns it off)")
    if len(rules.pins) > k:  # each pin takes a distinct position 1..k: more cannot be valid, refuse before checking
        raise InvalidArgument(f"rules.pins has {len(rules.pins)} pins; at most k ({k})")
    pins: list[tuple[str, int]] = []
    for pin in rules.pins:
        if reason := check_id(pin.item_id, "item_id"):
            raise InvalidArgument(f"rules.pins: {reason}")
        if not 1 <= pin.position <= k:
            raise InvalidArgument(f"rules.pins: position {pin.position} of {shown(pin.item_id)} outside 1..k ({k})")
        pins.append((pin.item_id, pin.position))
    if len({i for i, _ in pins}) < len(pins) or len({p for _, p in pins}) < len(pins):
        raise InvalidArgument("rules.pins: an item or a position is pinned twice")
    excluded = set(rules.exclude_item_ids)
    if clash := [i for i, _ in pins if i in excluded]:
        raise InvalidArgument(f"rules.pins: {shown(clash[0])} is both pinned and excluded")
    return Rules(
        exclude_purchased=rules.exclude_purchased, exclude_seen_days=rules.exclude_seen_days,
        exclude_item_ids=frozenset(excluded), include_categories=frozenset(rules.include_categories),
        exclude_categories=frozenset(rules.exclude_categories), boosted=tuple(dict.fromkeys(rules.boosted_item_ids)),
        boost_share=float(rules.boost_share), pins=tuple(pins), max_per_category=rules.max_per_category,
        distinct_titles=rules.distinct_titles,
    )
