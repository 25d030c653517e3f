"""shoprank_client against the running suite over TLS with API keys: every RPC a storefront has, and
the operators' RPCs with the admin key (issue 14)."""
from __future__ import annotations

import time

import grpc
import pytest

from shoprank_client import Event, Item, Rules, ShopRankClient

pytestmark = pytest.mark.integration


def client_of(suite, role: str) -> ShopRankClient:
    settings = suite.settings()
    key = (settings.secrets_path / f"{role}.key").read_text().strip()
    return ShopRankClient(suite.address("feedback"), suite.address("scoring"), suite.address("profile"),
                          ca=settings.ca_cert, api_key=key, timeout_s=30)


def test_every_storefront_rpc(serving_suite):
    with client_of(serving_suite, "storefront") as shop:
        assert shop.upsert_items([Item("CLIENT-1", "Client Test Mug", category="kitchen", price=3.5)]).accepted == 1
        page = shop.recommend("U0001", k=5, rules=Rules(exclude_purchased=True), explain=True)
        assert len(page.items) == 5 and page.model_version and page.items[0].reasons
        ranked = shop.rank("U0001", ["SKU0001", "CLIENT-1"])
        assert {i.item_id for i in ranked.items} == {"SKU0001", "CLIENT-1"} and not ranked.degraded
        event = Event(f"client-{time.time_ns()}", "client-user", "CLIENT-1", "click", time.time() - 5, ranked.request_id)
        assert shop.record_events([event]).accepted == 1
        assert shop.record_events([event]).duplicates == 1  # a retried batch is counted once
        assert len(shop.similar_items("SKU0001", k=3).items) == 3
        assert shop.frequently_bought_together(["SKU0001"], k=3).model_version
        assert shop.trending(k=3, user_id="U0002").items
        profile = shop.get_profile("client-user")
        assert profile.event_count >= 1 and profile.recent_items[0].item_id == "CLIENT-1"
        assert shop.delete_items(["CLIENT-1"]).accepted == 1
        with pytest.raises(grpc.RpcError) as raised:
            shop.list_versions()  # an admin RPC with the storefront's key
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_operator_rpcs_with_the_admin_key(serving_suite):
    with client_of(serving_suite, "admin") as ops:
        versions = ops.list_versions()
        assert versions and any(v.serving for v in versions)
        with pytest.raises(grpc.RpcError) as raised:
            ops.get_job("no-such-job")
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert ops.list_audit(limit=5) is not None
        assert isinstance(ops.list_segments(), list)
        with pytest.raises(grpc.RpcError) as raised:
            ops.rollback("999")
        assert raised.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)
