"""`ShopRankClient`: every shoprank RPC for a storefront (and its operators), torch-free.

Each call has a deadline (`timeout_s`, per client or per call) and is retried on UNAVAILABLE by gRPC's
retry policy (shoprank_client.channel: every RPC is idempotent). Rankings come back as typed
dataclasses; profiles, versions and jobs as the generated protobuf messages (typed by their .pyi).
Errors are `grpc.RpcError` with the server's status code and message (INVALID_ARGUMENT, NOT_FOUND...).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from shoprank.v1 import (
    common_pb2,
    feedback_pb2,
    feedback_pb2_grpc,
    model_admin_pb2,
    model_admin_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
    scoring_pb2,
    scoring_pb2_grpc,
)
from shoprank_client.channel import open_channel
from shoprank_client.enums import event_type_enum

PLACEMENTS = {common_pb2.PLACEMENT_UNSPECIFIED: "ranked", common_pb2.PLACEMENT_BOOSTED: "boosted", common_pb2.PLACEMENT_PINNED: "pinned"}
REASONS = {common_pb2.REASON_KIND_REPEAT: "repeat", common_pb2.REASON_KIND_TIMING: "timing", common_pb2.REASON_KIND_POPULARITY: "popularity",
           common_pb2.REASON_KIND_CO_PURCHASE: "co_purchase", common_pb2.REASON_KIND_TEXT: "text"}


@dataclass(frozen=True)
class Event:
    event_id: str  # unique per event: a retried batch is counted once
    user_id: str
    item_id: str
    event_type: str  # impression | click | add_to_cart | purchase
    timestamp: datetime | float  # aware datetime or epoch seconds
    request_id: str = ""  # the ranking response that showed the item


@dataclass(frozen=True)
class Item:
    item_id: str
    title: str
    description: str = ""
    category: str = ""
    price: float = 0.0
    out_of_stock: bool = False


@dataclass(frozen=True)
class Rules:
    """Recommend's rules (RecommendRules in protos/shoprank/v1/common.proto); pins are (item_id, position)."""

    exclude_purchased: bool = False
    exclude_seen_days: int = 0
    exclude_item_ids: Sequence[str] = ()
    include_categories: Sequence[str] = ()
    exclude_categories: Sequence[str] = ()
    boosted_item_ids: Sequence[str] = ()
    boost_share: float = 0.0
    pins: Sequence[tuple[str, int]] = ()
    max_per_category: int = 0
    distinct_titles: bool = False

    def message(self) -> common_pb2.RecommendRules:
        return common_pb2.RecommendRules(
            exclude_purchased=self.exclude_purchased, exclude_seen_days=self.exclude_seen_days, exclude_item_ids=list(self.exclude_item_ids),
            include_categories=list(self.include_categories), exclude_categories=list(self.exclude_categories),
            boosted_item_ids=list(self.boosted_item_ids), boost_share=self.boost_share,
            pins=[common_pb2.Pin(item_id=i, position=p) for i, p in self.pins], max_per_category=self.max_per_category,
            distinct_titles=self.distinct_titles)


@dataclass(frozen=True)
class Reason:
    kind: str  # repeat | timing | popularity | co_purchase | text
    attribution: float  # change of the probability this evidence causes on the served model
    text: str


@dataclass(frozen=True)
class RankedItem:
    item_id: str
    probability: float
    rank: int
    placement: str = "ranked"  # ranked | boosted | pinned
    score: float = 0.0  # item-to-item: similarity, co-purchase strength or trend ratio
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class Ranking:
    items: list[RankedItem]
    model_version: str  # empty when degraded
    request_id: str  # send it back on the events the answer leads to
    degraded: bool  # the model was unavailable: the order is retrieval's
    experiment_id: str = ""  # the running experiment the shopper is in ("" when none)
    arm: str = ""  # its arm that served this answer

    @classmethod
    def of(cls, reply: scoring_pb2.RankResponse) -> "Ranking":
        return cls([RankedItem(i.item_id, i.probability, i.rank, PLACEMENTS.get(i.placement, "ranked"), i.score,
                               tuple(Reason(REASONS.get(r.kind, "unknown"), r.attribution, r.text) for r in i.reasons))
                    for i in reply.items], reply.model_version, reply.request_id, reply.degraded, reply.experiment_id, reply.arm)


@dataclass(frozen=True)
class BatchResult:
    accepted: int  # events stored now, or items upserted / deleted
    duplicates: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (index, id, reason)
    fine_tune_job_id: str = ""
    features_pending: bool = False  # RecordEvents: stored, but the shopper features not refreshed yet (they follow)


