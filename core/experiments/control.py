"""Starting, measuring and ending experiments: the model repository's config lists every arm's version
(the control's first) and carries the definition, Triton loads them all, and the experiment's row in
the log records the decision; ending pins the winner alone. Canaries decide by themselves
(`check_canary`): promoted when their metric is not worse than the control's by the policy's margin at
its confidence, rolled back when it is worse, the control kept when neither is clear by
max_impressions. Every decision lands in the lineage of the arms' versions."""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Callable

from core.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from core.experiments.definition import KEPT_CONTROL, PROMOTED, ROLLED_BACK, RUNNING, Experiment, ExperimentError, validated
from core.experiments.metrics import ArmMetrics, Comparison, arm_metrics, compare
from core.model_repository import ModelRepository
from core.model_serving import ModelServing, ServingFailed
from core.store import EventLog

logger = logging.getLogger(__name__)

LINEAGE_KEY = "experiments"


@dataclass(frozen=True)
class Measured:
    experiment: Experiment
    metrics: list[ArmMetrics]
    comparisons: dict[str, Comparison]


class ExperimentControl:
    """Experiments of one model: `materialise(version)` pushes a version's online features (the
    ranker's), `serving` puts versions into service (core.model_serving). Without them (`reader`) it
    only reads and measures."""

    def __init__(self, log: EventLog, repo: ModelRepository, materialise: Callable[[int], None] | None = None,
                 serving: ModelServing | None = None) -> None:
        self.log = log
        self.repo = repo
        self._materialise = materialise
        self._serving = serving

    @classmethod
    def reader(cls, log: EventLog, repo: ModelRepository) -> "ExperimentControl":
        """One that reads and measures experiments (reports, metrics endpoints) and changes nothing."""
        return cls(log, repo)

    def materialise(self, version: int) -> None:
        if self._materialise is None:
            raise RuntimeError("this ExperimentControl only reads")
        self._materialise(version)

    @property
    def serving(self) -> ModelServing:
        if self._serving is None:
            raise RuntimeError("this ExperimentControl only reads")
        return self._serving

    def start(self, experiment: Experiment) -> Experiment:
        """Validate, record and serve the experiment (idempotent by id: the same running experiment comes back)."""
        experiment_id = experiment.experiment_id or f"exp-{uuid.uuid4().hex[:10]}"
        existing = self.log.experiments.get(experiment_id)
        if existing is not None:
            if existing.arms == experiment.arms and existing.canary == experiment.canary:
                return existing
            raise FailedPrecondition(f"experiment {experiment_id} exists with other arms; choose another id")
        if running := self.log.experiments.running():
            raise FailedPrecondition(f"experiment {running[0].experiment_id} is running; end it first (one experiment at a time)")
        try:
            experiment = validated(replace(experiment, experiment_id=experiment_id, created=time.time(), state=RUNNING),
                                   self.repo.versions(), self.repo.serving_version())
        except ExperimentError as exc:
            raise InvalidArgument(str(exc)) from None
        for version in experiment.versions():
            self.materialise(version)  # per-version features are keyed by version: serving ones are untouched
        stored, _ = self.log.experiments.create(experiment)
        try:
            self.serving.serve(experiment.versions(), stored.to_json())
        except ServingFailed as exc:
            self._finish(stored, KEPT_CONTROL, stored.control_arm, f"not started: {exc}")
            raise
        for arm in stored.arms:
            self.repo.annotate(int(arm.version), LINEAGE_KEY, {"experiment_id": stored.experiment_id, "arm": arm.name, "event": "started",
                                                               "canary": stored.canary, "share": arm.share, "shadow": arm.shadow, "at": stored.created})
        logger.info("experiment %s started: %s", stored.experiment_id, ", ".join(f"{a.name}=v{a.version}@{a.share:g}" for a in stored.arms))
        return stored

    def get(self, experiment_id: str) -> Experiment:
        experiment = self.log.experiments.get(experiment_id)
        if experiment is None:
            raise NotFound(f"no experiment {experiment_id[:80]!r}")
        return experiment

    def measure(self, experiment: Experiment, until: float | None = None, look: bool = True) -> Measured:
        """Per-arm metrics and the comparisons with the control. A look (`look`) continues the
        sequential tests from their stored running minima and stores the new ones."""
        served = self.log.served.of_experiment(experiment.experiment_id, until)
        attributed = self.log.attributions.of_experiment(experiment.experiment_id, until)
        metrics = arm_metrics(experiment, served, attributed)
        previous = self.log.experiments.tests(experiment.experiment_id) if look else {}
        comparisons = compare(experiment, metrics, previous)
        if look and experiment.state == RUNNING:
            self.log.experiments.save_tests(experiment.experiment_id, {a: (c.p_equal, c.p_inferior) for a, c in comparisons.items()})
        return Measured(experiment, metrics, comparisons)

    def end(self, experiment_id: str, promote_arm: str = "", decided_by: str = "operator", reason: str = "") -> Experiment:
        """Serve `promote_arm`'s version to everyone (empty: the control's) and record why."""
        experiment = self.get(experiment_id)
        if experiment.state != RUNNING:
            raise FailedPrecondition(f"experiment {experiment_id} already ended ({experiment.state}: {experiment.decision})")
        winner = promote_arm or experiment.control_arm
        try:
            experiment.arm(winner)
        except ExperimentError as exc:
            raise InvalidArgument(str(exc)) from None
        state = KEPT_CONTROL if winner == experiment.control_arm else PROMOTED
        return self._serve_and_finish(experiment, winner, state, reason or f"ended by {decided_by}")

    def check_canary(self, experiment: Experiment) -> Experiment | None:
        """One look at a running canary: promote, roll back, keep the control, or nothing yet (None)."""
        if experiment.state != RUNNING or not experiment.canary:
            return None
        measured = self.measure(experiment)
        decision = canary_decision(measured)
        if decision is None:
            return None
        state, winner, reason = decision
        logger.warning("canary %s: %s", experiment.experiment_id, reason)
        return self._serve_and_finish(experiment, winner, state, reason)

    def abandon(self, experiment: Experiment, reason: str) -> Experiment:
        """Record the end of an experiment whose versions something else replaced (a Rollback)."""
        return self._finish(experiment, KEPT_CONTROL, experiment.control_arm, reason)

    def _serve_and_finish(self, experiment: Experiment, winner: str, state: str, reason: str) -> Experiment:
        version = int(experiment.arm(winner).version)
        try:
            self.serving.serve([version])
        except ServingFailed as exc:
            raise Unavailable(f"{exc}: experiment {experiment.experiment_id} keeps running") from None
        logger.info("experiment %s ended (%s): version %d serves", experiment.experiment_id, state, version)
        return self._finish(experiment, state, winner, reason)

    def _finish(self, experiment: Experiment, state: str, winner: str, reason: str) -> Experiment:
        ended = replace(experiment, state=state, ended=time.time(), decision=reason, winner_arm=winner)
        summary = {}
        try:
            measured = self.measure(ended, look=False)
            summary = {m.arm: {"impressions": m.impressions, "clicks": m.clicks, "purchases": m.purchases,
                               **{k: round(e.value, 6) for k, e in m.estimates.items()}} for m in measured.metrics}
        except Exception:  # noqa: BLE001 - the decision stands without its summary
            logger.exception("could not summarise experiment %s", experiment.experiment_id)
        if not self.log.experiments.finish(ended):
            return self.get(experiment.experiment_id)  # another decider ended it first
        for arm in ended.arms:
            self.repo.annotate(int(arm.version), LINEAGE_KEY, {"experiment_id": ended.experiment_id, "arm": arm.name, "event": state,
                                                               "winner": winner, "decision": reason, "at": ended.ended, "metrics": summary})
        return ended


