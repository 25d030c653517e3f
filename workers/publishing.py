"""Publishing a trained candidate, for every ranker: write the version folder (temporary name, atomic
rename), materialise its per-version online features, and, if its gate passed, serve it through
core.model_serving (what served before serves again if the load fails). Used by the fine-tune task, the bootstrap of version 1
and the benchmarks that replay the production path."""
from __future__ import annotations

import logging
from typing import Callable

from core.domain import Lineage
from core.features import FeatureClient
from core.model_repository import ModelRepository
from core.model_serving import model_serving
from core.settings import Settings
from core.store import EventLog
from rankers import get_ranker
from rankers.base import Candidate, Ranker, TrainingRun

logger = logging.getLogger(__name__)


def publish(settings: Settings, ranker: Ranker, repo: ModelRepository, candidate: Candidate, tag: str, *,
            features: FeatureClient | None = None, load_in_triton: bool = True,
            stage: Callable[[str], None] = lambda _: None) -> int:
    """The candidate as the next version; served if it passed its gate. Returns the version."""
    stage("publishing the new version")
    version = repo.publish(candidate.write, candidate.lineage, tag=tag)
    if features is not None:
        stage(f"materialising version {version}'s online features")
        ranker.materialise(repo.version_dir(version), features, version)
    if candidate.passed:
        if load_in_triton and _served_as_canary(settings, ranker, repo, version, features, stage):
            return version  # promoted (candidate.promoted) only if its canary wins: core.experiments.control
        serve(settings, repo, version, load_in_triton, stage)
        candidate.promoted()
    return version


def _served_as_canary(settings: Settings, ranker: Ranker, repo: ModelRepository, version: int,
                      features: FeatureClient | None, stage: Callable[[str], None]) -> bool:
    """With RECSYS_CANARY_SHARE > 0, start the gated version as a canary against the serving one
    instead of serving it to everyone. While any experiment runs, a gated version waits unserved
    (its lineage says so) rather than replace the experiment's arms."""
    from core.experiments.control import LINEAGE_KEY, ExperimentControl, canary_of, running_experiment

    log = EventLog.open(settings.eventlog)
    serving = repo.serving_version()
    running = running_experiment(log)
    if running is not None:
        repo.annotate(version, LINEAGE_KEY, {"event": "not served", "decision": f"experiment {running.experiment_id} is running"})
        stage(f"version {version} passed its gate but waits: experiment {running.experiment_id} is running")
        return True
    if settings.canary_share <= 0 or serving is None or serving == version:
        return False
    stage(f"starting version {version} as a canary on {settings.canary_share:.0%} of shoppers")
    control = ExperimentControl(log, repo, lambda v: ranker.materialise(repo.version_dir(v), features, v) if features else None,
                                model_serving(settings, repo))
    control.start(canary_of(version, serving, settings.canary_share, dict(
        metric=settings.canary_metric, confidence=settings.canary_confidence, margin=settings.canary_margin,
        min_impressions=settings.canary_min_impressions, max_impressions=max(settings.canary_max_impressions, settings.canary_min_impressions))))
    return True


def serve(settings: Settings, repo: ModelRepository, version: int, load_in_triton: bool,
          stage: Callable[[str], None] = lambda _: None) -> None:
    """Serve `version` to everyone (core.model_serving: on failure what served before serves again and
    ServingFailed is raised). Without `load_in_triton` (no Triton watches the repository yet: the
    bootstrap) only the config is pinned."""
    if not load_in_triton:
        repo.pin(version)
        return
    stage(f"loading version {version} in Triton")
    model_serving(settings, repo).serve([version])


def train_and_publish(run: TrainingRun, ranker: Ranker, *, features: FeatureClient | None = None,
                      load_in_triton: bool = True) -> tuple[int, Lineage]:
    """Train `run` with `ranker`'s trainer, then publish (and serve if the gate passed)."""
    candidate = ranker.trainer().train(run)
    version = publish(run.settings, ranker, run.repo, candidate, run.job_id, features=features,
                      load_in_triton=load_in_triton, stage=run.stage)
    return version, candidate.lineage


def bootstrap(settings: Settings, max_steps: int, batch_size: int = 16, seed: int = 0,
              progress: Callable[[int, int, float], None] | None = None, features: FeatureClient | None = None) -> int:
    """Version 1 of the configured ranker, warm-started on the event log (skipped when a version exists)."""
    ranker = get_ranker(settings.ranker)
    repo = ModelRepository(settings.model_repository, ranker.model_name)
    repo.ensure_layout(settings.triton_instance_kind, settings.triton_instances)
    latest = repo.latest()
    if latest is not None:
        logger.info("model repository already has version %s; bootstrap skipped", latest)
        if features is not None:
            ranker.materialise(repo.version_dir(latest), features, latest)
        return latest
    run = TrainingRun(settings, EventLog.open(settings.eventlog), repo, parent=None, since=float("-inf"), job_id="bootstrap",
                      max_steps=max_steps, batch_size=batch_size, max_examples=ranker.first_version_budget(max_steps, batch_size),
                      seed=seed, progress=progress, stage=lambda text: logger.info("bootstrap: %s", text))
    version, _ = train_and_publish(run, ranker, features=features or FeatureClient(settings), load_in_triton=False)
    return version


def main() -> None:
    import argparse

    from core.settings import load

    parser = argparse.ArgumentParser(description="Export and warm-start version 1 of the click model.")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(bootstrap(load(), args.steps))


if __name__ == "__main__":
    main()
