"""The worker's tasks as the rest of the suite knows them: names, queue, typed payloads, and a sender
that enqueues by task name (Celery `send_task`), so services never import worker code."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from core.settings import Settings

TRAINING_QUEUE = "training"
FEATURES_QUEUE = "features"
FINE_TUNE_TASK = "workers.fine_tune.fine_tune"
SCHEDULED_TASK = "workers.scheduled.scheduled_fine_tune"
MATERIALISE_TASK = "workers.materialise.materialise_features"
RETENTION_TASK = "workers.retention.purge_expired_events"
SEGMENTS_TASK = "workers.segments.refresh_segments"


@dataclass(frozen=True)
class FineTuneRequest:
    job_id: str
    max_steps: int
    batch_size: int = 16
    negatives_per_positive: int = 2
    max_positives: int = 2000
    seed: int = 0
    learning_rate: float = 0.0  # 0: the ranker's default

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FineTuneRequest":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class FineTuneResult:
    job_id: str
    state: str
    parent_version: str
    new_version: str
    examples: int
    final_loss: float
    train_seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TaskSender(Protocol):
    """What the triggers need of Celery (a fake in unit tests)."""

    def send_task(self, name: str, args: list[Any], task_id: str, queue: str) -> Any: ...


def queue_depths(app: Any, queues: tuple[str, ...] = (TRAINING_QUEUE, FEATURES_QUEUE)) -> dict[str, int]:
    """Messages waiting in each worker queue, as the broker counts them (Redis, RabbitMQ or SQLAlchemy);
    a queue the broker does not know yet holds none."""
    from amqp.exceptions import ChannelError

    depths = {}
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        channel = connection.default_channel
        for queue in queues:
            try:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except ChannelError:  # "no queue": nothing was ever routed there
                depths[queue] = 0
    return depths


def celery_client(settings: Settings) -> Any:
    """A Celery app that only sends: same broker and results as the workers, no task modules."""
    from celery import Celery

    app = Celery("shoprank", broker=settings.celery_broker, backend=settings.celery_results)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                    broker_connection_retry_on_startup=True)
    return app
