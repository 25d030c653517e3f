"""The one server interceptor: authenticates and authorises the caller (services/auth.py) from the
call's metadata before the body is read, refuses requests over their RPC's size or that are not its
message, turns exceptions from handlers into gRPC statuses, audits admin calls (services/audit_trail.py)
and keeps reflection streams within a thread budget."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import grpc

from core import tracing
from core.errors import InvalidArgument, RecsysError, ResourceExhausted, status_for
from core.security import Client
from services.audit_trail import AuditTrail, fingerprint
from services.auth import (
    ADMIN,
    ANONYMOUS,
    HEALTH_PREFIX,
    Authorizer,
    current_client,
    is_known,
    is_reflection,
    presented_key,
    required_role,
)
from services.metrics import RPC_LATENCY, RPC_REQUESTS

logger = logging.getLogger(__name__)


def reject_unknown_fields(request: Any) -> None:
    """Bytes that are not this RPC's message (garbage, another message, a newer client's fields) parse
    into a message with unknown fields; refuse them rather than act on whatever known fields fell out."""
    if not hasattr(request, "DiscardUnknownFields"):
        return
    known = type(request)()
    known.CopyFrom(request)
    known.DiscardUnknownFields()
    extra = request.ByteSize() - known.ByteSize()
    if extra:
        raise InvalidArgument(f"the request has {extra} bytes of fields this server does not know: "
                              f"not a {type(request).DESCRIPTOR.full_name}, or a newer client's fields")


class Undecodable:
    """What a request's bytes became when they are not a message at all (the handler never sees it)."""

    def __init__(self, message_name: str) -> None:
        self.message_name = message_name


def lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """gRPC answers INTERNAL "Exception deserializing request!" for bytes that do not parse; this
    deserializer hands them on as Undecodable, so the interceptor can answer INVALID_ARGUMENT."""
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)
    name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request message")

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - any parse failure is the caller's bad bytes
            return Undecodable(name)

    return parse


class Unread:
    """A request larger than its RPC's limit: refused by size, never parsed."""

    def __init__(self, message_name: str, size: int, limit: int) -> None:
        self.message_name, self.size, self.limit = message_name, size, limit


KIB, MIB = 1024, 1024 * 1024
# What each RPC's message may weigh (bytes), checked before it is parsed. A batch of 5,000 events with
# the longest ids is about 2.7 MB; a catalogue batch carries titles and descriptions; a Rank request 500
# candidates and rule lists; an admin call a few fields. Anything not named gets DEFAULT_MESSAGE_BYTES.
MESSAGE_LIMITS = {
    "/shoprank.v1.FeedbackService/RecordEvents": 4 * MIB,
    "/shoprank.v1.FeedbackService/UpsertItems": 16 * MIB,
    "/shoprank.v1.FeedbackService/DeleteItems": 1 * MIB,
    "/shoprank.v1.ScoringService/Rank": 1 * MIB,
    "/shoprank.v1.ScoringService/Recommend": 1 * MIB,
    "/shoprank.v1.ScoringService/SimilarItems": 1 * MIB,
    "/shoprank.v1.ScoringService/FrequentlyBoughtTogether": 1 * MIB,
    "/shoprank.v1.ScoringService/Trending": 1 * MIB,
}
DEFAULT_MESSAGE_BYTES = 64 * KIB
MAX_MESSAGE_BYTES = max(MESSAGE_LIMITS.values())  # the transport's limit: no RPC accepts more


def sized(deserializer: Callable[[bytes], Any] | None, limit: int) -> Callable[[bytes], Any] | None:
    """`lenient(deserializer)` that refuses bytes over `limit` without parsing them."""
    parse = lenient(deserializer)
    if parse is None:
        return None
    owner = getattr(deserializer, "__self__", None)
    name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request message")

    def parse_within(data: bytes) -> Any:
        return Unread(name, len(data), limit) if len(data) > limit else parse(data)

    return parse_within


def refused(code: grpc.StatusCode, message: str, on_refusal: Callable[[grpc.ServicerContext], None]) -> grpc.RpcMethodHandler:
    """A handler that answers `code` without reading the request: registered as request-streaming, so
    gRPC never asks for (or parses) the body; on the wire a unary call and a one-message stream are alike."""

    def answer(_requests: Any, context: grpc.ServicerContext) -> Any:
        on_refusal(context)
        context.abort(code, message)

    return grpc.stream_unary_rpc_method_handler(answer)


