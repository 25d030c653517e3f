"""Domain types shared by services, workers, rankers and tools: events, catalogue items, jobs, lineage,
gate decisions. Plain dataclasses, no torch, no I/O."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

# Events that say something about taste; impressions are exposure, not interest, and stay out of history.
INTEREST_EVENTS = ("click", "add_to_cart", "purchase")
# Events that count as a positive label for the click models.
POSITIVE_EVENTS = INTEREST_EVENTS
EVENT_TYPES = ("impression",) + INTEREST_EVENTS

DAY = 86400.0
# Popularity windows: interest events at or after now - 31 days (and - 8 days). Serving (core.feature_sync)
# and the training lists (rankers.fusion.lists) count with these.
WINDOW_30D = 31 * DAY
WINDOW_7D = 8 * DAY
HISTORY_LENGTH = 20  # a shopper's newest interest events kept in the online store (the model text reads 8)

JOB_STATES = ("PENDING", "RUNNING", "SUCCEEDED", "REJECTED", "FAILED")


@dataclass(frozen=True)
class Event:
    """One behaviour event as the storefront sent it (timestamp in epoch seconds)."""

    event_id: str
    user_id: str
    item_id: str
    event_type: str
    timestamp: float
    request_id: str = ""
    # Arrival number in the event log (0 until stored): training windows follow it, not `timestamp`,
    # so an event that arrives late (or stamped ahead by a drifting clock) is still trained on once.
    seq: int = 0


def price_band(price: float) -> str:
    """A coarse band: exact prices tokenise into noise, bands carry the signal (the model text's and
    the shopper portrait's)."""
    for limit, name in ((2, "very low"), (5, "low"), (15, "medium"), (50, "high")):
        if price < limit:
            return name
    return "very high"


class ItemStatus(IntEnum):
    """Whether an item may be shown. Out-of-stock and deleted items stay in the catalogue and in
    training (their history is real) but are never recommended; a deleted one is not ranked either."""

    AVAILABLE = 0
    OUT_OF_STOCK = 1
    DELETED = 2


@dataclass(frozen=True)
class ItemText:
    """The catalogue fields the models read for a product."""

    title: str
    description: str = ""
    category: str = ""
    price: float = 0.0


@dataclass(frozen=True)
class Example:
    """A labelled (shopper text, item text) pair: what the cross-encoder trains on."""

    user_text: str
    item_text: str
    label: float
    user_key: str = ""  # the (pseudonymous) shopper it came from: forgetting them removes it from replay


@dataclass(frozen=True)
class Job:
    """A fine-tune job as the job store keeps it."""

    job_id: str
    state: str
    progress: float
    message: str
    parent_version: str
    new_version: str
    max_steps: int
    created: float
    updated: float
    owner: str = ""


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate version may serve, why, and the numbers behind it."""

    passed: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason, "metrics": self.metrics}


@dataclass
class Lineage:
    """Where a version comes from: parent, data window, examples, training cost, gate decision."""

    version: str
    parent_version: str
    created: float
    data_from: float
    data_to: float
    example_count: int
    final_loss: float
    job_id: str
    train_seconds: float = 0.0
    # The newest arrival number (core.store.events) the version's data window covers: the next fine-tune
    # trains on what arrived after it. 0 in versions written before arrival numbers existed.
    seq_to: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    # The promotion gate's decision: {"passed": bool, "reason": str, "metrics": {...}}
    gate: dict[str, Any] = field(default_factory=dict)
