"""The error-to-status mapping, unit and through one real in-process gRPC server."""
import grpc
import pytest

from core.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable, status_for
from services.grpc_server import build_server


@pytest.mark.parametrize(
    "exc, code",
    [
        (InvalidArgument("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_domain_errors_carry_their_status(exc, code):
    assert status_for(exc) == (code, "x")


def test_unexpected_errors_become_internal_without_details():
    code, message = status_for(KeyError("secret internals"))
    assert code == grpc.StatusCode.INTERNAL
    assert "secret" not in message and "KeyError" in message


def _echo_server(raise_exc):
    def handler(request, context):
        raise raise_exc

    def register(server):
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.T", {"M": grpc.unary_unary_rpc_method_handler(handler)})])

    return build_server([register], ["t.T"], "127.0.0.1:0")


@pytest.mark.parametrize("exc, code", [(NotFound("no user 'u'"), grpc.StatusCode.NOT_FOUND), (ZeroDivisionError("boom"), grpc.StatusCode.INTERNAL)])
def test_interceptor_maps_handler_errors_over_a_socket(exc, code):
    server, port, _ = _echo_server(exc)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/t.T/M")
            with pytest.raises(grpc.RpcError) as info:
                call(b"", timeout=5)
        assert info.value.code() == code
        assert "Traceback" not in info.value.details()
        if code == grpc.StatusCode.NOT_FOUND:
            assert info.value.details() == "no user 'u'"
    finally:
        server.stop(0)
