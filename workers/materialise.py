"""Materialising what changes per period or per version into the online store: every item's
popularity and the shop's clock and popular list (their windows slide with time), and the serving
version's own features (its co-purchase neighbours), rebuilt from the event log and the version's
folder. Celery beat runs it periodically; `python -m workers.materialise` runs it once."""
from __future__ import annotations

import logging

from celery import shared_task

from core.feature_sync import FeatureSync
from core.features import FeatureClient
from core.model_repository import ModelRepository
from core.settings import Settings, load
from core.store import EventLog
from core.tasks import FEATURES_QUEUE, MATERIALISE_TASK
from rankers import get_ranker

logger = logging.getLogger(__name__)


def materialise(settings: Settings) -> str:
    features = FeatureClient(settings)
    FeatureSync(EventLog.open(settings.eventlog), features).refresh_all()
    ranker = get_ranker(settings.ranker)
    repo = ModelRepository(settings.model_repository, ranker.model_name)
    serving = repo.serving_version()
    if serving is not None:
        ranker.materialise(repo.version_dir(serving), features, serving)
    return f"popularity refreshed; version {serving} materialised"


@shared_task(name=MATERIALISE_TASK, queue=FEATURES_QUEUE)
def materialise_features() -> str:
    return materialise(load())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(materialise(load()))
