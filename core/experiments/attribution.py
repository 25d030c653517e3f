"""Which served list an event answers: the list its request id names, or else the newest list shown to
the same shopper within a window before the event arrived that held the item.

Every ranking answer for a shopper is recorded as a served list (the scoring service writes it off the
request path: core/served_log.py): request id, shopper key, arm, version, the items in order. A click,
add-to-cart or purchase is attributed to the list and to the item's 1-based position there; events
that match no list stay unattributed. Impressions are not attributed: the served list is the impression.
Attribution runs behind ingest (core/experiments/attributor.py), never inside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from core.domain import INTEREST_EVENTS, Event

WINDOW_S = 30 * 60.0  # an event without a request id follows an impression of its item at most this long before


@dataclass(frozen=True)
class ServedList:
    """One answer as served (or, for a shadow arm, as it would have been)."""

    request_id: str
    user_key: str
    served_at: float  # wall clock of the scoring service
    version: str
    item_ids: tuple[str, ...]
    experiment_id: str = ""
    arm: str = ""
    shadow: bool = False
    rpc: str = "Recommend"

    def position(self, item_id: str) -> int:
        """1-based position of the item, 0 when absent."""
        try:
            return self.item_ids.index(item_id) + 1
        except ValueError:
            return 0


@dataclass(frozen=True)
class Attribution:
    event_id: str
    request_id: str
    experiment_id: str
    arm: str
    version: str
    position: int
    item_id: str
    event_type: str
    method: str  # "request" (the event named it) or "window" (the newest earlier list with the item)
    user_key: str
    received_at: float
    value: float = 0.0  # the item's price for a purchase


def attribute(event: Event, received_at: float, named: ServedList | None, earlier: Sequence[ServedList],
              window_s: float = WINDOW_S, price: float = 0.0) -> Attribution | None:
    """The attribution of one event: `named` is the shown list of its request id (if any), `earlier`
    the shopper's shown lists served before the event arrived (any order)."""
    if event.event_type not in INTEREST_EVENTS:
        return None
    served, method = None, "request"
    if named is not None and named.user_key == event.user_id and named.position(event.item_id):
        served = named
    else:
        method = "window"
        inside = [s for s in earlier if received_at - window_s <= s.served_at <= received_at and s.position(event.item_id)]
        served = max(inside, key=lambda s: (s.served_at, s.request_id), default=None)
    if served is None:
        return None
    return Attribution(event.event_id, served.request_id, served.experiment_id, served.arm, served.version,
                       served.position(event.item_id), event.item_id, event.event_type, method, event.user_id, received_at,
                       price if event.event_type == "purchase" else 0.0)


def attribute_all(events: Iterable[tuple[Event, float]], by_request: dict[str, ServedList],
                  by_user: dict[str, list[ServedList]], prices: dict[str, float], window_s: float = WINDOW_S) -> list[Attribution]:
    """Attributions of (event, received_at) pairs, given the shown lists their request ids name and
    each shopper's recent shown lists."""
    out = []
    for event, received_at in events:
        found = attribute(event, received_at, by_request.get(event.request_id) if event.request_id else None,
                          by_user.get(event.user_id, ()), window_s, prices.get(event.item_id, 0.0))
        if found is not None:
            out.append(found)
    return out
