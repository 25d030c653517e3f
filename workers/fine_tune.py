"""The fine-tune task: new labelled events → fine-tuned serving version → version N+1 served by Triton.

Idempotent by job id: a job that already succeeded returns its result without training again; a job
redelivered after its worker died (acks_late) starts over, after stale temporaries are removed.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Iterator

from celery import shared_task
from celery.signals import worker_ready

from core import log_format
from core.log_format import bound
from core.model_repository import ModelRepository
from core.settings import Settings, load
from core.store import EventLog
from core.tasks import FINE_TUNE_TASK, TRAINING_QUEUE, FineTuneRequest, FineTuneResult
from rankers import get_ranker
from rankers.base import NothingToLearn, TrainingRun

logger = logging.getLogger(__name__)


@worker_ready.connect
def recover_interrupted_jobs(sender: object = None, **_: object) -> None:
    """A training worker that starts fails the jobs no live worker holds (to be triggered again): those
    claimed under its own node name (it died and restarted) and those whose lease ran out. Half-written
    version folders are removed only when no other worker is training (it may be writing one)."""
    settings = load()
    log = EventLog.open(settings.eventlog)
    node = str(getattr(sender, "hostname", "") or "")
    for job in log.jobs.abandoned(node, settings.job_lease_s):
        log.jobs.update(job.job_id, state="FAILED", message="interrupted: the worker stopped during training; trigger again")
        logger.warning("job %s was interrupted (worker %s stopped); marked FAILED", job.job_id, job.owner or "?")
    if not [j for j in log.jobs.active(settings.job_lease_s) if j.state == "RUNNING"]:
        removed = ModelRepository(settings.model_repository, get_ranker(settings.ranker).model_name).clean_stale_temporaries()
        if removed:
            logger.warning("removed unfinished version folders: %s", removed)


@contextlib.contextmanager
def lease(log: EventLog, job_id: str, lease_s: float) -> Iterator[None]:
    """Renew the job's lease from a thread while this process works on it (training steps report
    progress, but tracing, gating and Triton's load can run for a while without a report)."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(max(1.0, lease_s / 4)):
            try:
                log.jobs.touch(job_id)
            except Exception:  # a missed renewal is retried; the lease is a quarter-interval long
                logger.warning("could not renew the lease of job %s", job_id, exc_info=True)

    thread = threading.Thread(target=renew, name=f"lease-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@shared_task(name=FINE_TUNE_TASK, queue=TRAINING_QUEUE, acks_late=True, bind=True)
def fine_tune(self, payload: dict) -> dict:
    request = FineTuneRequest.from_json(payload)
    with bound(log_format.job_id, request.job_id):  # every log line of the run carries the job id
        return _fine_tune(self, request)


def _fine_tune(task: Any, request: FineTuneRequest) -> dict:
    """The fine-tune task's run (`task` is the bound Celery task: its hostname, its retry)."""
    settings = load()
    log = EventLog.open(settings.eventlog)
    repo = ModelRepository(settings.model_repository, get_ranker(settings.ranker).model_name)

    parent = repo.serving_version()
    job, _ = log.jobs.create(request.job_id, "" if parent is None else str(parent), request.max_steps)
    if job.state in ("SUCCEEDED", "REJECTED"):
        logger.info("job %s already ended %s (version %s); nothing to do", job.job_id, job.state, job.new_version)
        return FineTuneResult(job.job_id, job.state, job.parent_version, job.new_version, 0, 0.0, 0.0).to_json()

    if not log.jobs.claim(request.job_id, owner=task.request.hostname or "", lease_s=settings.job_lease_s):
        # Another fine-tune of this model is running: never two at once. Come back later.
        log.jobs.update(request.job_id, state="PENDING", message="waiting: another fine-tune is running")
        raise task.retry(countdown=30, max_retries=None)
    with lease(log, request.job_id, settings.job_lease_s):
        return _train_claimed(request, settings, log, repo, parent)


class TimeLimitExceeded(Exception):
    """The run went past RECSYS_FINE_TUNE_TIME_LIMIT_S (checked at every progress report and stage)."""


class Deadline:
    """Celery's time limits need the prefork pool; the training worker runs `--pool solo` (one job at a
    time, torch in the worker process), so the run checks its own deadline where it reports progress."""

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s, self.clock = limit_s, clock
        self.until = clock() + limit_s

    def check(self) -> None:
        if self.clock() > self.until:
            raise TimeLimitExceeded(f"ran past the time limit of {self.limit_s:.0f} s (RECSYS_FINE_TUNE_TIME_LIMIT_S)")


def _train_claimed(request: FineTuneRequest, settings: Settings, log: EventLog, repo: ModelRepository, parent: int | None) -> dict:
    """The claimed job: the ranker trains from the serving version on what is new since its data
    window (with replay), gates the candidate, and the version is published (served if it passed).
    With no version yet (a fresh deployment whose bootstrap found an empty log), it trains version 1
    from the pretrained text towers on the whole log, as the bootstrap would, and serves it."""
    from core.features import FeatureClient
    from workers.publishing import train_and_publish

    removed = repo.clean_stale_temporaries()  # only the job holding the claim may touch temporaries
    if removed:
        logger.warning("removed unfinished version folders: %s", removed)
    lineage = repo.lineage(parent) if parent is not None else None
    ranker = get_ranker(settings.ranker)
    repo.ensure_layout(settings.triton_instance_kind, settings.triton_instances)
    last_report = [0.0]
    stages = iter((0.1, 0.3, 0.5, 0.8, 0.9, 0.93, 0.95, 0.97))
    deadline = Deadline(settings.fine_tune_time_limit_s)

    def progress(step: int, total: int, loss: float) -> None:
        deadline.check()
        now = time.monotonic()
        if step == total or now - last_report[0] > 0.5:  # bound the write rate to the job table
            last_report[0] = now
            log.jobs.update(request.job_id, progress=0.9 * step / total, message=f"step {step}/{total} loss {loss:.4f}")

    def stage(text: str) -> None:
        deadline.check()
        log.jobs.update(request.job_id, progress=next(stages, 0.97), message=text)

    parent_text = "" if parent is None else str(parent)
    log.jobs.update(request.job_id, progress=0.0, parent_version=parent_text, message="building examples")
    # New data is what arrived after the parent's window (arrival numbers); versions from before arrival
    # numbers existed fall back to their newest event time.
    after_seq = lineage.seq_to if lineage and lineage.seq_to else None
    run = TrainingRun(settings, log, repo, parent=parent, since=lineage.data_to if lineage else float("-inf"), after_seq=after_seq,
                      job_id=request.job_id,
                      max_steps=request.max_steps, batch_size=request.batch_size, max_examples=ranker.fine_tune_budget(request.max_positives) if parent is not None else ranker.first_version_budget(request.max_steps, request.batch_size),
                      negatives_per_positive=request.negatives_per_positive, seed=request.seed, learning_rate=request.learning_rate,
                      progress=progress, stage=stage)
    try:
        version, new_lineage = train_and_publish(run, ranker, features=FeatureClient(settings))
    except NothingToLearn as exc:
        log.jobs.update(request.job_id, state="FAILED", message=str(exc)[:500])
        return FineTuneResult(request.job_id, "FAILED", parent_text, "", 0, 0.0, 0.0).to_json()
    except Exception as exc:
        logger.exception("fine-tune %s failed", request.job_id)
        message = f"{type(exc).__name__}: {exc}"[:500]
        log.jobs.update(request.job_id, state="FAILED", message=message)
        raise RuntimeError(message) from None  # plain type: the result backend must be able to store it
    if new_lineage.gate.get("passed", True):
        state, message = "SUCCEEDED", f"version {version} serving; {new_lineage.example_count} examples, loss {new_lineage.final_loss:.4f}"
    else:
        state, message = "REJECTED", f"version {version} kept, not served: {new_lineage.gate['reason']}"
    log.jobs.update(request.job_id, state=state, progress=1.0, new_version=str(version), message=message[:500])
    return FineTuneResult(request.job_id, state, parent_text, str(version), new_lineage.example_count,
                          new_lineage.final_loss, new_lineage.train_seconds).to_json()
