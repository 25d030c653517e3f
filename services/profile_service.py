"""Profile service: a shopper's portrait from the online feature store."""
from __future__ import annotations

import argparse
import logging
from collections import Counter
from typing import Any

import grpc

from core.errors import InvalidArgument, NotFound
from core.features import FeatureClient, OnlineFeatures
from core.log_format import configure
from core.privacy import Pseudonyms
from core.settings import Settings, load
from services.grpc_server import build_server, serve_until_signalled
from services.health_watch import start_watching
from services.messages import ts
from services.metrics import serve_metrics
from services.validation import check_id, shown
from shoprank.v1 import profile_pb2, profile_pb2_grpc

logger = logging.getLogger(__name__)


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, features: OnlineFeatures, pseudonyms: Pseudonyms) -> None:
        self.features = features
        self.pseudonyms = pseudonyms

    def GetProfile(self, request: profile_pb2.GetProfileRequest, context: grpc.ServicerContext) -> profile_pb2.Profile:
        if reason := check_id(request.user_id, "user_id"):
            raise InvalidArgument(reason)
        user = self.features.get_user(self.pseudonyms(request.user_id))
        if user is None:
            raise NotFound(f"no profile for user {shown(request.user_id)} (no events recorded)")
        items = {i: f.text for i, f in self.features.get_items([i for i, _ in user.recent]).items()}
        categories = Counter(items[i].category for i, _ in user.recent if i in items and items[i].category)
        total = sum(categories.values())
        return profile_pb2.Profile(
            user_id=request.user_id,
            recent_items=[
                profile_pb2.RecentItem(item_id=i, title=items[i].title if i in items else "", event_type=t)
                for i, t in user.recent
            ],
            event_count=user.event_count,
            purchase_count=user.purchase_count,
            last_event_time=ts(user.last_event_ts),
            top_categories=[profile_pb2.CategoryShare(category=c, share=n / total) for c, n in categories.most_common(5)],
        )


SERVICE_NAMES = (profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,)


def create_server(settings: Settings, address: str = "127.0.0.1:0") -> tuple[grpc.Server, int, Any]:
    from core.security import ensure_secrets

    ensure_secrets(settings)
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
    server, port, health = create_server(load(), args.address)
    if args.metrics_address:
        serve_metrics(args.metrics_address)
    serve_until_signalled(server, health, f"profile on {port}")


if __name__ == "__main__":
    main()
