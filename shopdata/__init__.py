"""Shop data for the demo, tests and benchmarks: a catalogue plus a time-ordered event stream."""
from __future__ import annotations

from dataclasses import dataclass

from core.domain import Event
from shoptext.text import ItemText


@dataclass
class Shop:
    name: str
    items: dict[str, ItemText]
    events: list[Event]  # sorted by time

    def split(self, fraction: float) -> tuple[list[Event], list[Event]]:
        """Events before and after the time at `fraction` of the stream (no event is in both)."""
        if not self.events:
            return [], []
        cut = self.events[int(len(self.events) * fraction)].timestamp
        return [e for e in self.events if e.timestamp < cut], [e for e in self.events if e.timestamp >= cut]
