"""Which served version answers a shopper, and the shadow arms that score the same request unseen.

`Router.route` reads Triton's serving plan (primary version, ready versions, running experiment): a
shopper in an experiment gets their arm's version (sticky: a hash of experiment and shopper). `Shadows`
records each served list for attribution and lets every shadow arm re-rank the request in the
background, recorded but never shown, on a bounded backlog so shadows never slow the answer.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from core.experiments.attribution import ServedList
from core.experiments.definition import Arm
from core.served_log import ServedRecorder
from core.triton_client import InferenceUnavailable, TritonClickClient
from ranking.pipeline import Ranking

logger = logging.getLogger(__name__)

MAX_SHADOW_BACKLOG = 64  # shadow scorings waiting; beyond this a shadow skips requests rather than queue


@dataclass(frozen=True)
class Route:
    """Which version answers a request: the primary one ("" when Triton cannot say: the answer will be
    degraded), or the shopper's experiment arm's; and the shadow arms that score it in the background."""

    version: str
    experiment_id: str = ""
    arm: str = ""
    shadows: tuple[Arm, ...] = ()


class Router:
    def __init__(self, triton: TritonClickClient, on_primary: Callable[[str], None] = lambda _: None) -> None:
        self.triton = triton
        self.on_primary = on_primary  # told the primary version on every route (the servicer's gauge)

    def route(self, user_key: str) -> Route:
        """The version that answers this shopper ("" user_key: the primary version). An arm whose version
        is not ready answers from the primary version, outside the experiment."""
        try:
            plan = self.triton.serving_plan()
        except InferenceUnavailable as exc:
            logger.warning("Triton unavailable: %s", exc)
            return Route("")
        self.on_primary(plan.primary)
        experiment = plan.experiment
        if experiment is None or not user_key:
            return Route(plan.primary)
        arm = experiment.assign(user_key)
        if arm.version not in plan.ready:
            return Route(plan.primary)
        return Route(arm.version, experiment.experiment_id, arm.name, tuple(a for a in experiment.shadow_arms if a.version in plan.ready))


class Shadows:
    """Served lists to the recorder (None: not recorded, and no shadow scoring), shadow arms in the background."""

    def __init__(self, recorder: ServedRecorder | None, max_backlog: int = MAX_SHADOW_BACKLOG) -> None:
        self.recorder = recorder
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow")
        self._backlog = threading.Semaphore(max_backlog)

    def served(self, ranking: Ranking, user_key: str, route: Route, rpc: str, rerank: Callable[[str], Ranking]) -> Ranking:
        """Name the route's experiment arm in the answer, record the served list, and let each shadow arm
        score the same request (`rerank(version)`)."""
        ranking.experiment_id, ranking.arm = route.experiment_id, route.arm
        if self.recorder is None:
            return ranking
        self.recorder.record(ServedList(ranking.request_id, user_key, time.time(), ranking.model_version, tuple(ranking.item_ids),
                                        route.experiment_id, route.arm, False, rpc))
        for arm in route.shadows:
            if not self._backlog.acquire(blocking=False):
                logger.warning("shadow arm %s skips request %s: its backlog is full", arm.name, ranking.request_id)
                continue
            self._pool.submit(self._shadow, arm, ranking.request_id, user_key, route.experiment_id, rpc, rerank)
        return ranking

    def _shadow(self, arm: Arm, request_id: str, user_key: str, experiment_id: str, rpc: str, rerank: Callable[[str], Ranking]) -> None:
        try:
            answer = rerank(arm.version)
            if self.recorder is not None and not answer.degraded:
                self.recorder.record(ServedList(request_id, user_key, time.time(), arm.version, tuple(answer.item_ids),
                                                experiment_id, arm.name, True, rpc))
        except Exception:  # noqa: BLE001 - a shadow never affects what shoppers see
            logger.exception("shadow arm %s failed on request %s", arm.name, request_id)
        finally:
            self._backlog.release()
