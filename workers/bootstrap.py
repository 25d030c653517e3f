"""The one-shot a deployment runs before its services start (compose's `bootstrap`; idempotent, so it
runs on every `up`): the deployment's certificates and keys, the event log's tables, Feast's
definitions, the model folder with its Triton config for this deployment's instances (KIND_GPU in the
GPU overlay), and version 1 of the click model when the repository has none and the log has baskets to
learn from. On a fresh, empty deployment the first fine-tune trains version 1 instead (TriggerFineTune
works without a version); until then Rank answers `degraded: true` in retrieval order.

    python -m workers.bootstrap [--steps 30]
"""
from __future__ import annotations

import argparse
import logging

from core import features
from core.log_format import configure
from core.model_repository import ModelRepository
from core.security import ensure_secrets
from core.settings import Settings, load
from core.store import EventLog
from rankers import get_ranker
from rankers.base import NothingToLearn

logger = logging.getLogger(__name__)


def bootstrap_deployment(settings: Settings, steps: int) -> int | None:
    """Everything a deployment needs before its services start; the version that serves, if any."""
    from workers.publishing import bootstrap

    ensure_secrets(settings)
    EventLog.open(settings.eventlog)  # creates (or migrates) the log's tables
    features.apply(settings)
    repo = ModelRepository(settings.model_repository, get_ranker(settings.ranker).model_name)
    repo.ensure_layout(settings.triton_instance_kind, settings.triton_instances, reconfigure=True)
    try:
        version = bootstrap(settings, max_steps=steps)
    except NothingToLearn as exc:
        logger.info("no version 1 yet (%s): the first fine-tune will train it", exc)
        return None
    logger.info("version %s of %s is in %s", version, repo.model_name, settings.model_repository)
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps of version 1")
    args = parser.parse_args()
    configure("bootstrap")
    bootstrap_deployment(load(), args.steps)


if __name__ == "__main__":
    main()
