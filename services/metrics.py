"""Prometheus metrics of the gRPC services: what an operator graphs and alerts on.

Every RPC is counted and timed in the one server interceptor (services/interceptors.py), by method and
status code; the scoring path times its Feast and Triton calls and counts degraded answers; the
feedback service counts ingested events and reports the serving version and fine-tune jobs by state.
`python -m services.<name> --metrics-address host:port` serves them over HTTP at /metrics (off when
not given). A scoring service running several processes (RECSYS_SCORING_PROCESSES) reports them together:
its supervising process sets PROMETHEUS_MULTIPROC_DIR before the serving processes start (they import
prometheus_client afresh) and serves what they write (services.grpc_server.serve_processes).
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from core.tracing import client_span

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# RPCs answered, by full method name and gRPC status code
RPC_REQUESTS = Counter("shoprank_rpc_requests_total", "RPCs answered", ["method", "code"])
# RPC latency inside the server (auth, handler, errors), by method
RPC_LATENCY = Histogram("shoprank_rpc_latency_seconds", "RPC latency in the server", ["method"], buckets=LATENCY_BUCKETS)
# latency of the calls the request path makes: feast_user, feast_items, triton_infer
DEPENDENCY_LATENCY = Histogram("shoprank_dependency_latency_seconds", "Latency of Feast and Triton calls", ["dependency"],
                               buckets=LATENCY_BUCKETS)
# Rank/Recommend answers in retrieval order because Triton could not score
DEGRADED_ANSWERS = Counter("shoprank_degraded_answers_total", "Answers not scored by the model")
# events stored by RecordEvents (new ones only; rate() gives events/s)
INGESTED_EVENTS = Counter("shoprank_ingested_events_total", "Events stored")
# RecordEvents answers sent before the shopper features were refreshed (the refresher was behind)
FEATURES_PENDING = Counter("shoprank_features_pending_answers_total", "RecordEvents answered with features_pending")
# the model version the scoring path last saw Triton serve
SERVING_VERSION = Gauge("shoprank_serving_version", "Model version Triton serves", ["model"], multiprocess_mode="max")
# ranking answers by experiment, arm and version (experiment "" outside an experiment)
EXPERIMENT_ANSWERS = Counter("shoprank_experiment_answers_total", "Ranking answers by experiment arm", ["experiment", "arm", "version"])
# served lists the scoring service could not record (its queue was full): attributions lost, answers not
SERVED_LISTS_DROPPED = Counter("shoprank_served_lists_dropped_total", "Served lists not recorded")


class ExperimentCollector:
    """The running experiments' online metrics per arm (core.experiments.metrics), read when scraped
    and cached for `cache_s` (a scrape costs one pass over the experiment's served lists)."""

    def __init__(self, measure: Callable[[], list], cache_s: float = 15.0) -> None:
        self.measure = measure  # -> [core.experiments.control.Measured] of the running experiments
        self.cache_s = cache_s
        self._cached: tuple[float, list] = (float("-inf"), [])

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        from prometheus_client.core import GaugeMetricFamily

        if time.monotonic() - self._cached[0] >= self.cache_s:
            try:
                self._cached = (time.monotonic(), self.measure())
            except Exception:  # noqa: BLE001 - the scrape still answers without these
                logger.warning("could not measure the running experiments", exc_info=True)
        labels = ["experiment", "arm", "version"]
        counts = GaugeMetricFamily("shoprank_experiment_events", "Served lists, impressions and attributed events per arm",
                                   labels=labels + ["kind"])
        values = GaugeMetricFamily("shoprank_experiment_metric", "Online metric per arm (value and interval)", labels=labels + ["metric", "bound"])
        pvalues = GaugeMetricFamily("shoprank_experiment_always_valid_p", "Sequential test of each arm against the control", labels=labels)
        for measured in self._cached[1]:
            exp = measured.experiment
            for m in measured.metrics:
                key = [exp.experiment_id, m.arm, m.version]
                for kind in ("requests", "impressions", "clicks", "add_to_carts", "purchases", "revenue"):
                    counts.add_metric(key + [kind], float(getattr(m, kind)))
                for name, estimate in m.estimates.items():
                    low, high = estimate.interval(exp.policy.confidence)
                    for bound, value in (("value", estimate.value), ("low", low), ("high", high)):
                        values.add_metric(key + [name, bound], value)
                if m.arm in measured.comparisons:
                    pvalues.add_metric(key, measured.comparisons[m.arm].p_equal)
        yield counts
        yield values
        yield pvalues


class JobStateCollector:
    """Fine-tune jobs by state (PENDING, RUNNING, SUCCEEDED, FAILED, ...), read from the job store
    when scraped, and the newest job's duration by state (seconds from created to last update)."""

    def __init__(self, jobs: "JobCounts") -> None:
        self.jobs = jobs

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        from prometheus_client.core import GaugeMetricFamily

        counts = GaugeMetricFamily("shoprank_fine_tune_jobs", "Fine-tune jobs by state", labels=["state"])
        durations = GaugeMetricFamily("shoprank_fine_tune_job_seconds_max", "Longest fine-tune job by state", labels=["state"])
        for state, (n, longest) in sorted(self.jobs.states().items()):
            counts.add_metric([state], n)
            durations.add_metric([state], longest)
        yield counts
        yield durations


class QueueDepthCollector:
    """Fine-tunes and feature refreshes waiting in the broker, by queue, read when scraped (a broker
    that does not answer gives no sample rather than a stale one)."""

    def __init__(self, depths: Callable[[], dict[str, int]]) -> None:
        self.depths = depths

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("shoprank_queue_depth", "Tasks waiting in the broker", labels=["queue"])
        try:
            for queue, depth in sorted(self.depths().items()):
                family.add_metric([queue], depth)
        except Exception:  # noqa: BLE001 - the scrape still answers; the gap shows the broker is gone
            logger.warning("could not read the broker's queue depths", exc_info=True)
        yield family


class JobCounts(Protocol):  # the port JobStateCollector reads (core.store.jobs.JobStore)
    def states(self) -> dict[str, tuple[int, float]]: ...


@contextmanager
def timed(dependency: str) -> Iterator[None]:
    """Time a call of the request path (histogram by dependency) and trace it (a client span)."""
    start = time.perf_counter()
    try:
        with client_span(dependency):
            yield
    finally:
        DEPENDENCY_LATENCY.labels(dependency).observe(time.perf_counter() - start)


def serve_metrics(address: str, collectors: tuple = (), multiprocess_dir: str = "") -> int:
    """Serve /metrics on `address` ("host:port"; port 0 picks one); returns the port. With
    `multiprocess_dir`, what the processes writing there report (this process's own metrics aside)."""
    from prometheus_client import REGISTRY

    host, port = address.rsplit(":", 1)
    registry = REGISTRY
    if multiprocess_dir:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    for collector in collectors:
        registry.register(collector)
    server, _ = start_http_server(int(port), addr=host, registry=registry)
    bound = int(server.server_address[1])
    logger.info("metrics on http://%s:%d/metrics", host, bound)
    return bound
