"""Channels to a shoprank deployment: TLS with the deployment's CA (and a client certificate where the
deployment requires one), the API key on every call, and gRPC's own retry policy for UNAVAILABLE.

Every shoprank RPC is safe to repeat: events are deduplicated by event_id, items by item_id, a
fine-tune by its job id (the client names one when the caller does not), and reads change nothing;
so the retry policy covers every method. Deadlines are set per call by the client."""
from __future__ import annotations

import json
from typing import Any

import grpc

SERVICES = ("shoprank.v1.FeedbackService", "shoprank.v1.ModelAdminService", "shoprank.v1.ScoringService",
            "shoprank.v1.ProfileService")


def retry_config(attempts: int = 4, initial_backoff_s: float = 0.1, max_backoff_s: float = 2.0) -> str:
    """gRPC service config: retry UNAVAILABLE with exponential backoff on every shoprank method."""
    policy = {"maxAttempts": max(2, attempts), "initialBackoff": f"{initial_backoff_s}s", "maxBackoff": f"{max_backoff_s}s",
              "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
    return json.dumps({"methodConfig": [{"name": [{"service": s} for s in SERVICES], "retryPolicy": policy}]})


class _KeyAuth(grpc.AuthMetadataPlugin):
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, context: Any, callback: Any) -> None:
        callback((("authorization", f"Bearer {self.key}"),), None)


class _StaticMetadata(grpc.UnaryUnaryClientInterceptor):
    """Adds the key to every call on a plaintext channel (deployments with RECSYS_TLS=false)."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = list(details.metadata or []) + list(self.metadata)
        return continuation(details._replace(metadata=metadata), request)


def open_channel(address: str, ca: bytes | None = None, key: str | None = None, certificate: tuple[bytes, bytes] | None = None,
                 options: list[tuple[str, Any]] | None = None, retries: int = 0, plaintext: bool = False) -> grpc.Channel:
    """A channel to one shoprank server: TLS trusting `ca`, `key` sent as `authorization: Bearer`,
    `certificate` (private key, chain) for mutual TLS, and with `retries` > 0 gRPC's retry of UNAVAILABLE
    on every method. Without a CA it refuses (ValueError) unless `plaintext=True` says so: a missing CA
    must not quietly send the key over the network in the clear."""
    if ca is None and not plaintext:
        raise ValueError(f"no CA certificate for {address}: pass the deployment's CA (ca=...) for TLS, or plaintext=True "
                         "to connect without TLS (the API key would then cross the network readable)")
    options = list(options or [])
    if retries:
        options += [("grpc.enable_retries", 1), ("grpc.service_config", retry_config(retries + 1))]
    if ca is None:
        channel = grpc.insecure_channel(address, options=options)
        return grpc.intercept_channel(channel, _StaticMetadata((("authorization", f"Bearer {key}"),))) if key else channel
    private_key, chain = certificate or (None, None)
    tls = grpc.ssl_channel_credentials(root_certificates=ca, private_key=private_key, certificate_chain=chain)
    if key:
        tls = grpc.composite_channel_credentials(tls, grpc.metadata_call_credentials(_KeyAuth(key)))
    return grpc.secure_channel(address, tls, options=options)
