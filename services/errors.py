"""Domain errors, each knowing its gRPC status, mapped to statuses in one server interceptor.

Handlers raise these; nothing else reaches the client. Any other exception becomes INTERNAL with a
short message and a log line carrying the trace (never the trace itself in the response).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import grpc

logger = logging.getLogger(__name__)


class RecsysError(Exception):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(RecsysError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RecsysError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(RecsysError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(RecsysError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(RecsysError):
    code = grpc.StatusCode.UNAVAILABLE


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message a client sees for an exception raised by a handler."""
    if isinstance(exc, RecsysError):
        return exc.code, exc.message
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


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
