"""Feedback service: catalogue upserts and behaviour events (and, in the same process, model admin).

An event batch is validated element by element (good ones are kept, bad ones come back with reasons),
appended durably to the event log, then what it changed in the online store is pushed to Feast: the
shoppers' history and interest features, its items' popularity, and (throttled) every item's
popularity and the shop's clock and popular list (core.feature_sync). That push runs on the refresher's
thread (core.feature_refresher); the call waits for it unless the refresher is too far behind.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import threading
import time
from typing import Any, Callable, Sequence

import grpc

from core import background
from core.domain import Event, ItemStatus
from core.errors import InvalidArgument, Unavailable
from core.experiments.attributor import Attributor
from core.experiments.control import ExperimentControl
from core.feature_refresher import CATCH_UP_S, FeatureRefresher, Ticket
from core.feature_sync import FeatureSync
from core.features import FeatureClient
from core.group_commit import GroupCommit
from core.ids import MAX_ID_LENGTH, check_id
from core.log_format import configure
from core.model_repository import ModelRepository
from core.privacy import Pseudonyms
from core.settings import Settings, load
from core.store import EventLog
from core.tasks import TaskSender, celery_client, queue_depths
from core.triggers import maybe_fine_tune
from rankers import get_ranker
from ranking.shopper_states import ShopperStateWriter
from services.grpc_server import build_server, first_process, serve_processes, serve_until_signalled
from services.health_watch import start_watching
from services.metrics import FEATURES_PENDING, INGESTED_EVENTS, ExperimentCollector, JobStateCollector, QueueDepthCollector
from services.model_admin import ModelAdminServicer
from services.validation import validate_events, validate_items
from shoprank.v1 import common_pb2, feedback_pb2, feedback_pb2_grpc, model_admin_pb2

logger = logging.getLogger(__name__)


class FeedbackServicer(feedback_pb2_grpc.FeedbackServiceServicer):
    def __init__(self, settings: Settings, log: EventLog, features: FeatureClient, sender: TaskSender, pseudonyms: Pseudonyms,
                 sync: FeatureSync | None = None, refresher: FeatureRefresher | None = None) -> None:
        self.settings = settings
        self.log = log
        self.features = features
        self.pseudonyms = pseudonyms  # storefront shopper ids are stored only as keyed hashes
        self.sync = sync or FeatureSync(log, features, settings.popularity_refresh_s)
        self.sender = sender  # volume-triggered fine-tunes are sent by task name
        if refresher is None:
            refresher = FeatureRefresher(self.sync, settings.refresh_wait_ms / 1000.0)
            refresher.start()
        self.refresher = refresher  # what the stored events change, refreshed off this call
        # Concurrent batches share one log transaction and one refresh ticket (core.group_commit).
        self._ingest: GroupCommit[list[Event], tuple[set[str], Ticket]] = GroupCommit(self._store)
        self.model_name = get_ranker(settings.ranker).model_name

    def RecordEvents(self, request: feedback_pb2.RecordEventsRequest, context: grpc.ServicerContext) -> feedback_pb2.RecordEventsResponse:
        if not request.events:
            raise InvalidArgument("events is empty")
        if len(request.events) > self.settings.max_batch_events:
            raise InvalidArgument(f"{len(request.events)} events; at most {self.settings.max_batch_events} per batch")
        good, bad = validate_events(request.events, self.log.catalogue.known(e.item_id for e in request.events))
        good = [dataclasses.replace(e, user_id=self.pseudonyms(e.user_id)) for e in good]
        fresh: set[str] = set()
        pending = False
        if good:
            fresh, ticket = self._ingest.submit(good)  # durable before we answer
            INGESTED_EVENTS.inc(len(fresh))
            try:
                pending = not self.refresher.refreshed(ticket)  # waits when the refresher is close enough
            except Exception as exc:  # noqa: BLE001 - the refresh pass failed; the refresher retries it
                raise Unavailable(
                    "events were stored durably but the online features were not refreshed; retrying the same batch is safe"
                ) from exc
            if pending:
                FEATURES_PENDING.inc()
        job = None
        if fresh and self.settings.auto_fine_tune_events > 0:
            job = maybe_fine_tune(self.settings, self.log, self.sender, self.model_name, self.settings.auto_fine_tune_events, "volume")
        return feedback_pb2.RecordEventsResponse(
            accepted=len(fresh),
            duplicates=len(good) - len(fresh),
            rejected=[common_pb2.Rejection(index=r.index, id=r.id, reason=r.reason) for r in bad],
            fine_tune_job_id=job.job_id if job else "",
            features_pending=pending,
        )

    def _store(self, batches: Sequence[list[Event]]) -> list[tuple[set[str], Ticket]]:
        """Append every batch in one transaction (if it fails, no batch is acknowledged), then queue one
        refresh of what they changed in the online store."""
        fresh = self.log.events.append_batches(batches)
        stored, seen = [], set()  # the events stored now, each id once (the first batch that carried it)
        for batch, ids in zip(batches, fresh):
            for e in batch:
                if e.event_id in ids and e.event_id not in seen:
                    seen.add(e.event_id)
                    stored.append(e)
        ticket = self.refresher.submit(stored, {e.user_id for b in batches for e in b}, {e.item_id for b in batches for e in b})
        return [(f, ticket) for f in fresh]

    def UpsertItems(self, request: feedback_pb2.UpsertItemsRequest, context: grpc.ServicerContext) -> feedback_pb2.UpsertItemsResponse:
        if not request.items:
            raise InvalidArgument("items is empty")
        if len(request.items) > self.settings.max_batch_events:
            raise InvalidArgument(f"{len(request.items)} items; at most {self.settings.max_batch_events} per batch")
        good, bad = validate_items(request.items)
        out_of_stock = {it.item_id for it in request.items if it.out_of_stock and it.item_id in good}
        self.log.catalogue.upsert(good, out_of_stock)
        try:
            self.features.push_items(good, {i: ItemStatus.OUT_OF_STOCK for i in out_of_stock})
        except Exception as exc:  # noqa: BLE001
            logger.exception("item push failed")
            raise Unavailable("items were stored but not published to the online store; retrying is safe") from exc
        return feedback_pb2.UpsertItemsResponse(
            upserted=len(good), rejected=[common_pb2.Rejection(index=r.index, id=r.id, reason=r.reason) for r in bad]
        )

    def DeleteItems(self, request: feedback_pb2.DeleteItemsRequest, context: grpc.ServicerContext) -> feedback_pb2.DeleteItemsResponse:
        if not request.item_ids:
            raise InvalidArgument("item_ids is empty")
        if len(request.item_ids) > self.settings.max_batch_events:
            raise InvalidArgument(f"{len(request.item_ids)} item_ids; at most {self.settings.max_batch_events} per batch")
        rejected, ids = [], []
        for index, item_id in enumerate(request.item_ids):
            if reason := check_id(item_id, "item_id"):
                rejected.append(common_pb2.Rejection(index=index, id=item_id[:MAX_ID_LENGTH], reason=reason))
            else:
                ids.append(item_id)
        found = self.log.catalogue.delete(ids)
        rejected += [common_pb2.Rejection(index=index, id=item_id, reason="not in the catalogue")
                     for index, item_id in enumerate(request.item_ids) if item_id in ids and item_id not in found]
        if not found:  # nothing changed: no push, no shop-wide refresh (a storefront key must not buy one for free)
            return feedback_pb2.DeleteItemsResponse(deleted=0, rejected=sorted(rejected, key=lambda r: r.index))
        try:
            self.features.push_items(found, {i: ItemStatus.DELETED for i in found})
            self.sync.refresh_all()  # the shop's popular list drops them now, not at the next refresh
        except Exception as exc:  # noqa: BLE001
            logger.exception("item deletion push failed")
            raise Unavailable("items were deleted in the catalogue but not in the online store; retrying is safe") from exc
        return feedback_pb2.DeleteItemsResponse(deleted=len(found), rejected=sorted(rejected, key=lambda r: r.index))


def shopper_state_writer(settings: Settings, log: EventLog, features: FeatureClient) -> ShopperStateWriter | None:
    """The shopper-state writer of the configured ranker (None: it keeps no state, or RECSYS_SHOPPER_STATES=0)."""
    ranker = get_ranker(settings.ranker)
    if ranker.state_encoder is None or not settings.shopper_states:
        return None
    from core.feature_cache import CachedFeatures
    from core.triton_client import triton_client

    writer = ShopperStateWriter(ranker, features, triton_client(settings, ranker.model_name), erased_since=log.erasures.erased_since)
    writer.items = CachedFeatures.for_settings(features, settings)  # item texts: the history items repeat
    return writer


def backfill_active(sync: FeatureSync, log: EventLog, days: float, chunk: int = 1000) -> int:
    """A new version serves: resubmit every shopper active in the last `days` (their rows are re-read from
    the log, so erasures hold) for the state writer, with progress; returns how many."""
    clock = log.events.newest_time() or 0.0
    users = log.events.active_users(clock - days * 86400.0)
    started = time.perf_counter()
    for start in range(0, len(users), chunk):
        sync.users(users[start : start + chunk])
        logger.info("shopper-state backfill: %d/%d active shoppers submitted", min(start + chunk, len(users)), len(users))
    logger.info("shopper-state backfill: %d shoppers submitted in %.1fs", len(users), time.perf_counter() - started)
    return len(users)


STATE_SAMPLE = 20  # active shoppers whose stored states tell a restarted writer from a fresh deployment's


def backfill_if_missing(sync: FeatureSync, log: EventLog, features: FeatureClient, ranker_key: Callable[[str], str],
                        versions: list[str], days: float, sample: int = STATE_SAMPLE) -> int:
    """At the state writer's first look: backfill (backfill_active) when most of a sample of the active
    shoppers have no stored state for one of `versions` (a fresh deployment's first version, or a writer
    that stopped mid-backfill); a restart whose states are stored re-encodes nothing. Returns how many
    shoppers it resubmitted."""
    clock = log.events.newest_time() or 0.0
    users = log.events.active_users(clock - days * 86400.0)
    if not users:
        return 0
    picked = random.Random(0).sample(users, min(sample, len(users)))
    missing = [v for v in versions if sum(features.get_shopper_state(u, ranker_key(v)) is None for u in picked) * 2 > len(picked)]
    if not missing:
        return 0
    logger.info("shopper states of versions %s are missing for most active shoppers: backfilling", missing)
    return backfill_active(sync, log, days, chunk=1000)


SERVICE_NAMES = (
    feedback_pb2.DESCRIPTOR.services_by_name["FeedbackService"].full_name,
    model_admin_pb2.DESCRIPTOR.services_by_name["ModelAdminService"].full_name,
)


def create_server(settings: Settings, address: str = "127.0.0.1:0", lead: bool = True) -> tuple[grpc.Server, int, Any, FeatureRefresher]:
    """(server, port, health, refresher) with the feedback and model-admin services; not started (drain
    the refresher once the server stops). Its attributor thread (core/experiments/attributor.py)
    attributes events to served lists and looks at canaries. `lead`: False in the second and later
    processes of RECSYS_FEEDBACK_PROCESSES, which leave the log-wide duties (the popularity refresh, the
    attributor, a new version's state backfill, the catch-up at start) to the first; each still
    refreshes what its own batches change."""
    from core.security import ensure_secrets
    from shoprank.v1 import model_admin_pb2_grpc

    ensure_secrets(settings)
    background.configure(settings.background_nice)
    log = EventLog.open(settings.eventlog, settings.audit_log)
    features = FeatureClient(settings)
    sender = celery_client(settings)
    pseudonyms = Pseudonyms.of(settings)
    states = shopper_state_writer(settings, log, features)
    sync = FeatureSync(log, features, settings.popularity_refresh_s, on_users=states.submit if states else lambda rows: None)
    if lead:
        sync.start_refresher()  # full popularity refreshes scan the log's 30 days: never inside a RecordEvents call
    else:
        sync.full_refreshes = False
    if states is not None:
        if lead:
            states.on_new_versions = lambda versions: threading.Thread(
                target=backfill_active, args=(sync, log, settings.state_backfill_days), name="state-backfill", daemon=True).start()
            states.on_first_look = lambda versions: threading.Thread(
                target=backfill_if_missing, args=(sync, log, features, states.ranker.version_key, versions, settings.state_backfill_days),
                name="state-backfill", daemon=True).start()
        states.start()
    refresher = FeatureRefresher(sync, settings.refresh_wait_ms / 1000.0)
    refresher.start()
    if lead:  # the shoppers a process that died may have acknowledged events of without refreshing them
        threading.Thread(target=catch_up, args=(refresher, log), name="refresh-catch-up", daemon=True).start()
    feedback = FeedbackServicer(settings, log, features, sender, pseudonyms, sync, refresher)
    admin = ModelAdminServicer(settings, log, features, sender, pseudonyms, sync)
    server, port, health = build_server(
        [
            lambda s: feedback_pb2_grpc.add_FeedbackServiceServicer_to_server(feedback, s),
            lambda s: model_admin_pb2_grpc.add_ModelAdminServiceServicer_to_server(admin, s),
        ],
        SERVICE_NAMES,
        address,
        workers=16,  # waiting in a group commit costs a thread, not CPU: more waiters share each commit
        settings=settings,
        audit=log.audit,
    )
    # NOT_SERVING while the event log or the online store is gone (events could not be stored or served)
    start_watching([("event log", log.reachable), ("online store", features.reachable)], health, SERVICE_NAMES)
    if lead:
        Attributor(log, admin.experiments.control, settings.attribution_grace_s, settings.attribution_window_s,
                   check_s=settings.experiment_check_s).start()
    return server, port, health, refresher


def catch_up(refresher: FeatureRefresher, log: EventLog) -> None:
    """Queue the shoppers of every event received in the CATCH_UP_S before now for a refresh (a backlog
    never holds more than MAX_LAG_S of work, so a process restarted within the difference left none behind)."""
    try:
        users = log.events.users_received_since(time.time() - CATCH_UP_S)
        refresher.catch_up(users)
        logger.info("refresh catch-up: %d shoppers with events received in the last %.0fs queued", len(users), CATCH_UP_S)
    except Exception:  # noqa: BLE001 - their next event refreshes them; the service still starts
        logger.exception("refresh catch-up failed")


def serve(address: str) -> None:
    """One feedback process: build the server on `address` and serve until SIGTERM, then finish the
    refreshes its acknowledged batches queued."""
    configure("feedback")
    settings = load()
    server, port, health, refresher = create_server(settings, address, lead=first_process())
    serve_until_signalled(server, health, f"feedback on {port}", after_stop=refresher.drain, gc_freeze_s=settings.gc_freeze_s)


def main() -> None:
    parser = argparse.ArgumentParser(description="Feedback + model admin gRPC server")
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--metrics-address", default="", help="host:port for Prometheus /metrics (off when empty)")
    args = parser.parse_args()
    configure("feedback")
    settings = load()
    from core.security import ensure_secrets

    ensure_secrets(settings)  # once, before any child process reads them
    log = EventLog.open(settings.eventlog, settings.audit_log)  # tables and indexes made once, before the children open it
    collectors: tuple = ()
    if args.metrics_address:
        broker = celery_client(settings)
        control = ExperimentControl.reader(log, ModelRepository(settings.model_repository, get_ranker(settings.ranker).model_name))
        collectors = (JobStateCollector(log.jobs), QueueDepthCollector(lambda: queue_depths(broker)),
                      ExperimentCollector(lambda: [control.measure(e, look=False) for e in control.log.experiments.running()]))
    serve_processes(settings.feedback_processes, serve, args.address, "feedback", args.metrics_address, collectors)


if __name__ == "__main__":
    main()
