"""Shopper privacy: pseudonymous ids at rest, forgetting a shopper everywhere, and retention.

Storefront ids never reach a store: the services key-hash them (HMAC-SHA256 with the deployment's
pseudonym key, core.security) at the boundary, so the event log, Feast's online store, the replay
reservoir and the logs hold only pseudonyms, and a leaked database does not reveal who shopped. The
same storefront id always maps to the same pseudonym, so Rank, Profile and events work unchanged.

`forget` removes one shopper from every store that holds them: events (event log), history and
interest features (Feast online store), replay examples (reservoir), then rebuilds the shop-wide
popularity their events counted towards, records an erasure receipt, and names the published versions
whose data window held their events (a fine-tune after it cannot see them: they are gone from the log).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import TYPE_CHECKING

from core.store import EventLog
from core.store.erasures import ErasureReceipt

if TYPE_CHECKING:
    from core.feature_sync import FeatureSync
    from core.features import FeatureClient
    from core.model_repository import ModelRepository
    from core.settings import Settings

logger = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "p"  # pseudonyms are "p" + 32 hex characters (128 bits of HMAC-SHA256)


class Pseudonyms:
    """Storefront shopper id → stored id (keyed hash; not reversible without the key)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key

    @classmethod
    def of(cls, settings: "Settings") -> "Pseudonyms":
        from core.security import pseudonym_key

        return cls(pseudonym_key(settings))

    def __call__(self, user_id: str) -> str:
        return PSEUDONYM_PREFIX + hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:32]


def versions_trained_on(repo: "ModelRepository", seqs: list[int], timestamps: list[float]) -> list[str]:
    """Published versions whose training data could hold these events: every version whose window
    reached the oldest of them (a version trains on its new data and replays what came before)."""
    if not seqs:
        return []
    first_seq, first_ts = min(seqs), min(timestamps)
    out = []
    for version in repo.versions():
        lineage = repo.lineage(version)
        if lineage is None:
            continue
        if (lineage.seq_to and lineage.seq_to >= first_seq) or (not lineage.seq_to and lineage.data_to >= first_ts):
            out.append(str(version))
    return out


def forget(user_key: str, requested_by: str, settings: "Settings", log: EventLog, features: "FeatureClient",
           repo: "ModelRepository", sync: "FeatureSync | None" = None) -> ErasureReceipt:
    """Remove the shopper (by pseudonym) from every store; returns the stored receipt. The receipt is
    written first as a tombstone, which every writer that could put the shopper back checks
    (core.store.erasures), so an ingest, a served list or a feature refresh racing with this call loses."""
    started = time.monotonic()
    tombstone = log.erasures.tombstone(user_key, requested_by)
    events = log.events.of_user(user_key)
    trained = versions_trained_on(repo, [e.seq for e in events if e.seq], [e.timestamp for e in events])
    # a fine-tune running now may have read their events already: its version, once published, holds them
    running = sorted(j.job_id for j in log.jobs.active() if j.state == "RUNNING")
    replay = log.replay(settings.replay_capacity)
    removed = {
        "events": log.events.delete_user(user_key),
        "online_feature_rows": features.forget_user(user_key),
        "replay_examples": replay.delete_user(user_key),
        # examples stored before replay rows carried a shopper key cannot be told apart: all of them go
        "replay_examples_unattributed": replay.delete_user(""),
        "served_lists": log.served.delete_user(user_key),
        "attributions": log.attributions.delete_user(user_key),
        # (their stored shopper states, one row with every version's vector, are among the online rows;
        # Triton caches item embeddings only, and the scoring service item, shop and co-purchase features)
    }
    if sync is not None and events:
        sync.refresh_all()  # popularity counted their events; rebuilt from what the log still holds
    receipt = log.erasures.complete(tombstone, removed, trained, running)
    logger.info("forgot shopper %s for %s in %.2fs: %s; trained on by versions %s; running fine-tunes %s", user_key, requested_by,
                time.monotonic() - started, removed, trained or "none", running or "none")
    return receipt


def purge_older_than(log: EventLog, days: float, sync: "FeatureSync | None" = None, now: float | None = None) -> tuple[int, int]:
    """Retention: delete events stamped more than `days` ago and refresh the shoppers they belonged to;
    returns (events removed, shoppers refreshed)."""
    before = (time.time() if now is None else now) - days * 86400.0
    removed, users = log.events.delete_older_than(before)
    # what was served and attributed is history too (by wall clock: when it was served or arrived)
    wall_before = time.time() - days * 86400.0
    log.served.delete_older_than(wall_before)
    log.attributions.delete_older_than(wall_before)
    if sync is not None and removed:
        sync.users(users)
        sync.refresh_all()
    if removed:
        logger.info("retention: removed %d events older than %.1f days (%d shoppers refreshed)", removed, days, len(users))
    return removed, len(users)
