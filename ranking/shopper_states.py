"""The shopper-state writer: shoppers' vectors computed when their events arrive, not per request.

The feedback service's feature refresh (core.feature_sync) hands every shopper whose history it just
pushed to `ShopperStateWriter.submit`; a background thread drains what is pending (a shopper submitted
twice is encoded once, from their newest history), encodes up to `chunk` shoppers per Triton request
for every version that serves (the primary one and every running experiment arm that is ready), and
pushes one row per shopper, keyed by version inside it, to the online store. Rank reads that row with
the shopper's other features and sends only the fusion step to Triton (rankers.fusion).

What a shopper's next Rank sees while their state is being written: their history is already in the
online store when RecordEvents answers (unless the answer said features_pending: core.feature_refresher),
the state a moment later; until then the stored state's
fingerprint no longer matches the history, so Rank computes the vector inline in its one Triton
request (the answer says `inline`), never an outdated one. A newly published version serves the same
way until the writer, which notices the new version in Triton's serving plan, has backfilled the
active shoppers (`backfill`, with progress in the log). At its first look a writer cannot tell a restart
(states stored) from a fresh deployment's first version (none): `on_first_look` lets the service check.

Nothing here is kept across restarts: pending shoppers lost at a stop are computed inline by their
next Rank, and their next event stores them again.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from core import background
from core.features import OnlineFeatures, StateRow, UserFeatures
from core.triton_client import InferenceUnavailable, TritonClickClient
from rankers.base import Ranker
from shoptext.text import item_text

logger = logging.getLogger(__name__)

# An item's model text from its catalogue fields (a pure function of them): the same popular items sit in
# many histories, and building the text was a sixth of the writer's time under the shop-like load.
cached_item_text = functools.lru_cache(maxsize=65536)(item_text)

CHUNK = 256  # shoppers per Triton request
MAX_PENDING = 200_000  # shoppers waiting; beyond this the oldest are dropped (their Rank computes inline)
RETRY_S = 2.0  # after Triton could not answer
PLAN_CHECK_S = 5.0  # while idle, how often the writer looks for a newly serving version
FAILURE_LOG_S = 60.0  # a Triton that stays down is reported once a minute, not on every retry


@dataclass
class WriterStats:
    """What the writer has done since it started (the load benchmark reads these)."""

    shoppers: int = 0  # shopper states written (each for every serving version)
    requests: int = 0  # Triton state requests
    seconds: float = 0.0  # wall time spent encoding and pushing
    failures: int = 0
    dropped: int = 0


class ShopperStateWriter:
    """Changed shoppers in, stored states out (see the module docstring). `serving_versions()` names the
    versions to encode for (default: Triton's plan); `erased_since(ids, t)` names those of `ids` erased
    at or after `t` (their rows are deleted again after a push that raced with ForgetUser)."""

    def __init__(self, ranker: Ranker, features: Any, triton: TritonClickClient,
                 erased_since: Callable[[Sequence[str], float], Iterable[str]] = lambda ids, t: (),
                 serving_versions: Callable[[], list[str]] | None = None, chunk: int = CHUNK) -> None:
        if ranker.state_encoder is None:
            raise ValueError(f"the {ranker.name} ranker keeps no shopper state")
        self.ranker = ranker
        self.encoder = ranker.state_encoder
        self.features = features  # pushes and forget_user (FeatureClient); item texts through a cache in front of it
        self.items: OnlineFeatures = features
        self.triton = triton
        self.erased_since = erased_since
        self.serving_versions = serving_versions or self._planned_versions
        self.chunk = chunk
        self.stats = WriterStats()
        self._pending: dict[str, UserFeatures] = {}  # user -> their newest pushed row, oldest submission first
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopped = threading.Event()
        self._known_versions: set[str] = set()
        self._failing_since = 0.0  # monotonic time of the first failure in a row (0: none)
        self._last_failure_log = float("-inf")
        self.on_new_versions: Callable[[list[str]], None] = lambda versions: None
        # the versions serving at this writer's first look (a fresh deployment's version 1, or a restart)
        self.on_first_look: Callable[[list[str]], None] = lambda versions: None
        self._thread: threading.Thread | None = None

    # --- the feedback path's side -----------------------------------------------------------------
    def submit(self, rows: dict[str, UserFeatures]) -> None:
        """Shoppers whose history was just pushed (their newest history wins over any pending one)."""
        if not rows:
            return
        with self._lock:
            for user_id, row in rows.items():
                self._pending.pop(user_id, None)
                self._pending[user_id] = row
            while len(self._pending) > MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
                self.stats.dropped += 1
            self._idle.clear()
        self._wake.set()

    def start(self) -> "ShopperStateWriter":
        self._thread = background.thread(self._run, "shopper-states")
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_idle(self, timeout_s: float) -> bool:
        """Whether everything submitted so far was written (or given up) within `timeout_s`."""
        return self._idle.wait(timeout_s)

    # --- the consumer ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self._wake.wait(PLAN_CHECK_S):
                self.check_versions()  # a version can start serving while no event arrives
                continue
            self._wake.clear()
            while not self._stopped.is_set() and self.run_once() and not self._stopped.is_set():
                pass

    def check_versions(self) -> None:
        """Look at what serves now (a new version or experiment arm starts its backfill)."""
        try:
            self._notice(self.serving_versions())
        except InferenceUnavailable:
            pass  # nothing serves, or Triton is away: the next event or check retries

    def run_once(self) -> bool:
        """Encode and push everything pending now; False when nothing was pending or it failed (Triton
        could not answer, or anything else: the shoppers are put back and retried after RETRY_S)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            self._idle.set()
            return False
        try:
            versions = self.serving_versions()
            self._notice(versions)
            users = list(pending)
            for start in range(0, len(users), self.chunk):
                chunk = users[start : start + self.chunk]
                self.write({u: pending[u].interests for u in chunk}, versions, {u: pending[u].as_of for u in chunk})
        except Exception as exc:  # noqa: BLE001 - the writer must outlive any one failure (Triton away, Feast busy)
            self.stats.failures += 1
            now = time.monotonic()
            self._failing_since = self._failing_since or now
            if now - self._last_failure_log >= FAILURE_LOG_S:
                self._last_failure_log = now
                logger.warning("shopper states not written for %.0fs (%d shoppers wait; their Rank computes inline): %s",
                               now - self._failing_since, len(pending), exc, exc_info=not isinstance(exc, InferenceUnavailable))
            with self._lock:  # newer submissions win over the ones put back
                self._pending = {**pending, **self._pending}
            self._stopped.wait(RETRY_S)
            self._wake.set()
            return False
        if self._failing_since:
            logger.info("shopper states written again after %.0fs", time.monotonic() - self._failing_since)
            self._failing_since, self._last_failure_log = 0.0, float("-inf")
        with self._lock:
            if not self._pending:
                self._idle.set()
        return True

    def write(self, interests: dict[str, list[tuple[str, float]]], versions: Sequence[str],
              as_of: Mapping[str, float] | None = None) -> None:
        """Encode these shoppers for each of `versions` (one Triton request per version) and push them.
        `as_of`: when each shopper's row was read from the log (UserFeatures.as_of; default: now): a
        state computed from an older row than the stored state's does not replace it."""
        started_wall, started = time.time(), time.perf_counter()
        needed = list(dict.fromkeys(i for history in interests.values() for i in self.encoder.needed_items(history)))
        items = self.items.get_items(needed)
        users = list(interests)
        histories = [self.encoder.history(interests[u], items) for u in users]
        shown = dict.fromkeys(i for h in histories for i in h.items)  # each item once: histories share items
        inputs = self.encoder.inputs(histories, {i: cached_item_text(items[i].text) for i in shown})
        vectors = {v: self.triton.shopper_vectors(inputs, v) for v in versions}
        rows = {u: StateRow(self.encoder.fingerprint(interests[u]), {self.ranker.version_key(v): vectors[v][k] for v in versions},
                            (as_of or {}).get(u, started_wall)) for k, u in enumerate(users)}
        self.features.push_shopper_states(rows)
        for user_id in self.erased_since(users, started_wall):  # ForgetUser ran meanwhile: it wins
            self.features.forget_user(user_id)
        self.stats.shoppers += len(users)
        self.stats.requests += len(versions)
        self.stats.seconds += time.perf_counter() - started

    def _planned_versions(self) -> list[str]:
        plan = self.triton.serving_plan()
        arms = [a.version for a in plan.experiment.arms if a.version in plan.ready] if plan.experiment else []
        return list(dict.fromkeys([plan.primary] + arms))

    def _notice(self, versions: Sequence[str]) -> None:
        new = [v for v in versions if v not in self._known_versions]
        if new and self._known_versions:
            logger.info("versions %s now serve: backfilling the active shoppers' states", new)
            self.on_new_versions(new)
        elif new:  # the first look: a restart finds its states stored, a fresh deployment does not (on_first_look tells)
            self.on_first_look(new)
        self._known_versions = set(versions)


def backfill(writer: ShopperStateWriter, users: dict[str, list[tuple[str, float]]], versions: Sequence[str] | None = None,
             progress: Callable[[int, int], None] = lambda done, total: None) -> float:
    """Write every one of `users`' states for `versions` (default: those serving now), in chunks, with
    progress; returns the seconds it took."""
    started = time.perf_counter()
    versions = list(versions or writer.serving_versions())
    ids = list(users)
    for start in range(0, len(ids), writer.chunk):
        chunk = ids[start : start + writer.chunk]
        writer.write({u: users[u] for u in chunk}, versions)
        progress(start + len(chunk), len(ids))
    return time.perf_counter() - started
