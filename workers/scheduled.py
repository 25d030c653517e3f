"""The scheduled trigger: Celery beat runs this check; it fine-tunes when any new positive events
arrived since the serving version (and nothing is pending or running)."""
from __future__ import annotations

import logging

from celery import shared_task

from services.config import load
from services.eventlog import EventLog
from services.triggers import maybe_fine_tune
from workers.app import SCHEDULED_TASK, TRAINING_QUEUE

logger = logging.getLogger(__name__)


@shared_task(name=SCHEDULED_TASK, queue=TRAINING_QUEUE)
def scheduled_fine_tune() -> str:
    from workers.app import app

    settings = load()
    job = maybe_fine_tune(settings, EventLog(settings.eventlog), app, 1, "schedule")
    return job.job_id if job else ""