class ErrorInterceptor(grpc.ServerInterceptor):
    """Auth from the call's metadata, before any byte of the body is read; then the size check, the
    parse, the handler; exceptions become statuses with clear messages; admin calls are audited (an
    intent row before the handler runs, the outcome after). Without an authorizer (unit tests of a
    single server) every caller passes."""

    def __init__(self, authorizer: Authorizer | None = None, audit: AuditTrail | None = None,
                 reflection: StreamBudget | None = None) -> None:
        self.authorizer = authorizer
        self.audit = audit
        self.reflection = reflection or StreamBudget()

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        if method.startswith(HEALTH_PREFIX):
            return continuation(handler_call_details)
        metadata = handler_call_details.invocation_metadata or ()
        client = ANONYMOUS
        if self.authorizer is not None:
            try:
                client = self.authorizer.authenticate(method, metadata)
                if not is_reflection(method):
                    self.authorizer.check_role(client, method)
            except RecsysError as refusal:
                return self._refusal(method, client, refusal, metadata)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        if is_reflection(method):
            return self.reflection.bounded(handler) if handler.stream_stream is not None else handler
        if handler.unary_unary is None:
            return None  # no other streaming RPC is served here; refuse what is not known (UNIMPLEMENTED)
        caller = fingerprint(presented_key(metadata))
        return self._unary(method, handler, client, caller)

    def _refusal(self, method: str, client: Client, refusal: RecsysError, metadata: Any) -> grpc.RpcMethodHandler:
        code, message = status_for(refusal)
        RPC_REQUESTS.labels(method if is_known(method) else "unknown", code.name).inc()
        logger.info("%s: %s %s", method[:200], code.name, message)
        caller = fingerprint(presented_key(metadata))

        def on_refusal(context: grpc.ServicerContext) -> None:
            if self.audit is not None and required_role(method) == ADMIN and is_known(method):
                self.audit.refusal(client, method, code.name, message, caller, context.peer())

        return refused(code, message, on_refusal)

    def _unary(self, method: str, handler: grpc.RpcMethodHandler, client: Client, caller: str) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary
        audit = self.audit if required_role(method) == ADMIN else None

        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            with tracing.server_span(method, context.invocation_metadata()) as span:
                try:
                    return handle(request, context)
                finally:
                    span.set_attribute("rpc.grpc.status_code", (context.code() or grpc.StatusCode.OK).value[0])

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            token = current_client.set(client)
            started, code_name = time.perf_counter(), "OK"
            try:
                if isinstance(request, Unread):
                    raise ResourceExhausted(f"the {request.message_name} is {request.size} bytes; {method.rsplit('/', 1)[-1]} "
                                            f"accepts at most {request.limit} (send smaller batches)")
                if isinstance(request, Undecodable):
                    raise InvalidArgument(f"the request bytes are not a valid {request.message_name}")
                reject_unknown_fields(request)
                if audit is not None:
                    audit.intent(client, method, request, caller, context.peer())
                response = inner(request, context)
                if audit is not None:
                    audit.outcome(client, method, request, "OK", "", caller, context.peer())
                return response
            except Exception as exc:  # noqa: BLE001 - the one place errors become statuses
                code, message = status_for(exc)
                code_name = code.name
                if code == grpc.StatusCode.INTERNAL or not isinstance(exc, RecsysError):
                    logger.exception("%s failed: %s", method, code.name)
                else:
                    logger.info("%s: %s %s", method, code.name, message)
                if audit is not None and not isinstance(request, (Unread, Undecodable)):
                    audit.outcome(client, method, request, code.name, message, caller, context.peer())
                context.abort(code, message)
            finally:
                current_client.reset(token)
                RPC_REQUESTS.labels(method, code_name).inc()
                RPC_LATENCY.labels(method).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=sized(handler.request_deserializer, MESSAGE_LIMITS.get(method, DEFAULT_MESSAGE_BYTES)),
            response_serializer=handler.response_serializer,
        )


class StreamBudget:
    """Reflection streams (grpcurl's `list` and `describe`) wait on their client while they are open and
    hold a server thread each: at most `streams` at once, so the storefront's RPCs always keep the rest
    of the pool; one more is refused with RESOURCE_EXHAUSTED. A stream's lifetime is bounded by the
    server's connection age (services/grpc_server.py: GOAWAY, then the connection is closed after a grace)."""

    def __init__(self, streams: int = 2) -> None:
        self.streams = streams
        self._slots = threading.BoundedSemaphore(streams)

    def bounded(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.stream_stream

        def serve(requests: Any, context: grpc.ServicerContext) -> Any:
            if not self._slots.acquire(blocking=False):
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"{self.streams} reflection streams are open on this server; close one and retry")
            try:
                yield from inner(requests, context)
            finally:
                self._slots.release()

        return grpc.stream_stream_rpc_method_handler(serve, request_deserializer=handler.request_deserializer,
                                                     response_serializer=handler.response_serializer)
