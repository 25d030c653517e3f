"""What every gRPC server here shares: the interceptor (auth, errors, audit), TLS, health per service,
reflection, graceful stop."""
from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from typing import TYPE_CHECKING, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from core import gc_freeze
from services.audit_trail import AuditTrail
from services.auth import AuditSink, Authorizer
from services.interceptors import MAX_MESSAGE_BYTES, ErrorInterceptor

if TYPE_CHECKING:
    from core.settings import Settings

logger = logging.getLogger(__name__)

Registrar = Callable[[grpc.Server], None]

# A connection lives at most this long: then GOAWAY, and after the grace it is closed with whatever is
# still open on it. Clients reconnect transparently; an idle stream (reflection) cannot hold a thread
# forever. (gRPC's documented channel arguments, also how balancers spread long-lived clients.)
MAX_CONNECTION_AGE_MS = 300_000
MAX_CONNECTION_AGE_GRACE_MS = 30_000


def server_credentials(settings: "Settings") -> grpc.ServerCredentials:
    """TLS with the deployment's certificate; with RECSYS_TLS_CLIENT_AUTH=require, clients must present
    a certificate the CA signed (mutual TLS)."""
    key, cert = settings.server_key.read_bytes(), settings.server_cert.read_bytes()
    if settings.tls_client_auth == "require":
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=settings.ca_cert.read_bytes(), require_client_auth=True)
    return grpc.ssl_server_credentials([(key, cert)])


def build_server(
    registrars: Iterable[Registrar], service_names: Iterable[str], address: str, workers: int = 8,
    settings: "Settings | None" = None, audit: AuditSink | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started-ready (not yet started) server with the given services, health and reflection. With
    `settings` (every real service; its create_server has run core.security.ensure_secrets): TLS and API
    keys as configured; without (unit tests of one handler): plaintext and no auth."""
    authorizer = None
    trail = None
    names = list(service_names)
    if settings is not None:
        from core.privacy import Pseudonyms
        from core.tracing import setup as setup_tracing

        setup_tracing(names[0].rsplit(".", 1)[-1].removesuffix("Service").lower() if names else "service", settings)
        authorizer = Authorizer.from_file(settings.api_keys_path) if settings.auth else Authorizer(None)
        if audit is not None:
            trail = AuditTrail(audit, Pseudonyms.of(settings))  # shopper ids reach the audit log as pseudonyms
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        interceptors=[ErrorInterceptor(authorizer, trail)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
            ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
            # No BDP probing: it grows a connection's receive window to many megabytes, so a caller
            # refused on its metadata alone had already pushed megabytes that the server decrypted
            # (6.3 ms of CPU per refused 15 MB call, 0.55 ms without). The services sit on a LAN behind
            # the gateway, where a 15 MB batch is read as fast either way (21 ms on loopback).
            ("grpc.http2.bdp_probe", 0),
        ],
        # calls beyond this many in flight are refused at once (RESOURCE_EXHAUSTED) instead of queueing
        # without bound behind the worker threads
        maximum_concurrent_rpcs=max(64, 8 * workers),
    )
    for register in registrars:
        register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in names:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(names + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server)
    if settings is not None and settings.tls:
        port = server.add_secure_port(address, server_credentials(settings))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind {address}")
    return server, port, health_servicer


def serve_until_signalled(server: grpc.Server, health_servicer: health.HealthServicer, name: str, grace: float = 5.0,
                          after_stop: Callable[[], object] = lambda: None, gc_freeze_s: float = 0.0) -> None:
    """Run until SIGTERM/SIGINT: mark NOT_SERVING first so balancers drain, then stop with grace, then
    `after_stop` (work the answered calls queued). With `gc_freeze_s`, what is alive before serving is
    frozen out of CPython's full collections, and again every that many seconds (core.gc_freeze)."""
    stopped = threading.Event()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stopping.is_set():  # a second signal must not re-enter server.stop (it would wait on itself)
            logger.info("%s: signal %d while draining; still draining", name, signum)
            return
        stopping.set()
        logger.info("%s: signal %d, draining", name, signum)
        health_servicer.enter_graceful_shutdown()
        server.stop(grace).wait()
        after_stop()
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    gc_freeze.start(gc_freeze_s)
    server.start()
    logger.info("%s serving", name)
    stopped.wait()
    logger.info("%s stopped", name)


ServeOne = Callable[[str], None]  # (address): build a server there and serve until signalled


def serve_processes(processes: int, serve_one: ServeOne, address: str, name: str, metrics_address: str = "",
                    collectors: tuple = ()) -> None:
    """Serve `address` with `serve_one` (build a server, serve until signalled), and /metrics on
    `metrics_address` when given (with `collectors`, which this process runs). With `processes` > 1 this process only supervises: that many children
    each run their own server on the same port through SO_REUSEPORT (on by default in gRPC core on
    Linux), and the kernel spreads connections over them: gRPC Python's way past the GIL. One channel is
    one connection, so one client channel reaches one process; storefronts with several channels or
    processes use them all. The children write their metrics to a shared directory this process serves
    (prometheus_client's multiprocess mode); a signal here is forwarded to them and they drain as one
    server does; a child whose parent dies (even by SIGKILL) is sent SIGTERM by the kernel; if a child
    dies the others are stopped and this process exits non-zero, for the orchestrator to restart."""
    import multiprocessing
    import os
    import shutil
    import sys
    import tempfile

    from services.metrics import serve_metrics

    if processes == 1:
        if metrics_address:
            serve_metrics(metrics_address, collectors)
        serve_one(address)
        return
    if address.rsplit(":", 1)[-1] == "0":
        raise ValueError(f"{name}: {processes} processes need a fixed port, not {address}")
    metrics_dir = tempfile.mkdtemp(prefix=f"{name}-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # the children import prometheus_client with it set
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked gRPC state
    children = [context.Process(target=_serve_child, args=(serve_one, address, k), name=f"{name}-{k + 1}") for k in range(processes)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for child in children:
        child.start()
    failed = False
    try:
        if metrics_address:
            serve_metrics(metrics_address, collectors, multiprocess_dir=metrics_dir)
        logger.info("%s: %d processes on %s", name, processes, address)
        while not stop.wait(0.5):
            dead = [c for c in children if not c.is_alive()]
            if dead:
                logger.error("%s: process %s exited with %s; stopping the others", name, dead[0].pid, dead[0].exitcode)
                failed = True
                break
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
        for child in children:
            child.join(15)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if failed:
        sys.exit(1)


PROCESS_INDEX_ENV = "SHOPRANK_PROCESS_INDEX"  # 0, 1, ... in each child of serve_processes; absent in a lone process


def first_process() -> bool:
    """Whether this is the first (or only) process of its service: duties that one process does for all
    of them (a log-wide refresh, the attributor) run there only."""
    import os

    return os.environ.get(PROCESS_INDEX_ENV, "0") == "0"


def _serve_child(serve_one: ServeOne, address: str, index: int) -> None:
    import ctypes
    import os

    os.environ[PROCESS_INDEX_ENV] = str(index)

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not glibc: the parent's forwarded signal still stops it
        pass
    serve_one(address)
