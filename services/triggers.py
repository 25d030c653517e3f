"""When a fine-tune starts: by an operator (model-admin RPC), by event volume (feedback service),
on a schedule (Celery beat). One place decides and enqueues, so every path is idempotent by job id
and none starts a second job while one is pending or running."""
from __future__ import annotations

import logging
from typing import Any

from services.config import Settings
from services.eventlog import EventLog, Job
from services.model_repository import ModelRepository

logger = logging.getLogger(__name__)


def enqueue_fine_tune(settings: Settings, log: EventLog, celery: Any, job_id: str, parent: int, max_steps: int,
                      learning_rate: float = 0.0) -> tuple[Job, bool]:
    """Create the job (or find it: same id, same job) and send the task once."""
    from workers.app import FINE_TUNE_TASK, TRAINING_QUEUE
    from workers.payloads import FineTuneRequest

    job, created = log.create_job(job_id, str(parent), max_steps)
    if created:
        payload = FineTuneRequest(job_id=job_id, max_steps=max_steps, batch_size=settings.fine_tune_batch,
                                  learning_rate=learning_rate)
        celery.send_task(FINE_TUNE_TASK, args=[payload.to_json()], task_id=job_id, queue=TRAINING_QUEUE)
        logger.info("fine-tune %s queued from version %s (%d steps)", job_id, parent, max_steps)
    return job, created


def maybe_fine_tune(settings: Settings, log: EventLog, celery: Any, min_events: int, source: str) -> Job | None:
    """Start a fine-tune if at least `min_events` new positive events arrived since the serving
    version's data window and no job is pending or running; returns the job started, if any."""
    repo = ModelRepository(settings.model_repository, settings.model_name)
    serving = repo.serving_version()
    if serving is None or log.active_jobs(settings.job_lease_s):
        return None
    lineage = repo.lineage(serving)
    since = lineage.data_to if lineage else float("-inf")
    fresh = log.positive_events_since(since)
    if fresh < max(1, min_events):
        return None
    # The id names the window: the same window never gets two jobs, a rejected one is retried only
    # once another `min_events` have arrived.
    job_id = f"{source}-v{serving}-{int(since) if since > float('-inf') else 0}-{fresh // max(1, min_events)}"
    job, created = enqueue_fine_tune(settings, log, celery, job_id, serving, settings.fine_tune_steps)
    return job if created else None
