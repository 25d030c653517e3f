"""The one server interceptor that turns exceptions from handlers into gRPC statuses."""
from __future__ import annotations

import logging
from typing import Any, Callable

import grpc

from core.errors import InvalidArgument, status_for

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


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns exceptions from unary handlers into statuses with clear messages."""

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = handler_call_details.method

        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                reject_unknown_fields(request)
                return inner(request, context)
            except Exception as exc:  # noqa: BLE001 - the one place errors become statuses
                code, message = status_for(exc)
                if code == grpc.StatusCode.INTERNAL:
                    logger.exception("%s failed", method)
                else:
                    logger.info("%s: %s %s", method, code.name, message)
                context.abort(code, message)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
