"""Scoring service: the gRPC edge of the ranking pipeline (ranking/).

Each RPC validates its request, pseudonymises the shopper, asks the router (ranking.routing) which
served version answers them (their experiment arm's, or the primary one), runs the pipeline
(ranking.pipeline: the ranker's features from Feast, retrieval, rules, one Triton request, arrangement,
explanations) and turns the resulting `Ranking` into the RPC's response message. If Triton cannot
answer, the answer keeps the retrieval/request order and says `degraded`. Every answer for a shopper
names the experiment arm that served it and is handed to a background recorder (core/served_log.py)
for attribution: the only table this process touches, written off the request path and never read.
It imports no torch.
"""
from __future__ import annotations

import argparse
import logging
import uuid
from typing import Any, Callable, TypeVar

import grpc

from core import background, log_format, tracing
from core.errors import InvalidArgument
from core.feature_cache import CachedFeatures
from core.features import FeatureClient
from core.ids import check_id
from core.log_format import bound, configure
from core.privacy import Pseudonyms
from core.served_log import ServedRecorder
from core.settings import Settings, load
from core.triton_client import triton_client
from rankers import get_ranker
from ranking.pipeline import Ranking, RankingPipeline
from ranking.routing import Route, Router, Shadows
from services.grpc_server import build_server, serve_processes, serve_until_signalled
from services.health_watch import start_watching
from services.metrics import DEGRADED_ANSWERS, EXPERIMENT_ANSWERS, SERVED_LISTS_DROPPED, SERVING_VERSION, timed
from services.validation import validate_rank_request, validate_rules
from shoprank.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc

logger = logging.getLogger(__name__)

RECOMMEND_CANDIDATES = 200  # retrieved, then ranked, for the k that Recommend returns
RELATED_CANDIDATES = 200  # of an item-to-item table, filtered by the rules and (with a shopper) ranked
MAX_SEED_ITEMS = 50  # FrequentlyBoughtTogether's basket
REASON_KINDS = {"repeat": common_pb2.REASON_KIND_REPEAT, "timing": common_pb2.REASON_KIND_TIMING,
                "popularity": common_pb2.REASON_KIND_POPULARITY, "co_purchase": common_pb2.REASON_KIND_CO_PURCHASE,
                "text": common_pb2.REASON_KIND_TEXT}
PLACEMENTS = {"ranked": common_pb2.PLACEMENT_UNSPECIFIED, "boosted": common_pb2.PLACEMENT_BOOSTED, "pinned": common_pb2.PLACEMENT_PINNED}
RELATED_RPC = {"similar": "SimilarItems", "co_purchase": "FrequentlyBoughtTogether", "trending": "Trending"}


class ScoringServicer(scoring_pb2_grpc.ScoringServiceServicer):
    """The gRPC edge: validate, pseudonymise, route, run the pipeline, convert to protobuf."""

    def __init__(self, settings: Settings, pipeline: RankingPipeline, router: Router, shadows: Shadows, pseudonyms: Pseudonyms) -> None:
        self.settings = settings
        self.pseudonyms = pseudonyms  # the online store knows shoppers by keyed hash only
        self.pipeline = pipeline
        self.router = router
        self.shadows = shadows

    def Rank(self, request: scoring_pb2.RankRequest, context: grpc.ServicerContext) -> scoring_pb2.RankResponse:
        candidates = validate_rank_request(request.user_id, list(request.item_ids), self.settings.max_candidates)
        request_id = self._request_id(request.request_id)
        tracing.annotate(request_id=request_id)
        with bound(log_format.request_id, request_id):  # every log line of this call carries it
            key = self.pseudonyms(request.user_id)
            route = self.router.route(key)
            pipeline = self.pipeline
            ranking = pipeline.rank(pipeline.shopper(key, route.version), candidates, request_id, route.version, explain=request.explain)
            return as_response(self._served(ranking, key, route, "Rank", lambda version: pipeline.rank(
                pipeline.shopper(key, version), candidates, request_id, version)), scoring_pb2.RankResponse)

    def Recommend(self, request: scoring_pb2.RecommendRequest, context: grpc.ServicerContext) -> scoring_pb2.RecommendResponse:
        if reason := check_id(request.user_id, "user_id"):
            raise InvalidArgument(reason)
        k = self._k(request.k)
        rules = validate_rules(request.rules, k)
        request_id = self._request_id(request.request_id)
        tracing.annotate(request_id=request_id)
        with bound(log_format.request_id, request_id):
            key = self.pseudonyms(request.user_id)
            route = self.router.route(key)
            pipeline = self.pipeline
            shopper = pipeline.shopper(key, route.version)
            candidates = pipeline.candidates(shopper, RECOMMEND_CANDIDATES, rules)
            ranking = pipeline.rank(shopper, candidates, request_id, route.version, allow_unknown=True, top=k, rules=rules, explain=request.explain)
            ranking = self._served(ranking, key, route, "Recommend", lambda v: pipeline.rank(
                pipeline.shopper(key, v), candidates, request_id, v, allow_unknown=True, top=k, rules=rules))
            return as_response(ranking, scoring_pb2.RecommendResponse)

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

    def _related(self, request: Any, kind: str, seeds: list[str]) -> Ranking:
        """One of the serving version's neighbour tables (or the shop's trending list), filtered and
        arranged by the request's rules; ordered by the model for the shopper when a user_id is given."""
        k = self._k(request.k)
        if request.user_id and (reason := check_id(request.user_id, "user_id")):
            raise InvalidArgument(reason)
        rules = validate_rules(request.rules, k)
        request_id = self._request_id(request.request_id)
        tracing.annotate(request_id=request_id)
        with bound(log_format.request_id, request_id):
            key = self.pseudonyms(request.user_id) if request.user_id else ""
            route = self.router.route(key)
            pipeline = self.pipeline
            shopper = pipeline.shopper(key, route.version) if key else None
            ranking, candidates = pipeline.related(kind, seeds, shopper, rules, k, request_id, route.version, RELATED_CANDIDATES)
            if not key:
                return ranking
            return self._served(ranking, key, route, RELATED_RPC[kind], lambda v: pipeline.rank(
                pipeline.shopper(key, v), candidates, request_id, v, allow_unknown=True, top=k, rules=rules) if candidates else
                Ranking([], request_id))

    def _served(self, ranking: Ranking, user_key: str, route: Route, rpc: str, rerank: Callable[[str], Ranking]) -> Ranking:
        ranking = self.shadows.served(ranking, user_key, route, rpc, rerank)
        EXPERIMENT_ANSWERS.labels(route.experiment_id, route.arm, ranking.model_version).inc()
        return ranking

    @staticmethod
    def _k(k: int) -> int:
        k = k or 10
        if not 1 <= k <= 100:
            raise InvalidArgument(f"k {k} outside 1..100")
        return k

    @staticmethod
    def _request_id(given: str) -> str:
        if given:
            if reason := check_id(given, "request_id"):
                raise InvalidArgument(reason)
            return given
        return uuid.uuid4().hex


