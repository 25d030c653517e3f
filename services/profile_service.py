"""Profile service: a shopper's living portrait from the online feature store (core/portrait.py): recent
items and counts, short-term against long-term interests, their drift, activity and segment."""
from __future__ import annotations

import argparse
import logging
from collections import Counter
from typing import Any

import grpc

from core import background
from core.domain import ItemText
from core.errors import InvalidArgument, NotFound
from core.features import FeatureClient
from core.ids import check_id
from core.log_format import configure
from core.portrait import Interests, portrait
from core.privacy import Pseudonyms
from core.settings import Settings, load
from services.grpc_server import build_server, serve_until_signalled
from services.health_watch import start_watching
from services.messages import ts
from services.metrics import serve_metrics
from shoprank.v1 import common_pb2, profile_pb2, profile_pb2_grpc
from shoprank_client.enums import event_type_enum

logger = logging.getLogger(__name__)


PORTRAIT_ITEMS = 500  # distinct items of the shopper's interest events read for the portrait, newest first
ACTIVITY = {"new": profile_pb2.ACTIVITY_LEVEL_NEW, "dormant": profile_pb2.ACTIVITY_LEVEL_DORMANT,
            "occasional": profile_pb2.ACTIVITY_LEVEL_OCCASIONAL, "regular": profile_pb2.ACTIVITY_LEVEL_REGULAR,
            "frequent": profile_pb2.ACTIVITY_LEVEL_FREQUENT}


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, features: FeatureClient, pseudonyms: Pseudonyms) -> None:
        self.features = features
        self.pseudonyms = pseudonyms

    def GetProfile(self, request: profile_pb2.GetProfileRequest, context: grpc.ServicerContext) -> profile_pb2.GetProfileResponse:
        if reason := check_id(request.user_id, "user_id"):
            raise InvalidArgument(reason)
        key = self.pseudonyms(request.user_id)
        user = self.features.get_user(key)
        if user is None:
            raise NotFound("no profile for this user_id (no events recorded)")
        wanted = list(dict.fromkeys([i for i, _ in user.recent] + [i for i, _ in user.interests]))[:PORTRAIT_ITEMS]
        known = {i: f.text for i, f in self.features.get_items(wanted).items()}
        interests = [(i, ts_) for i, ts_ in user.interests if i in known] if user.interests else []
        clock = max(self.features.get_shop().clock, user.last_event_ts)
        picture = portrait(interests, known, clock)
        categories = Counter(known[i].category for i, _ in user.recent if i in known and known[i].category)
        total = sum(categories.values())
        profile = profile_pb2.GetProfileResponse(
            user_id=request.user_id,
            recent_items=[
                profile_pb2.RecentItem(item_id=i, title=known[i].title if i in known else "", event_type=event_type_enum(t))
                for i, t in user.recent
            ],
            event_count=user.event_count,
            purchase_count=user.purchase_count,
            last_event_time=ts(user.last_event_ts),
            top_categories=[profile_pb2.CategoryShare(category=c, share=n / total) for c, n in categories.most_common(5)],
            short_term=interests_message(picture.short_term, known),
            long_term=interests_message(picture.long_term, known),
            drift=picture.drift,
            activity=ACTIVITY[picture.activity],
        )
        segment_id = self.features.get_segment(key)
        if segment_id is not None:
            segments = {s.segment_id: s for s in self.features.get_segments()[0]}
            if segment_id in segments:
                s_ = segments[segment_id]
                profile.segment.CopyFrom(common_pb2.ShopperSegment(segment_id=s_.segment_id, name=s_.name, size=s_.size))
        return profile


def interests_message(summary: Interests, items: dict[str, ItemText]) -> profile_pb2.Interests:
    return profile_pb2.Interests(
        events=summary.events,
        categories=[profile_pb2.CategoryShare(category=c, share=share) for c, share in summary.categories],
        median_price=summary.median_price, price_band=summary.price_band,
        representative_items=[profile_pb2.RecentItem(item_id=i, title=items[i].title if i in items else "") for i in summary.representative],
    )


SERVICE_NAMES = (profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,)


def create_server(settings: Settings, address: str = "127.0.0.1:0") -> tuple[grpc.Server, int, Any]:
    from core.security import ensure_secrets

    ensure_secrets(settings)
    background.configure(settings.background_nice)
    store = FeatureClient(settings)
    servicer = ProfileServicer(store, Pseudonyms.of(settings))
    server, port, health = build_server([lambda s: profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, s)], SERVICE_NAMES,
                                        address, settings=settings)
    start_watching([("online store", store.reachable)], health, SERVICE_NAMES)  # NOT_SERVING while it is gone
    return server, port, health


def main() -> None:
    parser = argparse.ArgumentParser(description="Profile gRPC server")
    parser.add_argument("--address", default="127.0.0.1:50053")
    parser.add_argument("--metrics-address", default="", help="host:port for Prometheus /metrics (off when empty)")
    args = parser.parse_args()
    configure("profile")
    settings = load()
    server, port, health = create_server(settings, args.address)
    if args.metrics_address:
        serve_metrics(args.metrics_address)
    serve_until_signalled(server, health, f"profile on {port}", gc_freeze_s=settings.gc_freeze_s)


if __name__ == "__main__":
    main()
