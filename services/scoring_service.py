"""Scoring service: ranks candidates for a shopper with the configured ranker's model on Triton.

The request path reads only the online store (Feast) and Triton: the ranker (rankers/) reads what it
needs of the shopper for the version Triton serves, turns shopper and candidates into the model's
request, and one inference request to that version scores them. Recommend puts the ranker's retrieval
in front and applies the request's rules (core/rules.py). SimilarItems, FrequentlyBoughtTogether and
Trending read the serving version's neighbour tables or the shop's trending list from Feast, apply the
same rules, and rank with the model when the request names a shopper. If Triton cannot answer, the
response keeps the retrieval/request order and says `degraded`.
Every answer for a shopper names the experiment arm that served it (core/experiments) and is handed
to a background recorder (core/served_log.py) that writes it to the log's served-list table for
attribution: the only table this process touches, written off the request path and never read. It
imports no torch.
"""
from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import grpc
import numpy as np

from core import log_format, tracing
from core.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from core.experiments.attribution import ServedList
from core.experiments.definition import Arm
from core.feature_cache import CachedFeatures
from core.features import FeatureClient, OnlineFeatures
from core.log_format import bound, configure
from core.privacy import Pseudonyms
from core.rules import Rules, arrange
from core.served_log import ServedRecorder
from core.settings import Settings, load
from core.triton_client import InferenceUnavailable, TritonClickClient
from rankers import get_ranker
from rankers.base import Ranker, Shopper
from services.grpc_server import build_server, serve_processes, serve_until_signalled
from services.health_watch import start_watching
from services.metrics import DEGRADED_ANSWERS, EXPERIMENT_ANSWERS, SERVED_LISTS_DROPPED, SERVING_VERSION, timed
from services.validation import check_id, validate_rank_request, validate_rules
from shoprank.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc

logger = logging.getLogger(__name__)

RECOMMEND_CANDIDATES = 200  # retrieved, then ranked, for the k that Recommend returns
RELATED_CANDIDATES = 200  # of an item-to-item table, filtered by the rules and (with a shopper) ranked
MAX_SEED_ITEMS = 50  # FrequentlyBoughtTogether's basket
MAX_EXPLAINED = 100  # items explained per answer (16 coalition rows each in one Triton request)
REASON_KINDS = {"repeat": common_pb2.REASON_KIND_REPEAT, "timing": common_pb2.REASON_KIND_TIMING,
                "popularity": common_pb2.REASON_KIND_POPULARITY, "co_purchase": common_pb2.REASON_KIND_CO_PURCHASE,
                "text": common_pb2.REASON_KIND_TEXT}
PLACEMENTS = {"ranked": common_pb2.PLACEMENT_UNSPECIFIED, "boosted": common_pb2.PLACEMENT_BOOSTED, "pinned": common_pb2.PLACEMENT_PINNED}
MAX_SHADOW_BACKLOG = 64  # shadow scorings waiting; beyond this a shadow skips requests rather than queue


@dataclass(frozen=True)
class Route:
    """Which version answers a request: the primary one, or the shopper's experiment arm's; and the
    shadow arms that score it in the background."""

    version: str
    experiment_id: str = ""
    arm: str = ""
    shadows: tuple[Arm, ...] = ()


