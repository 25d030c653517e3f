"""Dev tooling: a small Python client of the suite (stubs on one channel each), used by the demo and the tests."""
from __future__ import annotations

from typing import Iterable, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from clickmodel.text import ItemText
from core.domain import Event
from shoprank.v1 import common_pb2, feedback_pb2, feedback_pb2_grpc, model_admin_pb2, model_admin_pb2_grpc, profile_pb2_grpc, scoring_pb2, scoring_pb2_grpc


def event_message(e: Event) -> common_pb2.Event:
    ts = Timestamp()
    ts.FromNanoseconds(int(round(e.timestamp * 1e9)))
    return common_pb2.Event(event_id=e.event_id, user_id=e.user_id, item_id=e.item_id, event_type=e.event_type, timestamp=ts, request_id=e.request_id)


def item_message(item_id: str, item: ItemText) -> common_pb2.Item:
    return common_pb2.Item(item_id=item_id, title=item.title, description=item.description, category=item.category, price=item.price)


class SuiteClient:
    def __init__(self, feedback: str, scoring: str | None = None, profile: str | None = None) -> None:
        self._channels = [grpc.insecure_channel(feedback)]
        self.feedback = feedback_pb2_grpc.FeedbackServiceStub(self._channels[0])
        self.admin = model_admin_pb2_grpc.ModelAdminServiceStub(self._channels[0])
        self.scoring = self.profile = None
        if scoring:
            self._channels.append(grpc.insecure_channel(scoring))
            self.scoring = scoring_pb2_grpc.ScoringServiceStub(self._channels[-1])
        if profile:
            self._channels.append(grpc.insecure_channel(profile))
            self.profile = profile_pb2_grpc.ProfileServiceStub(self._channels[-1])

    def upsert_items(self, items: dict[str, ItemText], batch: int = 500) -> int:
        ids = list(items)
        done = 0
        for i in range(0, len(ids), batch):
            reply = self.feedback.UpsertItems(feedback_pb2.UpsertItemsRequest(items=[item_message(k, items[k]) for k in ids[i : i + batch]]), timeout=60)
            done += reply.upserted
        return done

    def record_events(self, events: Sequence[Event], batch: int = 1000) -> tuple[int, int, int]:
        accepted = duplicates = rejected = 0
        for i in range(0, len(events), batch):
            reply = self.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(e) for e in events[i : i + batch]]), timeout=120)
            accepted, duplicates, rejected = accepted + reply.accepted, duplicates + reply.duplicates, rejected + len(reply.rejected)
        return accepted, duplicates, rejected

    def rank(self, user_id: str, item_ids: Iterable[str], request_id: str = "") -> scoring_pb2.RankResponse:
        assert self.scoring is not None
        return self.scoring.Rank(scoring_pb2.RankRequest(user_id=user_id, item_ids=list(item_ids), request_id=request_id), timeout=60)

    def recommend(self, user_id: str, k: int = 10, request_id: str = "") -> scoring_pb2.RankResponse:
        assert self.scoring is not None
        return self.scoring.Recommend(scoring_pb2.RecommendRequest(user_id=user_id, k=k, request_id=request_id), timeout=60)

    def trigger(self, job_id: str = "", max_steps: int = 0, learning_rate: float = 0.0) -> model_admin_pb2.Job:
        request = model_admin_pb2.TriggerFineTuneRequest(job_id=job_id, max_steps=max_steps, learning_rate=learning_rate)
        return self.admin.TriggerFineTune(request, timeout=30)

    def job(self, job_id: str) -> model_admin_pb2.Job:
        return self.admin.GetJob(model_admin_pb2.GetJobRequest(job_id=job_id), timeout=30)

    def close(self) -> None:
        for c in self._channels:
            c.close()
