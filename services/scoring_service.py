"""Scoring service: ranks candidates for a shopper with the click model on Triton.

Rank reads the shopper's history and the candidates' text from Feast and builds the model text with
the shared featurisation (clickmodel.text). With the fusion ranker (default) it adds the repeat /
recency / popularity / co-purchase signals from the event log and sends one request: the shopper's
text once, each candidate's text (Triton caches item embeddings) and the signals. With the
cross-encoder it sends one (user text, item text) pair per candidate.
Recommend puts candidate retrieval (the shopper's items, co-purchases, popular items) in front.
If Triton cannot answer, the response keeps the retrieval/request order and says `degraded`.
"""
from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from typing import Sequence

import grpc

from clickmodel.text import item_text, user_text
from clickmodel.tokenizer import encode_pairs
from services.config import Settings, load
from services.errors import FailedPrecondition, InvalidArgument, NotFound
from services.eventlog import EventLog
from services.features import FeatureClient
from services.fusion_inputs import FusionInputs, model_inputs
from services.grpc_server import build_server, serve_until_signalled
from services.triton_client import InferenceUnavailable, TritonClickClient
from services.validation import check_id, validate_rank_request
from shoprank.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc

logger = logging.getLogger(__name__)

RECOMMEND_CANDIDATES = 100
POPULAR_CACHE_S = 30.0


class ScoringServicer(scoring_pb2_grpc.ScoringServiceServicer):
    def __init__(self, settings: Settings, features: FeatureClient, triton: TritonClickClient, log: EventLog) -> None:
        self.settings = settings
        self.features = features
        self.triton = triton
        self.log = log
        self.fusion = FusionInputs(log) if settings.ranker == "fusion" else None
        self._popular: tuple[float, list[str]] = (0.0, [])
        self._lock = threading.Lock()

    def Rank(self, request: scoring_pb2.RankRequest, context: grpc.ServicerContext) -> scoring_pb2.RankResponse:
        candidates = validate_rank_request(request.user_id, list(request.item_ids), self.settings.max_candidates)
        return self.rank(request.user_id, candidates, self._request_id(request.request_id))

    def Recommend(self, request: scoring_pb2.RecommendRequest, context: grpc.ServicerContext) -> scoring_pb2.RankResponse:
        if reason := check_id(request.user_id, "user_id"):
            raise InvalidArgument(reason)
        k = request.k or 10
        if not 1 <= k <= 100:
            raise InvalidArgument(f"k {k} outside 1..100")
        purchases = self.fusion.history(request.user_id) if self.fusion is not None else None  # read once for both steps
        candidates = self.retrieve(request.user_id, purchases)
        if not candidates:
            raise FailedPrecondition("the catalogue is empty; upsert items first")
        response = self.rank(request.user_id, candidates, self._request_id(request.request_id), allow_unknown=True, purchases=purchases)
        del response.items[k:]
        return response

    def retrieve(self, user_id: str, purchases: list[tuple[str, float]] | None = None) -> list[str]:
        """The shopper's own items first, then co-purchased / popular items, then the rest of the catalogue."""
        if self.fusion is not None:
            found = self.fusion.retrieve(user_id, RECOMMEND_CANDIDATES, purchases)
            if len(found) < RECOMMEND_CANDIDATES:
                found = list(dict.fromkeys(found + self.popular()))[:RECOMMEND_CANDIDATES]
            return found
        user = self.features.get_user(user_id)
        own = [h.item_id for h in user.history] if user else []
        ordered = list(dict.fromkeys(own + self.popular()))
        return ordered[:RECOMMEND_CANDIDATES]

    def popular(self) -> list[str]:
        with self._lock:
            stamp, items = self._popular
            if time.monotonic() - stamp > POPULAR_CACHE_S or not items:
                items = self.log.popular_items(RECOMMEND_CANDIDATES)
                if len(items) < RECOMMEND_CANDIDATES:
                    items = list(dict.fromkeys(items + sorted(self.log.catalogue())))[:RECOMMEND_CANDIDATES]
                self._popular = (time.monotonic(), items)
            return items

    def rank(self, user_id: str, candidates: Sequence[str], request_id: str, allow_unknown: bool = False,
             purchases: list[tuple[str, float]] | None = None) -> scoring_pb2.RankResponse:
        user = self.features.get_user(user_id)
        history = user.history if user else []
        items = self.features.get_items(list(candidates) + [h.item_id for h in history])
        unknown = [c for c in candidates if c not in items]
        if unknown and not allow_unknown:
            raise NotFound(f"{len(unknown)} unknown item_ids: {', '.join(unknown[:5])}")
        candidates = [c for c in candidates if c in items]
        titles = {i: t.title for i, t in items.items()}
        utext = user_text(history, titles)
        texts = [item_text(items[c]) for c in candidates]
        if self.fusion is not None:
            inputs = model_inputs(utext, texts, self.fusion.signals(purchases if purchases is not None else self.fusion.history(user_id), candidates))
        else:
            inputs = encode_pairs([utext] * len(candidates), texts, self.settings.max_length)
        try:
            scores = self.triton.score(inputs)
        except InferenceUnavailable as exc:
            logger.warning("Triton unavailable, answering degraded: %s", exc)
            return scoring_pb2.RankResponse(
                items=[common_pb2.ScoredItem(item_id=c, probability=0.0, rank=i + 1) for i, c in enumerate(candidates)],
                request_id=request_id,
                degraded=True,
            )
        order = sorted(range(len(candidates)), key=lambda i: (-scores.probabilities[i], i))
        return scoring_pb2.RankResponse(
            items=[common_pb2.ScoredItem(item_id=candidates[i], probability=float(scores.probabilities[i]), rank=r + 1) for r, i in enumerate(order)],
            model_version=scores.model_version,
            request_id=request_id,
        )

    @staticmethod
    def _request_id(given: str) -> str:
        if given:
            if reason := check_id(given, "request_id"):
                raise InvalidArgument(reason)
            return given
        return uuid.uuid4().hex


SERVICE_NAMES = (scoring_pb2.DESCRIPTOR.services_by_name["ScoringService"].full_name,)


def create_server(settings: Settings, address: str = "127.0.0.1:0"):  # type: ignore[no-untyped-def]
    servicer = ScoringServicer(settings, FeatureClient(settings), TritonClickClient(settings.triton_grpc_url, settings.triton_timeout_s, settings.model_name), EventLog(settings.eventlog))
    return build_server([lambda s: scoring_pb2_grpc.add_ScoringServiceServicer_to_server(servicer, s)], SERVICE_NAMES, address)


def main() -> None:
    parser = argparse.ArgumentParser(description="Scoring gRPC server")
    parser.add_argument("--address", default="127.0.0.1:50052")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s scoring %(levelname)s %(name)s: %(message)s")
    server, port, health = create_server(load(), args.address)
    serve_until_signalled(server, health, f"scoring on {port}")


if __name__ == "__main__":
    main()
