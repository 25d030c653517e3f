"""The scheduled trigger: Celery beat runs this check. With the `events` cadence it fine-tunes when any
new positive events arrived since the serving version; with the `drift` cadence only when the serving
version stopped fitting the shop: its NDCG@10 on the baskets since its last check fell more than
`drift_ndcg_drop` below its own record (core.drift). Nothing starts while a job is pending or running."""
from __future__ import annotations

import logging
import time

from celery import shared_task

from core.drift import QualityRecord, performance_drop
from core.model_repository import ModelRepository
from core.settings import Settings, load
from core.store import EventLog
from core.tasks import SCHEDULED_TASK, TRAINING_QUEUE
from core.triggers import maybe_fine_tune
from rankers import get_ranker
from rankers.base import Ranker

logger = logging.getLogger(__name__)


def quality_record(settings: Settings, ranker: Ranker) -> QualityRecord:
    return QualityRecord(settings.data_dir / "quality" / f"{ranker.model_name}.json")


def drift_detected(settings: Settings, log: EventLog, ranker: Ranker, now: float | None = None) -> bool:
    """Score the serving version on the baskets since its last check (or since its training window)
    and say whether its NDCG@10 dropped below its own record by more than the setting."""
    repo = ModelRepository(settings.model_repository, ranker.model_name)
    serving = repo.serving_version()
    if serving is None:
        return True  # no version yet: the first fine-tune trains version 1
    record = quality_record(settings, ranker)
    lineage = repo.lineage(serving)
    since = record.last_checked(serving)
    if since is None:
        since = lineage.data_to if lineage else float("-inf")
    until = time.time() if now is None else now
    scored = ranker.trainer().serving_quality(settings, log, repo, serving, since, until, settings.drift_check_lists)
    if scored is None:
        return True  # the ranker has no list metric: fine-tune on new events, as the events cadence does
    ndcg, lists = scored
    if lists < settings.drift_min_lists:
        logger.info("drift check of version %s: %d new baskets, waiting for %d", serving, lists, settings.drift_min_lists)
        return False
    drop = performance_drop(record.add(serving, until, ndcg))
    logger.info("drift check of version %s: NDCG@10 %.4f on %d new baskets, %.4f below its record (threshold %.4f)",
                serving, ndcg, lists, drop, settings.drift_ndcg_drop)
    return drop > settings.drift_ndcg_drop


@shared_task(name=SCHEDULED_TASK, queue=TRAINING_QUEUE)
def scheduled_fine_tune() -> str:
    from workers.app import app

    settings = load()
    log = EventLog.open(settings.eventlog)
    ranker = get_ranker(settings.ranker)
    if settings.fine_tune_cadence == "drift" and not drift_detected(settings, log, ranker):
        return ""
    source = "drift" if settings.fine_tune_cadence == "drift" else "schedule"
    job = maybe_fine_tune(settings, log, app, ranker.model_name, 1, source)
    return job.job_id if job else ""
