"""Retention: events stamped more than RECSYS_RETENTION_DAYS ago are deleted from the event log and
the online features of their shoppers and the shop are rebuilt from what remains. Off by default (0);
Celery beat runs it daily when set; `python -m workers.retention` runs it once."""
from __future__ import annotations

import logging

from celery import shared_task

from core.feature_sync import FeatureSync
from core.features import FeatureClient
from core.privacy import purge_older_than
from core.settings import Settings, load
from core.store import EventLog
from core.tasks import FEATURES_QUEUE, RETENTION_TASK

logger = logging.getLogger(__name__)


def purge(settings: Settings) -> str:
    if settings.retention_days <= 0:
        return "retention is off (RECSYS_RETENTION_DAYS=0)"
    log = EventLog.open(settings.eventlog)
    removed, users = purge_older_than(log, settings.retention_days, FeatureSync(log, FeatureClient(settings)))
    return f"removed {removed} events older than {settings.retention_days:g} days; {users} shoppers refreshed"


@shared_task(name=RETENTION_TASK, queue=FEATURES_QUEUE)
def purge_expired_events() -> str:
    return purge(load())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(purge(load()))