def _timestamp(value: datetime | float) -> Timestamp:
    ts = Timestamp()
    if isinstance(value, datetime):
        ts.FromDatetime(value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc))
    else:
        ts.FromNanoseconds(int(round(float(value) * 1e9)))
    return ts


def _read(value: bytes | str | Path | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


class ShopRankClient:
    """One client for a deployment: `feedback` also serves the admin RPCs; `scoring` and `profile` may be
    omitted when unused (or all three may be one gateway address). `ca`: the deployment's CA (PEM bytes
    or a path; required unless `plaintext=True`), `api_key`: the storefront's or admin's key, `certificate`: (key, chain)
    for mutual TLS. `timeout_s`: each call's deadline; `retries`: extra attempts on UNAVAILABLE."""

    def __init__(self, feedback: str, scoring: str | None = None, profile: str | None = None, *, ca: bytes | str | Path | None = None,
                 api_key: str | None = None, certificate: tuple[bytes | str | Path, bytes | str | Path] | None = None,
                 timeout_s: float = 10.0, retries: int = 3, plaintext: bool = False) -> None:
        pair = (_read(certificate[0]) or b"", _read(certificate[1]) or b"") if certificate else None
        self.timeout_s = timeout_s
        self._channels: list[grpc.Channel] = []

        def channel(address: str) -> grpc.Channel:
            self._channels.append(open_channel(address, _read(ca), api_key, pair, retries=retries, plaintext=plaintext))
            return self._channels[-1]

        feedback_channel = channel(feedback)
        self._feedback = feedback_pb2_grpc.FeedbackServiceStub(feedback_channel)
        self._admin = model_admin_pb2_grpc.ModelAdminServiceStub(feedback_channel)
        self._scoring = scoring_pb2_grpc.ScoringServiceStub(channel(scoring)) if scoring else None
        self._profile = profile_pb2_grpc.ProfileServiceStub(channel(profile)) if profile else None

    def _deadline(self, timeout_s: float | None) -> float:
        return self.timeout_s if timeout_s is None else timeout_s

    def _scoring_stub(self) -> scoring_pb2_grpc.ScoringServiceStub:
        if self._scoring is None:
            raise ValueError("this client has no scoring address")
        return self._scoring

    # --- ingest ---------------------------------------------------------------------------------
    def record_events(self, events: Iterable[Event], timeout_s: float | None = None) -> BatchResult:
        request = feedback_pb2.RecordEventsRequest(events=[common_pb2.Event(
            event_id=e.event_id, user_id=e.user_id, item_id=e.item_id, event_type=event_type_enum(e.event_type), timestamp=_timestamp(e.timestamp),
            request_id=e.request_id) for e in events])
        reply = self._feedback.RecordEvents(request, timeout=self._deadline(timeout_s))
        return BatchResult(reply.accepted, reply.duplicates, [(r.index, r.id, r.reason) for r in reply.rejected], reply.fine_tune_job_id,
                           reply.features_pending)

    def upsert_items(self, items: Iterable[Item], timeout_s: float | None = None) -> BatchResult:
        request = feedback_pb2.UpsertItemsRequest(items=[common_pb2.Item(
            item_id=i.item_id, title=i.title, description=i.description, category=i.category, price=i.price,
            out_of_stock=i.out_of_stock) for i in items])
        reply = self._feedback.UpsertItems(request, timeout=self._deadline(timeout_s))
        return BatchResult(reply.upserted, 0, [(r.index, r.id, r.reason) for r in reply.rejected])

    def delete_items(self, item_ids: Iterable[str], timeout_s: float | None = None) -> BatchResult:
        reply = self._feedback.DeleteItems(feedback_pb2.DeleteItemsRequest(item_ids=list(item_ids)), timeout=self._deadline(timeout_s))
        return BatchResult(reply.deleted, 0, [(r.index, r.id, r.reason) for r in reply.rejected])

    # --- ranking --------------------------------------------------------------------------------
    def rank(self, user_id: str, item_ids: Sequence[str], *, explain: bool = False, request_id: str = "",
             timeout_s: float | None = None) -> Ranking:
        request = scoring_pb2.RankRequest(user_id=user_id, item_ids=list(item_ids), explain=explain, request_id=request_id)
        return Ranking.of(self._scoring_stub().Rank(request, timeout=self._deadline(timeout_s)))

    def recommend(self, user_id: str, k: int = 10, *, rules: Rules | None = None, explain: bool = False, request_id: str = "",
                  timeout_s: float | None = None) -> Ranking:
        request = scoring_pb2.RecommendRequest(user_id=user_id, k=k, rules=(rules or Rules()).message(), explain=explain,
                                               request_id=request_id)
        return Ranking.of(self._scoring_stub().Recommend(request, timeout=self._deadline(timeout_s)))

    def similar_items(self, item_id: str, k: int = 10, *, user_id: str = "", rules: Rules | None = None, request_id: str = "",
                      timeout_s: float | None = None) -> Ranking:
        request = scoring_pb2.SimilarItemsRequest(item_id=item_id, k=k, user_id=user_id, rules=(rules or Rules()).message(),
                                                  request_id=request_id)
        return Ranking.of(self._scoring_stub().SimilarItems(request, timeout=self._deadline(timeout_s)))

    def frequently_bought_together(self, item_ids: Sequence[str], k: int = 10, *, user_id: str = "", rules: Rules | None = None,
                                   request_id: str = "", timeout_s: float | None = None) -> Ranking:
        request = scoring_pb2.FrequentlyBoughtTogetherRequest(item_ids=list(item_ids), k=k, user_id=user_id,
                                                              rules=(rules or Rules()).message(), request_id=request_id)
        return Ranking.of(self._scoring_stub().FrequentlyBoughtTogether(request, timeout=self._deadline(timeout_s)))

    def trending(self, k: int = 10, *, user_id: str = "", rules: Rules | None = None, request_id: str = "",
                 timeout_s: float | None = None) -> Ranking:
        request = scoring_pb2.TrendingRequest(k=k, user_id=user_id, rules=(rules or Rules()).message(), request_id=request_id)
        return Ranking.of(self._scoring_stub().Trending(request, timeout=self._deadline(timeout_s)))

    # --- profiles -------------------------------------------------------------------------------
    def get_profile(self, user_id: str, timeout_s: float | None = None) -> profile_pb2.GetProfileResponse:
        if self._profile is None:
            raise ValueError("this client has no profile address")
        return self._profile.GetProfile(profile_pb2.GetProfileRequest(user_id=user_id), timeout=self._deadline(timeout_s))

    # --- operators (admin key) ------------------------------------------------------------------
    def list_versions(self, timeout_s: float | None = None) -> list[model_admin_pb2.ModelVersion]:
        return list(self._admin.ListVersions(model_admin_pb2.ListVersionsRequest(), timeout=self._deadline(timeout_s)).versions)

    def trigger_fine_tune(self, job_id: str = "", max_steps: int = 0, learning_rate: float = 0.0,
                          timeout_s: float | None = None) -> model_admin_pb2.TriggerFineTuneResponse:
        """A fine-tune; the job id is generated here when not given, so a retried call is the same job."""
        request = model_admin_pb2.TriggerFineTuneRequest(job_id=job_id or f"client-{uuid.uuid4().hex[:20]}", max_steps=max_steps,
                                                         learning_rate=learning_rate)
        return self._admin.TriggerFineTune(request, timeout=self._deadline(timeout_s))

    def get_job(self, job_id: str, timeout_s: float | None = None) -> model_admin_pb2.GetJobResponse:
        return self._admin.GetJob(model_admin_pb2.GetJobRequest(job_id=job_id), timeout=self._deadline(timeout_s))

    def rollback(self, version: str, timeout_s: float | None = None) -> model_admin_pb2.RollbackResponse:
        return self._admin.Rollback(model_admin_pb2.RollbackRequest(version=version), timeout=self._deadline(timeout_s))

    def forget_user(self, user_id: str, timeout_s: float | None = None) -> model_admin_pb2.ForgetUserResponse:
        return self._admin.ForgetUser(model_admin_pb2.ForgetUserRequest(user_id=user_id), timeout=self._deadline(timeout_s))

    def list_audit(self, limit: int = 100, timeout_s: float | None = None) -> list[model_admin_pb2.AuditEntry]:
        return list(self._admin.ListAudit(model_admin_pb2.ListAuditRequest(limit=limit), timeout=self._deadline(timeout_s)).entries)

    def list_segments(self, timeout_s: float | None = None) -> list[common_pb2.ShopperSegment]:
        return list(self._admin.ListSegments(model_admin_pb2.ListSegmentsRequest(), timeout=self._deadline(timeout_s)).segments)

    def close(self) -> None:
        for c in self._channels:
            c.close()

    def __enter__(self) -> "ShopRankClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
