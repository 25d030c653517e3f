"""Living profiles through real gRPC: GetProfile's short vs long term, drift, activity and segment,
read from Feast after the segmentation task ran on the suite's event log; ListSegments (admin)."""
from __future__ import annotations

import time

import grpc
import pytest

from core.domain import Event
from core.features import FeatureClient
from core.store import EventLog
from shoprank.v1 import model_admin_pb2, profile_pb2
from workers.segments import segment_shoppers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def segmented(serving_suite):
    settings = serving_suite.settings()
    return segment_shoppers(EventLog.open(settings.eventlog), FeatureClient(settings), segments=4)


def test_segments_cover_every_shopper_and_are_listed_for_admins(serving_suite, client, segmented, shop):
    shoppers = {e.user_id for e in shop.split(0.6)[0] if e.event_type in ("click", "add_to_cart", "purchase")}
    assert segmented and sum(s.size for s in segmented) >= len(shoppers)
    listed = client.admin.ListSegments(model_admin_pb2.ListSegmentsRequest(), timeout=30)
    assert [(s.segment_id, s.name, s.size) for s in listed.segments] == [(s.segment_id, s.name, s.size) for s in segmented]
    assert listed.segmented_at.seconds > 0 and [s.size for s in listed.segments] == sorted((s.size for s in listed.segments), reverse=True)
    storefront = serving_suite.client(role="storefront")
    with pytest.raises(grpc.RpcError) as raised:
        storefront.admin.ListSegments(model_admin_pb2.ListSegmentsRequest(), timeout=30)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    storefront.close()


def test_profile_says_what_the_shopper_likes_now_and_over_time(client, segmented, shop):
    # Other tests record events at today's time, which moves the shop's clock past the synthetic history:
    # two clicks now make "the last 30 days" hold something whatever ran before.
    now = time.time()
    clicks = [Event(f"profile-now-{k}-{now}", "U0001", item, "click", now - 60 + k) for k, item in enumerate(["SKU7001", "SKU7002"])]
    assert client.record_events(clicks)[0] == 2
    profile = client.profile.GetProfile(profile_pb2.GetProfileRequest(user_id="U0001"), timeout=30)
    assert profile.long_term.events > profile.short_term.events >= 2
    assert {i.item_id for i in profile.short_term.representative_items} >= {"SKU7001", "SKU7002"}
    assert profile.drift > 0  # the two new clicks are of another category than the history's mix
    shares = [c.share for c in profile.long_term.categories]
    assert shares and shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-6
    assert profile.long_term.price_band and profile.long_term.median_price > 0
    assert profile.long_term.representative_items[0].title
    assert 0.0 <= profile.drift <= 1.0
    assert profile.activity != profile_pb2.ACTIVITY_LEVEL_NEW and profile.activity != profile_pb2.ACTIVITY_LEVEL_DORMANT
    assert profile.HasField("segment") and profile.segment.name in {s.name for s in segmented} and profile.segment.size > 0
    favourite = shop.items[profile.long_term.representative_items[0].item_id].category
    assert favourite in {c.category for c in profile.long_term.categories}
