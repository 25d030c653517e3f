"""A container's health probe (compose `healthcheck:`): asks a service's gRPC health endpoint over its
TLS port, the way a balancer would, and exits 0 when it answers as required, 1 otherwise.

    python -m services.healthcheck scoring [--address 127.0.0.1:50052] [--live]

Without --live the probe needs SERVING (every dependency the service cannot work without is up:
services/health_watch.py). With --live any answer will do: the process is up, even while it says
NOT_SERVING (the scoring service before a first version exists, answering `degraded: true`)."""
from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.settings import Settings, load

SERVICES = {  # service -> (its health name, its default port)
    "feedback": ("shoprank.v1.FeedbackService", 50051),
    "scoring": ("shoprank.v1.ScoringService", 50052),
    "profile": ("shoprank.v1.ProfileService", 50053),
}


def status(address: str, service: str, settings: Settings, timeout_s: float = 3.0) -> str:
    """SERVING, NOT_SERVING, ... as the service reports it; raises grpc.RpcError if it cannot answer."""
    if settings.tls:  # the certificate names 127.0.0.1 and localhost, so a probe in the container verifies it
        pair = {}
        if settings.tls_client_auth == "require":  # mutual TLS: the service's own pair is also a client certificate
            pair = {"private_key": settings.server_key.read_bytes(), "certificate_chain": settings.server_cert.read_bytes()}
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(settings.ca_cert.read_bytes(), **pair))
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.add_argument("--address", default="", help="host:port (default 127.0.0.1 and the service's port)")
    parser.add_argument("--live", action="store_true", help="any answer passes (liveness), not only SERVING")
    args = parser.parse_args()
    name, port = SERVICES[args.service]
    address = args.address or f"127.0.0.1:{port}"
    try:
        answer = status(address, name, load())
    except grpc.RpcError as exc:
        print(f"{args.service} at {address}: no answer ({exc.code().name})", file=sys.stderr)
        sys.exit(1)
    print(f"{args.service} at {address}: {answer}")
    sys.exit(0 if args.live or answer == "SERVING" else 1)


if __name__ == "__main__":
    main()