Answer = TypeVar("Answer", scoring_pb2.RankResponse, scoring_pb2.RecommendResponse, scoring_pb2.SimilarItemsResponse,
                  scoring_pb2.FrequentlyBoughtTogetherResponse, scoring_pb2.TrendingResponse)


def as_response(ranking: Ranking, kind: type[Answer]) -> Answer:
    """The ranking as one RPC's response message (every ranking response has RankResponse's fields:
    per-RPC messages, buf's STANDARD style). The only place a Ranking becomes protobuf."""
    response = kind(model_version=ranking.model_version, request_id=ranking.request_id, degraded=ranking.degraded,
                    experiment_id=ranking.experiment_id, arm=ranking.arm, shopper_state=ranking.shopper_state)
    for r, item in enumerate(ranking.items):
        added = response.items.add(item_id=item.item_id, probability=item.probability, rank=r + 1,
                                    placement=PLACEMENTS[item.placement], score=item.score)
        for reason in item.reasons:
            added.reasons.add(kind=REASON_KINDS[reason.kind], attribution=reason.attribution, text=reason.text)
    return response


SERVICE_NAMES = (scoring_pb2.DESCRIPTOR.services_by_name["ScoringService"].full_name,)


def create_server(settings: Settings, address: str = "127.0.0.1:0") -> tuple[grpc.Server, int, Any]:
    """(server, port, health) for the scoring service; not started. It needs Feast and Triton only; its
    health follows both (services.health_watch)."""
    ranker = get_ranker(settings.ranker)
    from core.security import ensure_secrets

    ensure_secrets(settings)
    background.configure(settings.background_nice)
    triton = triton_client(settings, ranker.model_name)
    store = FeatureClient(settings)
    recorder = None
    if settings.record_served:
        import atexit

        from core.served_log import log_writer

        recorder = ServedRecorder(log_writer(settings.eventlog), on_drop=SERVED_LISTS_DROPPED.inc)
        atexit.register(recorder.close)  # the last lists reach the log at a graceful stop
    pipeline = RankingPipeline(settings, CachedFeatures.for_settings(store, settings), triton, ranker, timed=timed, on_degraded=DEGRADED_ANSWERS.inc)
    router = Router(triton, on_primary=lambda version: SERVING_VERSION.labels(ranker.model_name).set(int(version)))
    servicer = ScoringServicer(settings, pipeline, router, Shadows(recorder), Pseudonyms.of(settings))
    server, port, health = build_server([lambda s: scoring_pb2_grpc.add_ScoringServiceServicer_to_server(servicer, s)], SERVICE_NAMES, address,
                                        workers=settings.scoring_threads, settings=settings)
    watcher = triton_client(settings, ranker.model_name, timeout_s=2.0)  # its own channel
    # NOT_SERVING while Triton serves no version of the model (Rank still answers, `degraded: true`, in
    # retrieval order) or the online store is gone
    start_watching([("Triton model", lambda: bool(watcher.serving_versions())), ("online store", store.reachable)], health, SERVICE_NAMES)
    return server, port, health


def serve(address: str) -> None:
    """One scoring process: build the server on `address` and serve until SIGTERM."""
    configure("scoring")
    settings = load()
    server, port, health = create_server(settings, address)
    serve_until_signalled(server, health, f"scoring on {port}", gc_freeze_s=settings.gc_freeze_s)


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
