"""The storefront's Python client of shoprank: every RPC, deadlines, retries on UNAVAILABLE, TLS and API
keys, typed results; no torch (it needs grpcio and protobuf only). See shoprank_client/example.py."""
from shoprank_client.client import BatchResult, Event, Item, RankedItem, Ranking, Reason, Rules, ShopRankClient

__all__ = ["BatchResult", "Event", "Item", "RankedItem", "Ranking", "Reason", "Rules", "ShopRankClient"]
