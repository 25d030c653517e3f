"""Shopper segmentation: every shopper's interest events from the event log (the system of record)
summarised by core.portrait.segment_features, clustered with k-means, and pushed to Feast (each
shopper's segment, and the segment list with names and sizes) for GetProfile and ListSegments. Celery
beat runs it every RECSYS_SEGMENT_REFRESH_S; `python -m workers.segments` runs it once."""
from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict

import numpy as np
from celery import shared_task

from core.domain import INTEREST_EVENTS
from core.feature_sync import INTEREST_LIMIT
from core.features import FeatureClient
from core.portrait import SEGMENT_CATEGORIES, Segment, describe, kmeans, segment_features
from core.settings import Settings, load
from core.store import EventLog
from core.tasks import FEATURES_QUEUE, SEGMENTS_TASK

logger = logging.getLogger(__name__)

SHOPPERS_PER_SEGMENT = 20  # a small shop gets fewer segments than RECSYS_SEGMENTS


def segment_shoppers(log: EventLog, features: FeatureClient, segments: int, seed: int = 0) -> list[Segment]:
    """Cluster every shopper with interest events; segments are numbered by size, largest first."""
    started, wall_started = time.perf_counter(), time.time()
    interests: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for e in log.events.read():
        if e.event_type in INTEREST_EVENTS:
            interests[e.user_id].append((e.item_id, e.timestamp))
    # an erased shopper's events from before the erasure may still be in the read (its deletes run after
    # the tombstone): only what they did since counts
    for user, at in log.erasures.erased_at_map(interests).items():
        interests[user] = [(i, ts) for i, ts in interests[user] if ts > at]
        if not interests[user]:
            del interests[user]
    if not interests:
        features.push_segments({}, [], time.time())
        return []
    catalogue = log.catalogue.items()
    clock = log.events.newest_time() or time.time()
    users = sorted(interests)
    for u in users:  # newest first and capped, as the online store keeps them
        interests[u] = sorted(interests[u], key=lambda x: -x[1])[:INTEREST_LIMIT]
    counts = Counter(catalogue[i].category for u in users for i, _ in interests[u] if i in catalogue and catalogue[i].category)
    categories = [c for c, _ in counts.most_common(SEGMENT_CATEGORIES)]
    x = np.stack([segment_features(interests[u], catalogue, clock, categories) for u in users])
    k = max(1, min(segments, len(users) // SHOPPERS_PER_SEGMENT))
    labels, centres = kmeans(x, k, seed)
    sizes = Counter(labels.tolist())
    order = sorted(sizes, key=lambda j: (-sizes[j], j))
    renumber = {old: new for new, old in enumerate(order)}
    result = [Segment(renumber[j], describe(centres[j], categories), sizes[j]) for j in order]
    features.push_segments({u: renumber[int(label)] for u, label in zip(users, labels)}, result, time.time())
    for user in log.erasures.erased_since(users, wall_started):  # erased while this ran: the write must not keep them
        features.forget_user(user)
    logger.info("segmented %d shoppers into %d segments in %.1fs", len(users), len(result), time.perf_counter() - started)
    return result


def refresh(settings: Settings) -> str:
    result = segment_shoppers(EventLog.open(settings.eventlog), FeatureClient(settings), settings.segments)
    return f"{sum(s.size for s in result)} shoppers in {len(result)} segments"


@shared_task(name=SEGMENTS_TASK, queue=FEATURES_QUEUE)
def refresh_segments() -> str:
    return refresh(load())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(refresh(load()))
