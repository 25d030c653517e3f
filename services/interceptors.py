"""The one server interceptor: authenticates and authorises the caller (services/auth.py), refuses
requests that are not this RPC's message, turns exceptions from handlers into gRPC statuses, and
audits admin calls."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import grpc
from google.protobuf import text_format

from core import tracing
from core.errors import InvalidArgument, status_for
from services.auth import ADMIN, ANONYMOUS, AuditSink, Authorizer, current_client, is_open, required_role
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


def request_text(request: Any, limit: int = 300) -> str:
    if isinstance(request, Undecodable):
        return f"<bytes that are not a {request.message_name}>"
    try:
        text = text_format.MessageToString(request, as_one_line=True)
    except Exception:  # noqa: BLE001 - a request that cannot print is audited by its type
        text = type(request).__name__
    return text if len(text) <= limit else text[:limit] + "..."


class ErrorInterceptor(grpc.ServerInterceptor):
    """Auth, then the handler; exceptions become statuses with clear messages; admin calls are audited.
    Without an authorizer (unit tests of a single server) every caller passes."""

    def __init__(self, authorizer: Authorizer | None = None, audit: AuditSink | None = None) -> None:
        self.authorizer = authorizer
        self.audit = audit

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_open(method):
            return handler
        if handler.unary_unary is None:
            return None  # no streaming RPC here needs a key; refuse what is not known (UNIMPLEMENTED)
        inner = handler.unary_unary
        audited = self.audit is not None and required_role(method) == ADMIN

        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            with tracing.server_span(method, context.invocation_metadata()) as span:
                try:
                    return handle(request, context)
                finally:
                    span.set_attribute("rpc.grpc.status_code", (context.code() or grpc.StatusCode.OK).value[0])

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            client = ANONYMOUS
            token = None
            started, code_name = time.perf_counter(), "OK"
            try:
                if self.authorizer is not None:
                    client = self.authorizer.authenticate(method, context.invocation_metadata())
                    self.authorizer.check_role(client, method)
                token = current_client.set(client)
                if isinstance(request, Undecodable):
                    raise InvalidArgument(f"the request bytes are not a valid {request.message_name}")
                reject_unknown_fields(request)
                response = inner(request, context)
                if audited:
                    self._audit(client, method, request, "OK", "")
                return response
            except Exception as exc:  # noqa: BLE001 - the one place errors become statuses
                code, message = status_for(exc)
                code_name = code.name
                if code == grpc.StatusCode.INTERNAL:
                    logger.exception("%s failed", method)
                else:
                    logger.info("%s: %s %s", method, code.name, message)
                if audited:
                    self._audit(client, method, request, code.name, message)
                context.abort(code, message)
            finally:
                if token is not None:
                    current_client.reset(token)
                RPC_REQUESTS.labels(method, code_name).inc()
                RPC_LATENCY.labels(method).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _audit(self, client: Any, method: str, request: Any, outcome: str, detail: str) -> None:
        assert self.audit is not None
        try:
            self.audit.record(client, method, request_text(request), outcome, detail)
        except Exception:  # noqa: BLE001 - an audit failure is logged, the answer stands
            logger.exception("could not write the audit log for %s", method)
