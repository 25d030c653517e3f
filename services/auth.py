"""Who may call what: API keys in metadata, roles per RPC, and the audit trail of admin calls.

A client sends its key as `authorization: Bearer <key>` (or `x-api-key: <key>`). Roles:
`storefront` may record events, upsert and delete items, rank, recommend, ask for similar, bought-together
and trending items and read profiles; `admin` may also administer models (fine-tune, rollback, versions,
jobs), forget shoppers and read the audit log. Health stays open (load balancers call it without a key);
reflection (`grpcurl list`) needs a key of either role. The check runs in the one server interceptor
(services/interceptors.py) on the call's metadata, before the request body is read.
"""
from __future__ import annotations

import contextvars
import logging
from pathlib import Path
from typing import Protocol, Sequence

from core.errors import PermissionDenied, Unauthenticated
from core.security import ApiKeys, Client

logger = logging.getLogger(__name__)

ADMIN, STOREFRONT = "admin", "storefront"
HEALTH_PREFIX = "/grpc.health.v1.Health/"  # open: load balancers and probes call it without a key
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")
STOREFRONT_METHODS = frozenset({
    "/shoprank.v1.FeedbackService/RecordEvents",
    "/shoprank.v1.FeedbackService/UpsertItems",
    "/shoprank.v1.FeedbackService/DeleteItems",
    "/shoprank.v1.ScoringService/Rank",
    "/shoprank.v1.ScoringService/Recommend",
    "/shoprank.v1.ScoringService/SimilarItems",
    "/shoprank.v1.ScoringService/FrequentlyBoughtTogether",
    "/shoprank.v1.ScoringService/Trending",
    "/shoprank.v1.ProfileService/GetProfile",
})
ANONYMOUS = Client("anonymous", "")

# The caller of the request being handled (handlers read it, e.g. for an erasure receipt).
current_client: contextvars.ContextVar[Client] = contextvars.ContextVar("current_client", default=ANONYMOUS)


def is_reflection(method: str) -> bool:
    """Reflection (grpcurl list/describe) needs a key of any role: the API's shape is not for strangers."""
    return method.startswith(REFLECTION_PREFIXES)


def _methods() -> frozenset[str]:
    from shoprank.v1 import feedback_pb2, model_admin_pb2, profile_pb2, scoring_pb2

    return frozenset(f"/{service.full_name}/{m.name}" for module in (feedback_pb2, model_admin_pb2, profile_pb2, scoring_pb2)
                     for service in module.DESCRIPTOR.services_by_name.values() for m in service.methods)


KNOWN_METHODS = _methods()


def is_known(method: str) -> bool:
    """One of this API's RPCs (metric labels and audit rows name only these, whatever a caller sends)."""
    return method in KNOWN_METHODS


def required_role(method: str) -> str:
    """The role a method needs: storefront for the storefront's RPCs, admin for everything else."""
    return STOREFRONT if method in STOREFRONT_METHODS else ADMIN


def presented_key(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    for name, value in metadata:
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if name == "authorization":
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
        if name == "x-api-key":
            return text.strip()
    return None


class Authorizer:
    """API keys → clients → roles. `None` keys means auth is off (RECSYS_AUTH=false): every caller is admin."""

    def __init__(self, keys: ApiKeys | None) -> None:
        self.keys = keys

    @classmethod
    def from_file(cls, path: Path) -> "Authorizer":
        return cls(ApiKeys.load(path))

    def authenticate(self, method: str, metadata: Sequence[tuple[str, str | bytes]]) -> Client:
        """The client the key in `metadata` belongs to, or Unauthenticated with the reason."""
        if self.keys is None:
            return Client("unauthenticated", ADMIN)
        key = presented_key(metadata)
        if not key:
            raise Unauthenticated(f"{method} needs an API key: send metadata 'authorization: Bearer <key>'")
        client = self.keys.client(key)
        if client is None:
            raise Unauthenticated("the API key is not known to this deployment")
        return client

    @staticmethod
    def check_role(client: Client, method: str) -> None:
        """PermissionDenied unless `client`'s role may call `method` (admin may call everything)."""
        if required_role(method) == ADMIN and client.role != ADMIN:
            raise PermissionDenied(f"{method} needs the admin role; client {client.name!r} has role {client.role!r}")

    def authorize(self, method: str, metadata: Sequence[tuple[str, str | bytes]]) -> Client:
        """The client allowed to call `method`, or Unauthenticated / PermissionDenied with the reason."""
        client = self.authenticate(method, metadata)
        self.check_role(client, method)
        return client


class AuditSink(Protocol):
    """Where admin calls are recorded (core.store.audit.AuditLog; a list in unit tests)."""

    def record(self, client: Client, method: str, request: str, outcome: str, detail: str, caller: str = "",
               peer: str = "") -> None: ...
