"""Load generators for the suite over real gRPC: concurrent event ingest (each client retries a batch
the server could not take, with the same event ids, so a retry is safe) and concurrent Rank. Used by
the ingest test and the reliability benchmark; every call's outcome is counted."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import grpc

from core.domain import Event
from devtools.client import Credentials, event_message, open_channel
from shoprank.v1 import feedback_pb2, feedback_pb2_grpc, scoring_pb2, scoring_pb2_grpc


def run_clients(client: Callable[[int], None], clients: int, name: str) -> None:
    """`client(0..clients-1)`, each in its own thread, all at once; returns when every one has."""
    threads = [threading.Thread(target=client, args=(c,), name=f"{name}-{c}") for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass
class IngestReport:
    acked: set[str] = field(default_factory=set)  # event ids the server acknowledged (accepted or duplicate)
    calls: int = 0
    failed_calls: int = 0  # answers that were not OK and not retryable (a bug)
    retried_calls: int = 0  # UNAVAILABLE / deadline (server down or restarting), retried with the same batch
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    pending_calls: int = 0  # answered before the shopper features were refreshed (features_pending)

    @property
    def events_per_s(self) -> float:
        return len(self.acked) / self.seconds if self.seconds else 0.0


class Pacer:
    """A client's schedule: `rate_per_s` calls a second on a fixed timetable (a shop's traffic arrives at
    a rate, it does not wait for the last answer), or back to back when 0. A client that falls behind
    sends at once and skips no call; more than a second behind, the timetable restarts from now."""

    def __init__(self, rate_per_s: float, stop: threading.Event | None) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self.stop = stop or threading.Event()
        self.next_at = time.monotonic() + random.random() * self.interval  # clients out of phase

    def wait(self) -> bool:
        """Sleep until the next call is due; False once `stop` is set."""
        if self.interval:
            now = time.monotonic()
            if self.next_at < now - 1.0:
                self.next_at = now
            if self.next_at > now and self.stop.wait(self.next_at - now):
                return False
            self.next_at += self.interval
        return not self.stop.is_set()


def ingest(address: str, credentials: Credentials, users: Sequence[str], items: Sequence[str], clients: int = 16,
           batches: int = 10, batch_size: int = 50, prefix: str = "load", seed: int = 0, stop: threading.Event | None = None,
           deadline_s: float = 30.0, give_up_s: float = 180.0, rate_per_s: float = 0.0) -> IngestReport:
    """`clients` threads each send `batches` batches of `batch_size` new purchase/click events (or until
    `stop` is set), back to back or, with `rate_per_s`, each client at that many batches a second. A
    batch that gets UNAVAILABLE is sent again until it is acknowledged or `give_up_s` passes."""
    report = IngestReport()
    lock = threading.Lock()
    started = time.monotonic()

    def client(c: int) -> None:
        rng = random.Random(seed * 7919 + c)
        channel = open_channel(address, credentials, own_connection=True)  # one connection per storefront client, as
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)                 # several feedback processes need
        pace = Pacer(rate_per_s, stop)
        try:
            for b in range(batches):
                if not pace.wait():
                    return
                now = time.time()
                batch = [Event(f"{prefix}-{c}-{b}-{i}", rng.choice(users), rng.choice(items), rng.choice(["purchase", "click", "impression"]),
                               now - rng.random() * 3600) for i in range(batch_size)]
                request = feedback_pb2.RecordEventsRequest(events=[event_message(e) for e in batch])
                first = time.monotonic()
                while True:
                    t0 = time.perf_counter()
                    try:
                        reply = stub.RecordEvents(request, timeout=deadline_s)
                    except grpc.RpcError as exc:
                        code = exc.code()
                        with lock:
                            report.calls += 1
                            report.statuses[code.name] += 1
                            if code in RETRYABLE and time.monotonic() - first < give_up_s:
                                report.retried_calls += 1
                            else:
                                report.failed_calls += 1
                        if code in RETRYABLE and time.monotonic() - first < give_up_s:
                            time.sleep(0.2)
                            continue
                        break
                    with lock:
                        report.calls += 1
                        report.statuses["OK"] += 1
                        report.latencies_ms.append((time.perf_counter() - t0) * 1000)
                        report.pending_calls += reply.features_pending
                        rejected = {r.id for r in reply.rejected}
                        report.acked.update(e.event_id for e in batch if e.event_id not in rejected)
                    break
        finally:
            channel.close()

    run_clients(client, clients, "ingest")
    report.seconds = time.monotonic() - started
    return report


def refreshes_caught_up(address: str, credentials: Credentials, user: str, item: str, connections: int = 4,
                        give_up_s: float = 120.0) -> float:
    """Seconds until the feedback service has no refresh backlog: a probe event for `user` is sent on each
    of `connections` connections (one per process it may reach), again every 0.1 s on those whose answer
    says features_pending, until every one comes back refreshed. Raises TimeoutError after `give_up_s`."""
    started = time.monotonic()
    channels = [open_channel(address, credentials, own_connection=True) for _ in range(connections)]
    try:
        waiting = [feedback_pb2_grpc.FeedbackServiceStub(c) for c in channels]
        n = 0
        while waiting:
            if time.monotonic() - started > give_up_s:
                raise TimeoutError(f"refreshes still pending after {give_up_s:.0f}s")
            still = []
            for stub in waiting:
                n += 1
                probe = Event(f"probe-{user}-{time.time_ns():x}-{n}", user, item, "click", time.time())
                if stub.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(probe)]), timeout=30).features_pending:
                    still.append(stub)
            waiting = still
            if waiting:
                time.sleep(0.1)
        return time.monotonic() - started
    finally:
        for c in channels:
            c.close()


@dataclass
class RankReport:
    calls: int = 0
    degraded: int = 0
    failed_calls: int = 0
    statuses: Counter = field(default_factory=Counter)
    answered: list[tuple[float, bool]] = field(default_factory=list)  # (monotonic time, degraded) of each OK answer
    latencies_ms: list[float] = field(default_factory=list)
    shopper_states: Counter = field(default_factory=Counter)  # how each answer's shopper vector was obtained
    # latencies by what the call was: its answer's shopper_state ("stored", "inline", ...) and, in the
    # shop-like traffic, "after_event" / "no_event" (whether a click of the shopper's was recorded just before)
    latencies_by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def rank_once(stub: scoring_pb2_grpc.ScoringServiceStub, user: str, pool: list[str], rng: random.Random, candidates: int,
              recommend_k: int, report: RankReport, lock: threading.Lock, kind: str = "") -> None:
    """One Rank of `candidates` random items of `pool` for `user` (or Recommend of the top
    `recommend_k`), its outcome and latency added to `report` (also under `kind`, when given, and under
    its answer's shopper_state); a failed call backs off 0.1 s."""
    t0 = time.perf_counter()
    try:
        if recommend_k:
            reply = stub.Recommend(scoring_pb2.RecommendRequest(user_id=user, k=recommend_k), timeout=30)
        else:
            reply = stub.Rank(scoring_pb2.RankRequest(user_id=user, item_ids=rng.sample(pool, min(candidates, len(pool)))), timeout=30)
        latency_ms = (time.perf_counter() - t0) * 1000
        with lock:
            report.latencies_ms.append(latency_ms)
            if reply.shopper_state:
                report.latencies_by_kind[reply.shopper_state].append(latency_ms)
            if kind:
                report.latencies_by_kind[kind].append(latency_ms)
            report.calls += 1
            report.statuses["OK"] += 1
            report.degraded += reply.degraded
            report.shopper_states[reply.shopper_state or "none"] += 1
            report.answered.append((time.monotonic(), reply.degraded))
    except grpc.RpcError as exc:
        with lock:
            report.calls += 1
            report.statuses[exc.code().name] += 1
            report.failed_calls += 1
        time.sleep(0.1)


def rank_load(address: str, credentials: Credentials, users: Sequence[str], items: Sequence[str], stop: threading.Event,
              clients: int = 4, candidates: int = 20, seed: int = 0, recommend_k: int = 0, rate_per_s: float = 0.0) -> RankReport:
    """Rank requests (random shopper, `candidates` random items) from `clients` threads until `stop` is
    set, back to back or, with `rate_per_s`, each client at that many calls a second; with
    `recommend_k`, Recommend requests for the top k instead."""
    report = RankReport()
    lock = threading.Lock()
    pool = list(items)

    def client(c: int) -> None:
        rng = random.Random(seed * 104729 + c)
        channel = open_channel(address, credentials, own_connection=True)
        stub = scoring_pb2_grpc.ScoringServiceStub(channel)
        pace = Pacer(rate_per_s, stop)
        try:
            while pace.wait():
                rank_once(stub, rng.choice(users), pool, rng, candidates, recommend_k, report, lock)
        finally:
            channel.close()

    run_clients(client, clients, "rank")
    return report


@dataclass
class ShopRankReport(RankReport):
    events_recorded: int = 0
    event_failed: int = 0
    event_latencies_ms: list[float] = field(default_factory=list)


def shop_rank_load(scoring: str, feedback: str, credentials: Credentials, users: Sequence[str], weights: Sequence[float],
                   items: Sequence[str], stop: threading.Event, clients: int = 16, candidates: int = 100,
                   event_probability: float = 0.3, seed: int = 0, recommend_k: int = 0) -> ShopRankReport:
    """A shop's traffic from `clients` threads until `stop`: each call picks a shopper by `weights` (a few
    return often, most rarely), and with `event_probability` first records a click of theirs through
    RecordEvents (their state changes, as it does in an open shop), then asks Rank for `candidates`
    random items (or Recommend for the top `recommend_k`). Only the Rank/Recommend latencies are the
    ranking figures; the events' own latencies are kept apart."""
    import bisect
    import itertools

    report = ShopRankReport()
    lock = threading.Lock()
    pool = list(items)
    cumulative = list(itertools.accumulate(weights))
    run = f"{time.time_ns():x}"

    def client(c: int) -> None:
        rng = random.Random(seed * 104729 + c)
        channel = open_channel(scoring, credentials, own_connection=True)
        events_channel = open_channel(feedback, credentials, own_connection=True)
        stub, events = scoring_pb2_grpc.ScoringServiceStub(channel), feedback_pb2_grpc.FeedbackServiceStub(events_channel)
        n = 0
        try:
            while not stop.is_set():
                user = users[min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(users) - 1)]
                after_event = rng.random() < event_probability
                if after_event:
                    n += 1
                    click = Event(f"shop-{run}-{c}-{n}", user, rng.choice(pool), "click", time.time())
                    t0 = time.perf_counter()
                    try:
                        events.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(click)]), timeout=30)
                        with lock:
                            report.events_recorded += 1
                            report.event_latencies_ms.append((time.perf_counter() - t0) * 1000)
                    except grpc.RpcError:
                        with lock:
                            report.event_failed += 1
                rank_once(stub, user, pool, rng, candidates, recommend_k, report, lock, "after_event" if after_event else "no_event")
        finally:
            channel.close()
            events_channel.close()

    run_clients(client, clients, "shop")
    return report
