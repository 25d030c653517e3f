"""A synthetic shop in a fresh event log with version 1 of the fusion ranker trained on its first half
(no Triton: published unloaded), for unit tests of the trainer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog
from rankers import get_ranker
from rankers.base import Ranker, TrainingRun


@dataclass
class FusionLog:
    settings: Settings
    log: EventLog
    ranker: Ranker
    repo: ModelRepository
    cut: float  # the first half's end: version 1 was trained on events before it
    first: int  # version 1


def fusion_log(tmp_path: Path, **settings: Any) -> FusionLog:
    from shopdata.synthetic import generate
    from workers.publishing import train_and_publish

    shop = generate(n_users=30, n_days=40, seed=3)
    config = Settings(data_dir=tmp_path, model_repository=tmp_path / "models", train_device="cpu", train_threads=1, **settings)
    log = EventLog.open(config.eventlog)
    log.catalogue.upsert(shop.items)
    log.events.append(shop.events)
    ranker = get_ranker("fusion")
    repo = ModelRepository(config.model_repository, ranker.model_name)
    cut = shop.events[len(shop.events) // 2].timestamp
    first, _ = train_and_publish(TrainingRun(config, log, repo, parent=None, since=float("-inf"), until=cut, job_id="v1",
                                             max_examples=200), ranker, load_in_triton=False)
    return FusionLog(config, log, ranker, repo, cut, first)
