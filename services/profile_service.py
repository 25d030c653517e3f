"""Profile service: a shopper's portrait from the online feature store."""
from __future__ import annotations

import argparse
import logging
from collections import Counter

import grpc

from services.config import Settings, load
from services.errors import InvalidArgument, NotFound
from services.features import FeatureClient
from services.grpc_server import build_server, serve_until_signalled
from services.model_admin import ts
from services.validation import check_id
from shoprank.v1 import profile_pb2, profile_pb2_grpc

logger = logging.getLogger(__name__)


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, features: FeatureClient) -> None:
        self.features = features

    def GetProfile(self, request: profile_pb2.GetProfileRequest, context: grpc.ServicerContext) -> profile_pb2.Profile:
        if reason := check_id(request.user_id, "user_id"):
            raise InvalidArgument(reason)
        user = self.features.get_user(request.user_id)
        if user is None:
            raise NotFound(f"no profile for user {request.user_id!r} (no events recorded)")
        items = self.features.get_items([h.item_id for h in user.history])
        categories = Counter(items[h.item_id].category for h in user.history if h.item_id in items and items[h.item_id].category)
        total = sum(categories.values())
        return profile_pb2.Profile(
            user_id=request.user_id,
            recent_items=[
                profile_pb2.RecentItem(item_id=h.item_id, title=items[h.item_id].title if h.item_id in items else "", event_type=h.event_type)
                for h in user.history
            ],
            event_count=user.event_count,
            purchase_count=user.purchase_count,
            last_event_time=ts(user.last_event_ts),
            top_categories=[profile_pb2.CategoryShare(category=c, share=n / total) for c, n in categories.most_common(5)],
        )


SERVICE_NAMES = (profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,)


def create_server(settings: Settings, address: str = "127.0.0.1:0"):  # type: ignore[no-untyped-def]
    servicer = ProfileServicer(FeatureClient(settings))
    return build_server([lambda s: profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, s)], SERVICE_NAMES, address)


def main() -> None:
    parser = argparse.ArgumentParser(description="Profile gRPC server")
    parser.add_argument("--address", default="127.0.0.1:50053")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s profile %(levelname)s %(name)s: %(message)s")
    server, port, health = create_server(load(), args.address)
    serve_until_signalled(server, health, f"profile on {port}")


if __name__ == "__main__":
    main()