class ScoringServicer(scoring_pb2_grpc.ScoringServiceServicer):
    def __init__(self, settings: Settings, features: OnlineFeatures, triton: TritonClickClient, ranker: Ranker,
                 pseudonyms: Pseudonyms, recorder: ServedRecorder | None = None) -> None:
        self.settings = settings
        self.pseudonyms = pseudonyms  # the online store knows shoppers by keyed hash only
        self.features = features
        self.triton = triton
        self.ranker = ranker
        self.recorder = recorder  # served lists for attribution (None: not recorded)
        self._shadow_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow")
        self._shadow_backlog = threading.Semaphore(MAX_SHADOW_BACKLOG)

    def Rank(self, request: scoring_pb2.RankRequest, context: grpc.ServicerContext) -> scoring_pb2.RankResponse:
        candidates = validate_rank_request(request.user_id, list(request.item_ids), self.settings.max_candidates)
        request_id = self._request_id(request.request_id)
        tracing.annotate(request_id=request_id)
        with bound(log_format.request_id, request_id):  # every log line of this call carries it
            key = self.pseudonyms(request.user_id)
            route = self.route(key)
            response = self.rank(self._shopper_of(key, route.version), candidates, request_id, route.version, explain=request.explain)
            return self._served(response, key, route, "Rank", lambda version: self.rank(
                self._shopper_of(key, version), candidates, request_id, version))

    def Recommend(self, request: scoring_pb2.RecommendRequest, context: grpc.ServicerContext) -> scoring_pb2.RecommendResponse:
        if reason := check_id(request.user_id, "user_id"):
            raise InvalidArgument(reason)
        k = request.k or 10
        if not 1 <= k <= 100:
            raise InvalidArgument(f"k {k} outside 1..100")
        rules = validate_rules(request.rules, k)
        request_id = self._request_id(request.request_id)
        tracing.annotate(request_id=request_id)
        with bound(log_format.request_id, request_id):
            key = self.pseudonyms(request.user_id)
            route = self.route(key)
            version = route.version
            shopper = self._shopper_of(key, version)
            candidates = self.ranker.retrieve(shopper, RECOMMEND_CANDIDATES)
            # Filters can empty much of retrieval's list: then the shop's popular and filler items
            # stand behind it, so k still come back when k qualify among them.
            reach = RECOMMEND_CANDIDATES * (2 if rules.filters else 1)
            if len(candidates) < reach:
                candidates = list(dict.fromkeys(candidates + shopper.popular + shopper.filler))[:reach]
            candidates = list(dict.fromkeys(rules.extra_candidates() + candidates))
            if not candidates:
                raise FailedPrecondition("the catalogue is empty; upsert items first")
            ranked = self.rank(shopper, candidates, request_id, version, allow_unknown=True, top=k, rules=rules, explain=request.explain)
            ranked = self._served(ranked, key, route, "Recommend", lambda v: self.rank(
                self._shopper_of(key, v), candidates, request_id, v, allow_unknown=True, top=k, rules=rules))
            return as_response(ranked, scoring_pb2.RecommendResponse)

    # --- item-to-item ---------------------------------------------------------------------------
    def SimilarItems(self, request: scoring_pb2.SimilarItemsRequest, context: grpc.ServicerContext) -> scoring_pb2.SimilarItemsResponse:
        if reason := check_id(request.item_id, "item_id"):
            raise InvalidArgument(reason)
        return as_response(self._related(request, "similar", [request.item_id]), scoring_pb2.SimilarItemsResponse)

    def FrequentlyBoughtTogether(self, request: scoring_pb2.FrequentlyBoughtTogetherRequest,
                                 context: grpc.ServicerContext) -> scoring_pb2.FrequentlyBoughtTogetherResponse:
        seeds = list(dict.fromkeys(request.item_ids))
        if not 1 <= len(seeds) <= MAX_SEED_ITEMS:
            raise InvalidArgument(f"{len(seeds)} distinct item_ids; send 1 to {MAX_SEED_ITEMS}")
        for item_id in seeds:
            if reason := check_id(item_id, "item_id"):
                raise InvalidArgument(reason)
        return as_response(self._related(request, "co_purchase", seeds), scoring_pb2.FrequentlyBoughtTogetherResponse)

    def Trending(self, request: scoring_pb2.TrendingRequest, context: grpc.ServicerContext) -> scoring_pb2.TrendingResponse:
        return as_response(self._related(request, "trending", []), scoring_pb2.TrendingResponse)

    def _related(self, request: Any, kind: str, seeds: list[str]) -> scoring_pb2.RankResponse:
        """Candidates from one of the serving version's neighbour tables (or the shop's trending list),
        filtered and arranged by the request's rules; ordered by the model for the shopper when a
        user_id is given, else by the table's own score."""
        k = request.k or 10
        if not 1 <= k <= 100:
            raise InvalidArgument(f"k {k} outside 1..100")
        if request.user_id and (reason := check_id(request.user_id, "user_id")):
            raise InvalidArgument(reason)
        rules = validate_rules(request.rules, k)
        request_id = self._request_id(request.request_id)
        tracing.annotate(request_id=request_id)
        with bound(log_format.request_id, request_id):
            key = self.pseudonyms(request.user_id) if request.user_id else ""
            route = self.route(key)
            version = route.version
            scored = self._related_scores(kind, seeds, version)
            candidates = list(dict.fromkeys(rules.extra_candidates() + [i for i, _ in scored if i not in seeds]))[:RELATED_CANDIDATES]
            scores = dict(scored)
            if request.user_id:
                shopper = self._shopper_of(key, version)
            else:
                shop = self.features.get_shop()
                shopper = Shopper("", [], [], shop.clock, [], [])
            if request.user_id and candidates:
                response = self.rank(shopper, candidates, request_id, version, allow_unknown=True, top=k, rules=rules)
            else:
                response = self._arranged(shopper, candidates, scores, rules, k)
                response.request_id, response.model_version = request_id, version if kind != "trending" else ""
            for item in response.items:
                item.score = scores.get(item.item_id, 0.0)
            if not request.user_id:
                return response
            rpc = {"similar": "SimilarItems", "co_purchase": "FrequentlyBoughtTogether", "trending": "Trending"}[kind]
            return self._served(response, key, route, rpc, lambda v: self.rank(
                self._shopper_of(key, v), candidates, request_id, v, allow_unknown=True, top=k, rules=rules) if candidates else
                scoring_pb2.RankResponse())

    def _related_scores(self, kind: str, seeds: list[str], version: str) -> list[tuple[str, float]]:
        """(item, score) best first: the trending list, or the seeds' neighbours summed over the seeds."""
        if kind == "trending":
            return self.features.get_shop().trending
        if kind not in self.ranker.related_kinds:
            raise FailedPrecondition(f"the {self.ranker.name} ranker publishes no {kind} table")
        known = self.features.get_items(seeds)
        if unknown := [s for s in seeds if s not in known]:
            raise NotFound(f"{len(unknown)} unknown or deleted item_ids: {', '.join(unknown[:5])}")
        if not version:
            raise Unavailable(f"no model version is served, so its {kind} table is unknown; retry shortly")
        total: dict[str, float] = {}
        for neighbours in self.ranker.related_items(self.features, version, kind, seeds).values():
            for item_id, score in neighbours:
                total[item_id] = total.get(item_id, 0.0) + score
        return sorted(total.items(), key=lambda x: -x[1])

    def _arranged(self, shopper: Shopper, candidates: list[str], scores: dict[str, float], rules: Rules, k: int) -> scoring_pb2.RankResponse:
        """The candidates in their table order (no model), filtered and arranged by the rules."""
        items = self.features.get_items(candidates)
        excluded = rules.shopper_exclusions(shopper.purchased, shopper.interests, shopper.clock)
        pinned = {i for i, _ in rules.pins}
        ranked = [(c, 0.0) for c in candidates if rules.allows(c, items.get(c), excluded) or (c in pinned and c in items)]
        ranked.sort(key=lambda x: -scores.get(x[0], 0.0))  # stable: pinned and boosted items without a score go last
        return self._answer(scoring_pb2.RankResponse(), ranked, items, rules, k)

    def _shopper_of(self, user_key: str, version: str) -> Shopper:
        with timed("feast_shopper"):
            return self.ranker.shopper(self.features, user_key, version)

    def route(self, user_key: str) -> Route:
        """The version that answers this shopper: their arm's when an experiment runs (sticky: a hash of
        experiment and shopper), else the primary one ("" when Triton cannot say: the answer will be
        degraded). An arm whose version is not ready answers from the primary version, outside the experiment."""
        try:
            plan = self.triton.serving_plan()
        except InferenceUnavailable as exc:
            logger.warning("Triton unavailable: %s", exc)
            return Route("")
        SERVING_VERSION.labels(self.ranker.model_name).set(int(plan.primary))
        experiment = plan.experiment
        if experiment is None or not user_key:
            return Route(plan.primary)
        arm = experiment.assign(user_key)
        if arm.version not in plan.ready:
            return Route(plan.primary)
        return Route(arm.version, experiment.experiment_id, arm.name, tuple(a for a in experiment.shadow_arms if a.version in plan.ready))

    def _served(self, response: scoring_pb2.RankResponse, user_key: str, route: Route, rpc: str,
                rerank: Callable[[str], scoring_pb2.RankResponse]) -> scoring_pb2.RankResponse:
        """Name the experiment arm in the answer, record the served list, and let each shadow arm score
        the same request in the background (`rerank(version)`), recorded but never shown."""
        response.experiment_id, response.arm = route.experiment_id, route.arm
        EXPERIMENT_ANSWERS.labels(route.experiment_id, route.arm, response.model_version).inc()
        if self.recorder is None:
            return response
        self.recorder.record(ServedList(response.request_id, user_key, time.time(), response.model_version,
                                        tuple(i.item_id for i in response.items), route.experiment_id, route.arm, False, rpc))
        for arm in route.shadows:
            if not self._shadow_backlog.acquire(blocking=False):
                logger.warning("shadow arm %s skips request %s: its backlog is full", arm.name, response.request_id)
                continue
            self._shadow_pool.submit(self._shadow, arm, response.request_id, user_key, route.experiment_id, rpc, rerank)
        return response

    def _shadow(self, arm: Arm, request_id: str, user_key: str, experiment_id: str, rpc: str,
                rerank: Callable[[str], scoring_pb2.RankResponse]) -> None:
        try:
            answer = rerank(arm.version)
            if self.recorder is not None and not answer.degraded:
                self.recorder.record(ServedList(request_id, user_key, time.time(), arm.version, tuple(i.item_id for i in answer.items),
                                                experiment_id, arm.name, True, rpc))
        except Exception:  # noqa: BLE001 - a shadow never affects what shoppers see
            logger.exception("shadow arm %s failed on request %s", arm.name, request_id)
        finally:
            self._shadow_backlog.release()

    def rank(self, shopper: Shopper, candidates: Sequence[str], request_id: str, version: str,
             allow_unknown: bool = False, top: int | None = None, rules: Rules | None = None,
             explain: bool = False) -> scoring_pb2.RankResponse:
        """Score `candidates` for the shopper; the response holds the best `top` (default: all). With
        `rules` (Recommend) only qualifying candidates are scored and core.rules.arrange fills the top;
        with `explain` each returned item carries its reasons."""
        with timed("feast_items"):
            items = self.features.get_items(list(candidates) + [h.item_id for h in shopper.recent], popularity=self.ranker.reads_popularity)
        unknown = [c for c in candidates if c not in items]
        if unknown and not allow_unknown:
            raise NotFound(f"{len(unknown)} unknown or deleted item_ids: {', '.join(unknown[:5])}")
        if rules is not None:
            excluded = rules.shopper_exclusions(shopper.purchased, shopper.interests, shopper.clock)
            pinned = {i for i, _ in rules.pins}
            candidates = [c for c in candidates if rules.allows(c, items.get(c), excluded)
                          or (c in pinned and c in items and items[c].available)]
        candidates = [c for c in candidates if c in items]
        if not candidates:  # every candidate excluded by the rules: nothing to score
            return scoring_pb2.RankResponse(model_version=version, request_id=request_id, degraded=not version)
        try:
            if not version:
                raise InferenceUnavailable("no serving version")
            inputs = self.ranker.request_inputs(shopper, candidates, items, self.settings)
            with timed("triton_infer"):
                scores = self.triton.score(inputs, version, request_id=request_id)
        except InferenceUnavailable as exc:
            logger.warning("Triton unavailable, answering degraded: %s", exc)
            DEGRADED_ANSWERS.inc()
            response = scoring_pb2.RankResponse(request_id=request_id, degraded=True)
            return self._answer(response, [(c, 0.0) for c in candidates], items, rules, top)
        probabilities = np.asarray(scores.probabilities, dtype=np.float64)
        order = np.argsort(-probabilities, kind="stable")  # ties keep the request's order
        response = scoring_pb2.RankResponse(model_version=scores.model_version, request_id=request_id)
        response = self._answer(response, [(candidates[i], float(probabilities[i])) for i in order.tolist()], items, rules, top)
        if explain:
            self._explain(response, shopper, candidates, inputs, items, scores.model_version, request_id)
        return response

    def _explain(self, response: scoring_pb2.RankResponse, shopper: Shopper, candidates: list[str], inputs: dict[str, np.ndarray],
                 items: dict, version: str, request_id: str) -> None:
        """Attach each returned item's reasons: one more Triton request (the ranker's coalitions of
        evidence for those items) and the ranker's attributions over its answers."""
        row_of = {c: r for r, c in enumerate(candidates)}
        shown = [i.item_id for i in response.items if i.item_id in row_of][:MAX_EXPLAINED]
        request = self.ranker.explanation_inputs(inputs, [row_of[i] for i in shown])
        if request is None:
            raise FailedPrecondition(f"the {self.ranker.name} ranker cannot explain its scores")
        try:
            with timed("triton_explain"):
                probabilities = np.asarray(self.triton.score(request, version, request_id=request_id).probabilities)
        except InferenceUnavailable as exc:  # the ranking stands; it just comes without its reasons
            logger.warning("explanations unavailable: %s", exc)
            return
        reasons = dict(zip(shown, self.ranker.explanations(shopper, shown, probabilities, items, self.features, version)))
        for item in response.items:
            for reason in reasons.get(item.item_id, []):
                item.reasons.add(kind=REASON_KINDS[reason.kind], attribution=reason.attribution, text=reason.text)

    @staticmethod
    def _answer(response: scoring_pb2.RankResponse, ranked: list[tuple[str, float]], items: dict, rules: Rules | None,
                top: int | None) -> scoring_pb2.RankResponse:
        """`response` with the best `top` of `ranked` (best first), placed by `rules` when given."""
        add = response.items.add
        if rules is None:
            for r, (item_id, probability) in enumerate(ranked[:top]):
                add(item_id=item_id, probability=probability, rank=r + 1)
            return response
        for r, slot in enumerate(arrange(ranked, items, rules, top or len(ranked))):
            add(item_id=slot.item_id, probability=slot.probability, rank=r + 1, placement=PLACEMENTS[slot.placement])
        return response

    @staticmethod
    def _request_id(given: str) -> str:
        if given:
            if reason := check_id(given, "request_id"):
                raise InvalidArgument(reason)
            return given
        return uuid.uuid4().hex


