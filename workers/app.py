"""The Celery app: SQLite broker and result backend by default, Redis (or any broker URL) by environment.

Fine-tuning is long, so its task acknowledges late (a killed worker's job is redelivered), takes one
message at a time and runs on its own `training` queue.
"""
from __future__ import annotations

from celery import Celery

from services.config import load

TRAINING_QUEUE = "training"
FINE_TUNE_TASK = "workers.fine_tune.fine_tune"
SCHEDULED_TASK = "workers.scheduled.scheduled_fine_tune"


def make_app() -> Celery:
    settings = load()
    app = Celery("shoprank", broker=settings.celery_broker, backend=settings.celery_results, include=["workers.fine_tune", "workers.scheduled"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes={FINE_TUNE_TASK: {"queue": TRAINING_QUEUE}, SCHEDULED_TASK: {"queue": TRAINING_QUEUE}},
        # `celery -A workers.app beat` sends the scheduled check; it fine-tunes only if there is news.
        beat_schedule={"fine-tune-on-schedule": {"task": SCHEDULED_TASK, "schedule": settings.fine_tune_interval_s}},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        result_extended=True,
        worker_hijack_root_logger=False,
    )
    if not settings.celery_broker.startswith("sqla+"):
        # A fine-tune can outlast Redis's default one-hour redelivery window; keep it longer.
        # (The SQLAlchemy transport passes every option to create_engine, so it gets none.)
        app.conf.broker_transport_options = {"visibility_timeout": 4 * 3600}
    return app


app = make_app()