def canary_decision(measured: Measured) -> tuple[str, str, str] | None:
    """(state, winner arm, reason) once the canary's sequential test or its sample cap decides."""
    experiment = measured.experiment
    policy = experiment.policy
    candidate = next(a for a in experiment.shown_arms if a.name != experiment.control_arm)
    by_arm = {m.arm: m for m in measured.metrics}
    shown = [by_arm[a.name].impressions for a in experiment.shown_arms]
    comparison = measured.comparisons[candidate.name]
    diff = comparison.difference
    numbers = (f"{policy.metric} {by_arm[candidate.name].estimates[policy.metric].value:.4f} vs control "
               f"{by_arm[experiment.control_arm].estimates[policy.metric].value:.4f}, difference {diff.value:+.4f}, "
               f"always-valid p {comparison.p_equal:.4f} (no difference) / {comparison.p_inferior:.4f} (worse by the margin), "
               f"impressions {'/'.join(map(str, shown))}")
    if min(shown) < policy.min_impressions:
        return None
    if comparison.verdict == "worse":
        return ROLLED_BACK, experiment.control_arm, f"canary rolled back automatically: worse at {policy.confidence:.0%} ({numbers})"
    if comparison.verdict in ("better", "not worse"):
        return PROMOTED, candidate.name, f"canary promoted automatically: {comparison.verdict} at {policy.confidence:.0%} ({numbers})"
    if min(shown) >= policy.max_impressions:
        return KEPT_CONTROL, experiment.control_arm, f"canary undecided after {policy.max_impressions} impressions per arm; control kept ({numbers})"
    return None


def running_experiment(log: EventLog) -> Experiment | None:
    running = log.experiments.running()
    return running[0] if running else None


def canary_of(version: int, serving: int, share: float, policy_fields: dict | None = None) -> Experiment:
    """The canary experiment of a newly gated `version` against the `serving` one."""
    from core.experiments.definition import Arm, Policy

    policy = Policy(**(policy_fields or {}))
    return Experiment(f"canary-v{version}", (Arm("control", str(serving), round(1 - share, 6)), Arm("candidate", str(version), share)),
                      "control", canary=True, policy=policy)


