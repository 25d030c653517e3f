"""Attribution behind ingest: a thread of the feedback process that, every second, attributes the
interest events that arrived since its watermark (core/experiments/attribution.py) and, every
`check_s`, takes one look at a running canary (core/experiments/control.py).

Events are looked at once they are `grace_s` old, so the served list their request id names (written
by the scoring service a moment after it answered) has arrived; if it still has not (a loaded
database), attribution stops at that event and tries again next round, for up to `wait_s`, before
falling back to the impression window. Results and the watermark move in one
transaction, by event id, so several feedback replicas or a restart never attribute an event twice.
"""
from __future__ import annotations

import logging
import threading
import time

from core import background
from core.experiments.attribution import WINDOW_S, attribute_all
from core.experiments.control import ExperimentControl
from core.store import EventLog

logger = logging.getLogger(__name__)


class Attributor:
    def __init__(self, log: EventLog, control: ExperimentControl | None = None, grace_s: float = 2.0,
                 window_s: float = WINDOW_S, interval_s: float = 1.0, check_s: float = 10.0, wait_s: float = 30.0) -> None:
        self.log = log
        self.control = control
        self.grace_s = grace_s
        self.window_s = window_s
        self.interval_s = interval_s
        self.check_s = check_s
        self.wait_s = wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.attributed = 0

    def run_once(self, now: float | None = None) -> int:
        """Attribute what is due; returns how many events were attributed."""
        now = time.time() if now is None else now
        received_before = now - self.grace_s
        total = 0
        while True:
            events, mark, watermark = self.log.attributions.pending(received_before)
            if watermark == mark:
                return total
            by_request = self.log.served.by_request(e.request_id for e, _ in events if e.request_id)
            late = next((k for k, (e, received) in enumerate(events)
                         if e.request_id and e.request_id not in by_request and received > now - self.wait_s), None)
            if late is not None:  # its served list may still be on its way: stop before it, retry next round
                events, watermark = events[:late], events[late][0].seq - 1
                if watermark <= mark and not events:
                    return total
            found = []
            if events:  # (a round of impressions alone only moves the watermark)
                oldest = min(received for _, received in events) - self.window_s
                wanted: dict[str, set[str]] = {}
                for e, _ in events:
                    wanted.setdefault(e.user_id, set()).add(e.item_id)
                by_user = self.log.served.of_users(wanted, oldest)
                prices = self.log.catalogue.prices(e.item_id for e, _ in events if e.event_type == "purchase")
                found = attribute_all(events, by_request, by_user, prices, self.window_s)
            self.log.attributions.record(found, watermark)
            total += len(found)
            self.attributed += len(found)
            if late is not None:
                return total

    def check_canaries(self) -> None:
        if self.control is None:
            return
        for experiment in self.log.experiments.running():
            if experiment.canary:
                self.control.check_canary(experiment)

    def _loop(self) -> None:
        last_check = time.monotonic()
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
                if time.monotonic() - last_check >= self.check_s:
                    last_check = time.monotonic()
                    self.check_canaries()
            except Exception:  # noqa: BLE001 - a database hiccup: the next round retries from the watermark
                logger.exception("attribution round failed")

    def start(self) -> "Attributor":
        self._thread = background.thread(self._loop, "attributor")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
