"""OpenTelemetry spans across a request: the gRPC server span (opened in the one interceptor, continuing
a caller's `traceparent`), a client span for each Feast read and Triton inference (opened where they are
timed, services/metrics.py), and the trace context handed on to Triton in the inference's headers.

Off by default (RECSYS_OTEL_EXPORTER=none: the API's no-op tracer, nothing recorded). `console` prints
spans to stderr, `file` appends one JSON span per line to RECSYS_OTEL_FILE, `otlp` sends them to an
OTLP/gRPC collector at RECSYS_OTEL_ENDPOINT (Jaeger, Tempo, the OpenTelemetry Collector)."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from opentelemetry import propagate, trace

if TYPE_CHECKING:
    from core.settings import Settings

logger = logging.getLogger(__name__)

TRACER = trace.get_tracer("shoprank")  # a proxy: it records once setup() has installed a provider
_setup_lock = threading.Lock()
_configured = False


def setup(process: str, settings: "Settings") -> bool:
    """Install the exporter the settings name for this process (once); False when tracing is off."""
    global _configured
    if settings.otel_exporter == "none":
        return False
    with _setup_lock:
        if _configured:
            return True
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": f"shoprank-{process}"}))
        if settings.otel_exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint,
                                                                            insecure=settings.otel_endpoint.startswith("http://"))))
        elif settings.otel_exporter == "file":
            if settings.otel_file is None:
                raise ValueError("RECSYS_OTEL_EXPORTER=file needs RECSYS_OTEL_FILE")
            out = open(settings.otel_file, "a", buffering=1)  # one line per span, written whole
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=None) + "\n")))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(provider)
        _configured = True
        logger.info("tracing on: %s spans as shoprank-%s", settings.otel_exporter, process)
        return True


@contextmanager
def server_span(method: str, metadata: Iterable[tuple[str, Any]] | None) -> Iterator[trace.Span]:
    """The span of one RPC, a child of the caller's trace when its metadata carries `traceparent`."""
    if not _configured:  # tracing off: nothing to extract or record on the request path
        yield trace.INVALID_SPAN
        return
    carrier = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
    service, _, name = method.lstrip("/").rpartition("/")
    with TRACER.start_as_current_span(method.lstrip("/"), context=propagate.extract(carrier), kind=trace.SpanKind.SERVER,
                                      attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}) as span:
        yield span


@contextmanager
def client_span(dependency: str) -> Iterator[trace.Span]:
    """The span of a call the request path makes (feast_*, triton_infer)."""
    if not _configured:
        yield trace.INVALID_SPAN
        return
    with TRACER.start_as_current_span(dependency, kind=trace.SpanKind.CLIENT, attributes={"peer.service": dependency.split("_")[0]}) as span:
        yield span


def annotate(**attributes: str) -> None:
    """Attributes on the current span (e.g. the request id a Rank answers with)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({f"shoprank.{k}": v for k, v in attributes.items()})


def outgoing_headers() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`), for a call to another server."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
