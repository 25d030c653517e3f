"""When a fine-tune starts: by an operator (model-admin RPC), by event volume (feedback service),
on a schedule (Celery beat). One place decides and enqueues, so every path is idempotent by job id
and none starts a second job while one is pending or running."""
from __future__ import annotations

import logging

from core.domain import Job
from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog
from core.tasks import FINE_TUNE_TASK, TRAINING_QUEUE, FineTuneRequest, TaskSender

logger = logging.getLogger(__name__)


def enqueue_fine_tune(settings: Settings, log: EventLog, sender: TaskSender, job_id: str, parent: int | None, max_steps: int,
                      learning_rate: float = 0.0) -> tuple[Job, bool]:
    """Create the job (or find it: same id, same job) and send the task once, by name. `parent` None:
    no version exists yet, and the job trains version 1."""
    job, created = log.jobs.create(job_id, "" if parent is None else str(parent), max_steps)
    if created:
        payload = FineTuneRequest(job_id=job_id, max_steps=max_steps, batch_size=settings.fine_tune_batch,
                                  learning_rate=learning_rate)
        sender.send_task(FINE_TUNE_TASK, args=[payload.to_json()], task_id=job_id, queue=TRAINING_QUEUE)
        logger.info("fine-tune %s queued from version %s (%d steps)", job_id, parent or "none (first version)", max_steps)
    return job, created


def maybe_fine_tune(settings: Settings, log: EventLog, sender: TaskSender, model_name: str, min_events: int, source: str) -> Job | None:
    """Start a fine-tune of `model_name` (the configured ranker's) if at least `min_events` new positive
    events arrived since the serving version's data window and no job is pending or running; returns the job started, if any."""
    repo = ModelRepository(settings.model_repository, model_name)
    serving = repo.serving_version()
    if serving is None or log.jobs.active(settings.job_lease_s):
        return None
    lineage = repo.lineage(serving)
    if lineage and lineage.seq_to:  # what arrived after the version's window (arrival order)
        window = lineage.seq_to
        fresh = log.events.positive_events_after(window)
    else:  # a version from before arrival numbers: by event time
        since = lineage.data_to if lineage else float("-inf")
        window = int(since) if since > float("-inf") else 0
        fresh = log.events.positive_events_since(since)
    if fresh < max(1, min_events):
        return None
    # The id names the window: the same window never gets two jobs, a rejected one is retried only
    # once another `min_events` have arrived.
    job_id = f"{source}-v{serving}-{window}-{fresh // max(1, min_events)}"
    job, created = enqueue_fine_tune(settings, log, sender, job_id, serving, settings.fine_tune_steps)
    return job if created else None
