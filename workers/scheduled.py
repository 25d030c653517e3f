"""The scheduled trigger: Celery beat runs this check; it fine-tunes when any new positive events
arrived since the serving version (and nothing is pending or running)."""
from __future__ import annotations

import logging

from celery import shared_task

from core.settings import load
from core.store import EventLog
from core.tasks import SCHEDULED_TASK, TRAINING_QUEUE
from core.triggers import maybe_fine_tune
from rankers import get_ranker

logger = logging.getLogger(__name__)


@shared_task(name=SCHEDULED_TASK, queue=TRAINING_QUEUE)
def scheduled_fine_tune() -> str:
    from workers.app import app

    settings = load()
    job = maybe_fine_tune(settings, EventLog.open(settings.eventlog), app, get_ranker(settings.ranker).model_name, 1, "schedule")
    return job.job_id if job else ""
