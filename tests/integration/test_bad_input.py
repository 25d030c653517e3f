"""Bad input gets a clear status or a per-item rejection, and the services keep serving."""
from __future__ import annotations

import time

import grpc
import pytest

from core.domain import Event
from devtools.client import event_message
from devtools.suite import grpc_serving
from shoprank.v1 import common_pb2, feedback_pb2, model_admin_pb2, profile_pb2, scoring_pb2

pytestmark = pytest.mark.integration


def status_of(call, *args):
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=30)
    assert "Traceback" not in (info.value.details() or "")
    return info.value.code(), info.value.details()


def rank_request(user="u-bad", items=("SKU0001",)):
    return scoring_pb2.RankRequest(user_id=user, item_ids=list(items))


def test_rank_rejects_bad_requests(client):
    assert status_of(client.scoring.Rank, rank_request(items=[]))[0] == grpc.StatusCode.INVALID_ARGUMENT
    code, msg = status_of(client.scoring.Rank, rank_request(items=[f"SKU{i:04d}" for i in range(51)]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "at most 50" in msg
    code, msg = status_of(client.scoring.Rank, rank_request(items=["SKU0001", "NOPE-1", "NOPE-2"]))
    assert code == grpc.StatusCode.NOT_FOUND and "NOPE-1" in msg and "NOPE-2" in msg
    code, msg = status_of(client.scoring.Rank, rank_request(user=""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "user_id" in msg
    code, msg = status_of(client.scoring.Rank, rank_request(items=["SKU0001", "SKU0001"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "duplicate" in msg
    code, _ = status_of(client.scoring.Recommend, scoring_pb2.RecommendRequest(user_id="u", k=1000))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_user_without_history_still_gets_a_ranking(client):
    reply = client.rank("never-seen-before", ["SKU0001", "SKU1001", "SKU2001"])
    assert reply.model_version and len(reply.items) == 3 and not reply.degraded


def test_recommend_returns_top_k_from_retrieval(client):
    reply = client.scoring.Recommend(scoring_pb2.RecommendRequest(user_id="U0001", k=5), timeout=60)
    assert len(reply.items) == 5 and reply.model_version and reply.request_id
    assert len({i.item_id for i in reply.items}) == 5


def test_mixed_event_batch_keeps_good_ones_and_reports_each_bad_one(client):
    now = time.time()
    good = [Event(f"mix-good-{i}", "mix-user", "SKU0001", "click", now - 100 + i) for i in range(2)]
    events = [event_message(e) for e in good]
    future = event_message(Event("mix-future", "mix-user", "SKU0001", "click", now + 86400))
    malformed = event_message(Event("mix-nanos", "mix-user", "SKU0001", "click", now))
    malformed.timestamp.nanos = -1
    unknown = event_message(Event("mix-unknown", "mix-user", "NOPE", "click", now))
    no_time = common_pb2.Event(event_id="mix-notime", user_id="mix-user", item_id="SKU0001", event_type=common_pb2.EVENT_TYPE_CLICK)
    no_user = event_message(Event("mix-nouser", "", "SKU0001", "click", now))
    bad_type = event_message(Event("mix-type", "mix-user", "SKU0001", "click", now))
    bad_type.event_type = 42  # a number this version's EventType does not have
    batch = [events[0], future, malformed, unknown, no_time, no_user, bad_type, events[1]]
    reply = client.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=batch), timeout=30)
    assert reply.accepted == 2 and reply.duplicates == 0
    reasons = {r.index: (r.id, r.reason) for r in reply.rejected}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert "future" in reasons[1][1] and "malformed" in reasons[2][1] and "unknown item_id" in reasons[3][1]
    assert "missing timestamp" in reasons[4][1] and "missing user_id" in reasons[5][1] and "event_type 42" in reasons[6][1]
    # the good ones are in the shopper's profile
    profile = client.profile.GetProfile(profile_pb2.GetProfileRequest(user_id="mix-user"), timeout=30)
    assert profile.event_count == 2


def test_duplicate_event_ids_are_counted_once(client):
    now = time.time()
    e = event_message(Event("dup-1", "dup-user", "SKU0001", "purchase", now - 5))
    reply = client.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[e, e]), timeout=30)
    assert (reply.accepted, reply.duplicates) == (1, 1)
    reply = client.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[e]), timeout=30)
    assert (reply.accepted, reply.duplicates) == (0, 1)
    profile = client.profile.GetProfile(profile_pb2.GetProfileRequest(user_id="dup-user"), timeout=30)
    assert profile.purchase_count == 1 and profile.recent_items[0].item_id == "SKU0001"


def test_feedback_rejects_empty_batches_and_bad_items(client):
    assert status_of(client.feedback.RecordEvents, feedback_pb2.RecordEventsRequest())[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(client.feedback.UpsertItems, feedback_pb2.UpsertItemsRequest())[0] == grpc.StatusCode.INVALID_ARGUMENT
    reply = client.feedback.UpsertItems(
        feedback_pb2.UpsertItemsRequest(items=[common_pb2.Item(item_id="ok-item", title="Fine"), common_pb2.Item(item_id="no-title")]), timeout=30
    )
    assert reply.upserted == 1 and [(r.index, r.reason) for r in reply.rejected] == [(1, "missing title")]


def test_profile_and_admin_errors(client):
    assert status_of(client.profile.GetProfile, profile_pb2.GetProfileRequest(user_id="nobody-here"))[0] == grpc.StatusCode.NOT_FOUND
    assert status_of(client.profile.GetProfile, profile_pb2.GetProfileRequest())[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(client.admin.GetJob, model_admin_pb2.GetJobRequest(job_id="no-such-job"))[0] == grpc.StatusCode.NOT_FOUND
    code, msg = status_of(client.admin.TriggerFineTune, model_admin_pb2.TriggerFineTuneRequest(max_steps=-3))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "max_steps" in msg
    # issue 10: version strings that str.isdigit() accepts, and ids that would walk the file system
    for version in ("²", "①", "٢", "9" * 5000):
        code, msg = status_of(client.admin.Rollback, model_admin_pb2.RollbackRequest(version=version))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and len(msg) < 200, (version[:5], msg[:300])
    code, msg = status_of(client.admin.TriggerFineTune, model_admin_pb2.TriggerFineTuneRequest(job_id="x/../../../../outside"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "job_id" in msg
    # bytes of another message are not a fine-tune request (raw call: the Item's bytes on the admin method)
    trigger = client._channels[0].unary_unary("/shoprank.v1.ModelAdminService/TriggerFineTune",
                                              request_serializer=lambda m: m.SerializeToString(),
                                              response_deserializer=model_admin_pb2.TriggerFineTuneResponse.FromString)
    code, msg = status_of(trigger, common_pb2.Item(item_id="x", title="not a job", price=3.0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "does not know" in msg


def test_services_keep_serving_after_bad_input(client, serving_suite):
    for name, service in (("feedback", "shoprank.v1.FeedbackService"), ("scoring", "shoprank.v1.ScoringService"), ("profile", "shoprank.v1.ProfileService")):
        assert grpc_serving(serving_suite.address(name), service, serving_suite.credentials())
    assert client.rank("U0001", ["SKU0001", "SKU1001"]).model_version == "1"