Answer = TypeVar("Answer", scoring_pb2.RecommendResponse, scoring_pb2.SimilarItemsResponse,
                  scoring_pb2.FrequentlyBoughtTogetherResponse, scoring_pb2.TrendingResponse)


def as_response(ranked: scoring_pb2.RankResponse, kind: type[Answer]) -> Answer:
    """The ranking as another RPC's response message: every ranking response has RankResponse's fields
    (per-RPC messages, buf's STANDARD style), so the bytes are the same."""
    return kind.FromString(ranked.SerializeToString())


SERVICE_NAMES = (scoring_pb2.DESCRIPTOR.services_by_name["ScoringService"].full_name,)


def create_server(settings: Settings, address: str = "127.0.0.1:0") -> tuple[grpc.Server, int, Any]:
    """(server, port, health) for the scoring service; not started. It needs Feast and Triton only; its
    health follows both (services.health_watch)."""
    ranker = get_ranker(settings.ranker)
    triton = TritonClickClient(settings.triton_grpc_url, settings.triton_timeout_s, ranker.model_name)
    from core.security import ensure_secrets

    ensure_secrets(settings)
    store = FeatureClient(settings)
    recorder = None
    if settings.record_served:
        import atexit

        from core.served_log import log_writer

        recorder = ServedRecorder(log_writer(settings.eventlog), on_drop=SERVED_LISTS_DROPPED.inc)
        atexit.register(recorder.close)  # the last lists reach the log at a graceful stop
    servicer = ScoringServicer(settings, CachedFeatures(store, settings.feature_cache_s), triton, ranker, Pseudonyms.of(settings), recorder)
    server, port, health = build_server([lambda s: scoring_pb2_grpc.add_ScoringServiceServicer_to_server(servicer, s)], SERVICE_NAMES, address,
                                        workers=settings.scoring_threads, settings=settings)
    watcher = TritonClickClient(settings.triton_grpc_url, 2.0, ranker.model_name)  # its own channel
    # NOT_SERVING while Triton serves no version of the model (Rank still answers, `degraded: true`, in
    # retrieval order) or the online store is gone
    start_watching([("Triton model", lambda: bool(watcher.serving_versions())), ("online store", store.reachable)], health, SERVICE_NAMES)
    return server, port, health


def serve(address: str) -> None:
    """One scoring process: build the server on `address` and serve until SIGTERM."""
    configure("scoring")
    server, port, health = create_server(load(), address)
    serve_until_signalled(server, health, f"scoring on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Scoring gRPC server")
    parser.add_argument("--address", default="127.0.0.1:50052")
    parser.add_argument("--metrics-address", default="", help="host:port for Prometheus /metrics (off when empty)")
    args = parser.parse_args()
    configure("scoring")
    settings = load()
    from core.security import ensure_secrets

    ensure_secrets(settings)  # once, before any child process reads them
    serve_processes(settings.scoring_processes, serve, args.address, "scoring", args.metrics_address)


if __name__ == "__main__":
    main()
