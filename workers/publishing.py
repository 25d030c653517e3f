"""Train a click model version and publish it to the Triton repository: shared by the fine-tune task
and the bootstrap of version 1. Torch is imported here lazily, only in processes that train."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from clickmodel.training import Event, Example, build_examples
from services.config import Settings
from services.eventlog import EventLog
from services.model_repository import Lineage, ModelRepository
from services.triton_client import TritonClickClient

logger = logging.getLogger(__name__)


def examples_since(log: EventLog, since: float, negatives: int, max_positives: int, seed: int) -> tuple[list[Example], float, float]:
    """Examples from positives newer than `since`; returns (examples, data_from, data_to)."""
    events: list[Event] = log.events()
    fresh = [e.timestamp for e in events if e.timestamp > since]
    if not fresh:
        return [], since, since
    examples = build_examples(
        events, log.catalogue(), since=since + 1e-6 if since > float("-inf") else since,
        negatives_per_positive=negatives, max_positives=max_positives, seed=seed,
    )
    return examples, min(fresh), max(fresh)


def train_and_publish(
    settings: Settings,
    *,
    parent: int | None,
    examples: list[Example],
    data_window: tuple[float, float],
    max_steps: int,
    batch_size: int,
    job_id: str,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    stage: Callable[[str], None] = lambda _: None,
    load_in_triton: bool = True,
) -> tuple[int, Lineage]:
    """Fine-tune `parent` (or the pretrained encoder when None), publish it as the next version, and
    ask Triton to load it; returns the new version number and its lineage."""
    from clickmodel.network import build_model, load_for_training, save_torchscript
    from clickmodel.training import fine_tune

    repo = ModelRepository(settings.model_repository)
    model = build_model(seed=seed) if parent is None else load_for_training(repo.model_path(parent))
    report = fine_tune(model, examples, max_steps=max_steps, batch_size=batch_size, max_length=settings.max_length, seed=seed, progress=progress)
    lineage = Lineage(
        version="",
        parent_version="" if parent is None else str(parent),
        created=time.time(),
        data_from=data_window[0],
        data_to=data_window[1],
        example_count=len(examples),
        final_loss=report.final_loss,
        job_id=job_id,
        train_seconds=report.seconds,
        notes={"steps": report.steps, "mean_loss": report.mean_loss, "examples_seen": report.examples_seen},
    )
    stage("tracing and publishing the new version")
    version = repo.publish(lambda path: save_torchscript(model, path), lineage, tag=job_id)
    if load_in_triton:
        stage(f"loading version {version} in Triton")
        wait_serving(settings, version)
    return version, lineage


def wait_serving(settings: Settings, version: int, timeout_s: float = 120.0) -> None:
    """Explicit load of the model, then wait until Triton reports `version` ready."""
    client = TritonClickClient(settings.triton_grpc_url, settings.triton_timeout_s)
    try:
        client.load()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if str(version) in client.serving_versions():
                return
            time.sleep(0.2)
        raise TimeoutError(f"Triton did not report version {version} ready within {timeout_s:.0f}s")
    finally:
        client.close()


def bootstrap(
    settings: Settings, max_steps: int, batch_size: int = 16, seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> int:
    """Version 1: the packaged MiniLM encoder plus a click head, warm-started on the event log."""
    log = EventLog(settings.eventlog)
    repo = ModelRepository(settings.model_repository)
    repo.ensure_layout()
    if repo.latest() is not None:
        logger.info("model repository already has version %s; bootstrap skipped", repo.latest())
        return repo.latest()  # type: ignore[return-value]
    examples, lo, hi = examples_since(log, float("-inf"), negatives=2, max_positives=max_steps * batch_size, seed=seed)
    if not examples:
        raise RuntimeError("the event log has no labelled events to warm-start version 1 on")
    version, _ = train_and_publish(
        settings, parent=None, examples=examples, data_window=(lo, hi), max_steps=max_steps,
        batch_size=batch_size, job_id="bootstrap", seed=seed, progress=progress, load_in_triton=False,
    )
    return version


def main() -> None:
    import argparse

    from services.config import load

    parser = argparse.ArgumentParser(description="Export and warm-start version 1 of the click model.")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(bootstrap(load(), args.steps))


if __name__ == "__main__":
    main()
