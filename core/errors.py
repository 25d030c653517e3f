"""Domain errors, each knowing its gRPC status (Feast's errors work the same way). Handlers raise
these; services/interceptors.py maps them to statuses in one place. A database's OperationalError
(connection lost, deadlock, lock timeout) is UNAVAILABLE: the call was not acknowledged, and the write
RPCs are idempotent by id, so the client retries it. Any other exception becomes
INTERNAL with a short message and a log line carrying the trace (never the trace in the response).
"""
from __future__ import annotations

import grpc
from sqlalchemy.exc import OperationalError


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


class Unauthenticated(RecsysError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(RecsysError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(RecsysError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(RecsysError):
    code = grpc.StatusCode.UNAVAILABLE


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message a client sees for an exception raised by a handler."""
    if isinstance(exc, RecsysError):
        return exc.code, exc.message
    if isinstance(exc, OperationalError):  # a lost connection, a deadlock, a locked SQLite file: transient
        return grpc.StatusCode.UNAVAILABLE, (f"a data store did not answer ({type(exc.orig).__name__}); nothing in this call "
                                             "was acknowledged; retrying the same call is safe")
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"
