"""Health that tells the truth: each service's gRPC health status follows the dependencies it cannot
work without (the event log for feedback, the online store for all three, Triton's model for scoring),
checked every few seconds by a daemon thread: NOT_SERVING while one is gone, SERVING once all are back.
A balancer or orchestrator reading grpc.health.v1 then stops sending work that would fail."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0

Check = tuple[str, Callable[[], bool]]  # (what, is it reachable and usable now?)


CHECK_TIMEOUT_S = 3.0


class Checker:
    """Runs checks with a deadline each: a dependency that hangs (a partitioned Redis, a database that
    accepts and never answers) fails its check after `timeout_s` instead of stalling the watcher, and
    is not asked again while its last call is still stuck."""

    def __init__(self, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-check")
        self._stuck: dict[str, Any] = {}

    def failing(self, checks: Sequence[Check]) -> list[str]:
        """The names of the checks that fail now (a check that raises or overruns fails)."""
        from concurrent.futures import TimeoutError as Overrun

        out = []
        for name, check in checks:
            stuck = self._stuck.get(name)
            if stuck is not None and not stuck.done():
                out.append(name)
                continue
            future = self._pool.submit(check)
            try:
                ok = bool(future.result(timeout=self.timeout_s))
                self._stuck.pop(name, None)
            except Overrun:
                self._stuck[name] = future
                ok = False
            except Exception:  # noqa: BLE001 - any error reaching a dependency means it is not there
                ok = False
            if not ok:
                out.append(name)
        return out


def watch(checks: Sequence[Check], health: Any, service_names: Sequence[str], stop: threading.Event,
          every_s: float = CHECK_EVERY_S) -> None:
    """Set every name in `service_names` SERVING or NOT_SERVING from `checks`, until `stop` is set."""
    from grpc_health.v1 import health_pb2

    state: bool | None = None
    checker = Checker()
    while True:
        down = checker.failing(checks)
        ok = not down
        if ok != state:
            status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in service_names:
                health.set(name, status)
            if state is not None or not ok:
                logger.warning("%s: %s", ", ".join(service_names), "dependencies back: SERVING" if ok else f"{', '.join(down)} unavailable: NOT_SERVING")
            state = ok
        if stop.wait(every_s):
            return


def start_watching(checks: Sequence[Check], health: Any, service_names: Sequence[str], every_s: float = CHECK_EVERY_S) -> threading.Event:
    """`watch` in a daemon thread; returns the event that stops it."""
    stop = threading.Event()
    threading.Thread(target=watch, args=(list(checks), health, list(service_names), stop, every_s), name="dependency-health",
                     daemon=True).start()
    return stop
