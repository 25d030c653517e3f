"""Plays simulated shoppers (shopdata/simulator.py) against a running deployment through real gRPC:
each step one shopper asks Recommend, looks at the answer and acts on it; their events go back through
RecordEvents, most with the answer's request id and some without (left to the impression window).
The driver remembers what each event truly answered (request, arm, version, position) so attribution
can be checked exactly, and watches the experiment until it is decided. Used by the online-experiment
test and `make bench-online`."""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from core.domain import Event
from devtools.client import SuiteClient, event_message
from shopdata import Shop
from shopdata.simulator import SimulatedShoppers
from shopdata.synthetic import generate
from shoprank.v1 import feedback_pb2, model_admin_pb2
from shoprank_client.enums import experiment_state_of

logger = logging.getLogger(__name__)


def history_pace(shop: Shop) -> float:
    """Shop seconds per visit (a shopper's request) in the shop's own history: the pace a simulation keeps
    to move the shop's clock as its history did."""
    return (shop.events[-1].timestamp - shop.events[0].timestamp) / max(len({(e.user_id, e.request_id) for e in shop.events}), 1)


def simulated_shop(users: int, visits_at_history_pace: int, more_seconds: float = 0.0, n_days: int = 60, seed: int = 21) -> Shop:
    """The synthetic shop the simulations use, dated so that its history, then `visits_at_history_pace`
    visits at its own pace and `more_seconds` of shop time after them, all end before now (the feedback
    service rejects events stamped in the future)."""
    pace = history_pace(generate(n_users=users, n_days=n_days, seed=seed))
    days = n_days + (visits_at_history_pace * pace + more_seconds + 4 * 3600) / 86400 + 2
    return generate(n_users=users, n_days=n_days, seed=seed, start=datetime.fromtimestamp(time.time() - days * 86400, timezone.utc).date().isoformat())


@dataclass(frozen=True)
class Truth:
    request_id: str
    experiment_id: str
    arm: str
    version: str
    position: int
    method: str  # "request" when the event carried the request id, else "window"


@dataclass
class Simulation:
    steps: int = 0
    events: int = 0  # interest events sent
    truth: dict[str, Truth] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)  # answers per arm
    relevance: dict[str, list[float]] = field(default_factory=dict)  # hidden-truth relevance of each answer, per arm
    visits: list[tuple[int, str, float, float]] = field(default_factory=list)  # (simulation clock, arm, relevance, share of shoppers drifted)
    sent_at: list[tuple[float, int]] = field(default_factory=list)  # (wall clock, interest events sent so far)
    looks: list[tuple[int, model_admin_pb2.GetExperimentResponse]] = field(default_factory=list)  # (events sent, the experiment then)
    latency_ms: list[float] = field(default_factory=list)  # each Recommend as the client saw it
    final_state: str = "running"
    decided_after_events: int | None = None

    def events_by(self, wall_clock: float) -> int:
        """Interest events sent before a moment (the time a decision took, in simulated events)."""
        sent = 0
        for at, n in self.sent_at:
            if at > wall_clock:
                break
            sent = n
        return sent


def simulate(client: SuiteClient, shoppers: SimulatedShoppers, experiment_id: str, steps: int, start_ts: float,
             step_seconds: float = 60.0, k: int = 10, window_share: float = 0.25, look_every: int = 25,
             stop_when_decided: bool = True, seed: int = 0, progress: Callable[[int, Simulation], None] | None = None) -> Simulation:
    rng = random.Random(seed)
    sim = Simulation()
    for step in range(steps):
        user = shoppers.next_shopper()
        began = time.perf_counter()
        answer = client.recommend(user, k=k)
        sim.latency_ms.append((time.perf_counter() - began) * 1000)
        items = [i.item_id for i in answer.items]
        sim.served[answer.arm] = sim.served.get(answer.arm, 0) + 1
        relevance = shoppers.relevance(user, items)
        sim.relevance.setdefault(answer.arm, []).append(relevance)
        sim.visits.append((shoppers.step, answer.arm, relevance, shoppers.drifted()))
        events = []
        ts = start_ts + step * step_seconds
        for n, reaction in enumerate(shoppers.react(user, items)):
            with_id = rng.random() >= window_share
            event_id = f"sim-{experiment_id}-{step}-{n}"
            events.append(Event(event_id, user, reaction.item_id, reaction.event_type, ts + n, answer.request_id if with_id else ""))
            sim.truth[event_id] = Truth(answer.request_id, answer.experiment_id, answer.arm, answer.model_version, reaction.position,
                                        "request" if with_id else "window")
        if events:
            reply = client.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(e) for e in events]), timeout=60)
            if reply.rejected:  # e.g. a simulation clock run past now: stop rather than measure nothing
                raise RuntimeError(f"visit {step}: {len(reply.rejected)} events rejected: {reply.rejected[0].reason}")
            sim.events += len(events)
        sim.sent_at.append((time.time(), sim.events))
        sim.steps = step + 1
        if progress is not None and (step + 1) % 25 == 0:
            progress(step + 1, sim)
        if look_every and (step + 1) % look_every == 0:
            look = client.admin.GetExperiment(model_admin_pb2.GetExperimentRequest(experiment_id=experiment_id), timeout=60)
            sim.looks.append((sim.events, look))
            sim.final_state = experiment_state_of(look.experiment.state)
            if sim.final_state != "running":
                sim.decided_after_events = sim.events_by(look.experiment.ended.ToNanoseconds() / 1e9)
                if stop_when_decided:
                    break
    return sim
