"""The Celery app of the workers: SQLite broker and result backend by default, Redis (or any broker URL)
by environment. Task names and queues come from core.tasks, which the services send to by name.

Fine-tuning is long, so its task acknowledges late (a killed worker's job is redelivered), takes one
message at a time and runs on its own `training` queue; materialising online features runs on `features`.
"""
from __future__ import annotations

from celery import Celery
from celery.signals import setup_logging

from core.settings import load
from core.tasks import FEATURES_QUEUE, FINE_TUNE_TASK, MATERIALISE_TASK, RETENTION_TASK, SCHEDULED_TASK, SEGMENTS_TASK, TRAINING_QUEUE


@setup_logging.connect
def _logging(**_: object) -> None:
    """The workers log like the services (core/log_format.py: text or JSON, with the job id)."""
    import sys

    from core.log_format import configure

    configure(next((c for c in ("beat", "flower") if c in sys.argv[1:]), "worker"))


def make_app() -> Celery:
    settings = load()
    app = Celery("shoprank", broker=settings.celery_broker, backend=settings.celery_results,
                 include=["workers.fine_tune", "workers.scheduled", "workers.materialise", "workers.retention", "workers.segments"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes={FINE_TUNE_TASK: {"queue": TRAINING_QUEUE}, SCHEDULED_TASK: {"queue": TRAINING_QUEUE},
                     MATERIALISE_TASK: {"queue": FEATURES_QUEUE}, RETENTION_TASK: {"queue": FEATURES_QUEUE},
                     SEGMENTS_TASK: {"queue": FEATURES_QUEUE}},
        # `celery -A workers.app beat` sends the scheduled check (it fine-tunes only if there is news)
        # and the periodic refresh of the online features that slide with time.
        beat_schedule={
            "fine-tune-on-schedule": {"task": SCHEDULED_TASK, "schedule": settings.fine_tune_interval_s},
            "materialise-features": {"task": MATERIALISE_TASK, "schedule": max(60.0, settings.popularity_refresh_s)},
            "segment-shoppers": {"task": SEGMENTS_TASK, "schedule": settings.segment_refresh_s},
        },
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        result_extended=True,
        worker_hijack_root_logger=False,
        task_track_started=True,  # STARTED in the result backend while a task runs
    )
    if settings.retention_days > 0:  # off by default: deleting history is the operator's decision
        app.conf.beat_schedule["retention"] = {"task": RETENTION_TASK, "schedule": 86400.0}
    if not settings.celery_broker.startswith("sqla+"):
        # A fine-tune can outlast Redis's default one-hour redelivery window; keep it longer.
        # (The SQLAlchemy transport passes every option to create_engine, so it gets none.)
        app.conf.broker_transport_options = {"visibility_timeout": 4 * 3600}
        # task events for Flower / `celery events` (sent, started, succeeded, failed, retried, runtimes);
        # they travel on a fanout exchange, which the embedded SQLAlchemy transport does not have
        app.conf.worker_send_task_events = True
        app.conf.task_send_sent_event = True
    return app


app = make_app()
