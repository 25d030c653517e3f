"""The experiment RPCs of the model-admin service: requests into core.experiments' definitions and
experiments (with their measured metrics) into messages. The decisions live in core/experiments/control.py."""
from __future__ import annotations

from core.errors import InvalidArgument
from core.experiments.control import ExperimentControl, Measured
from core.experiments.definition import Arm, Experiment, Policy
from core.experiments.stats import Estimate
from services.messages import ts
from shoprank.v1 import experiments_pb2, model_admin_pb2
from shoprank_client.enums import experiment_metric_enum, experiment_metric_of, experiment_state_enum

MAX_ARMS = 8


def definition_of(request: model_admin_pb2.CreateExperimentRequest) -> Experiment:
    """The requested experiment, policy defaults filled in (validated further by ExperimentControl.start)."""
    if not 2 <= len(request.arms) <= MAX_ARMS:
        raise InvalidArgument(f"{len(request.arms)} arms; send 2 to {MAX_ARMS}")
    defaults = Policy()
    p = request.policy
    metric = experiment_metric_of(p.metric)
    if metric is None:
        raise InvalidArgument(f"unknown policy.metric {p.metric}")
    policy = Policy(metric=metric, confidence=p.confidence or defaults.confidence, margin=p.margin or defaults.margin,
                    min_impressions=p.min_impressions or defaults.min_impressions,
                    max_impressions=p.max_impressions or max(defaults.max_impressions, p.min_impressions), k=p.k or defaults.k)
    arms = tuple(Arm(a.name, a.version, float(a.share), bool(a.shadow)) for a in request.arms)
    return Experiment(request.experiment_id, arms, request.control_arm, canary=request.canary, policy=policy)


def _estimate(e: Estimate, confidence: float) -> experiments_pb2.Estimate:
    low, high = e.interval(confidence)
    return experiments_pb2.Estimate(value=e.value, low=low, high=high)


def experiment_message(experiment: Experiment, measured: Measured | None = None) -> experiments_pb2.Experiment:
    p = experiment.policy
    msg = experiments_pb2.Experiment(
        experiment_id=experiment.experiment_id, state=experiment_state_enum(experiment.state), control_arm=experiment.control_arm,
        canary=experiment.canary, created=ts(experiment.created), ended=ts(experiment.ended), decision=experiment.decision,
        winner_arm=experiment.winner_arm,
        arms=[experiments_pb2.ExperimentArm(name=a.name, version=a.version, share=a.share, shadow=a.shadow) for a in experiment.arms],
        policy=experiments_pb2.ExperimentPolicy(metric=experiment_metric_enum(p.metric), confidence=p.confidence, margin=p.margin,
                                                min_impressions=p.min_impressions, max_impressions=p.max_impressions, k=p.k))
    if measured is None:
        return msg
    for m in measured.metrics:
        arm = msg.metrics.add(arm=m.arm, version=m.version, shadow=m.shadow, shoppers=m.shoppers, requests=m.requests,
                              impressions=m.impressions, clicks=m.clicks, add_to_carts=m.add_to_carts, purchases=m.purchases,
                              revenue=m.revenue)
        for name, field in (("ctr", "ctr_at_k"), ("conversion", "conversion"), ("revenue_per_impression", "revenue_per_impression"),
                            ("debiased_ctr", "debiased_ctr"), ("ndcg", "ndcg")):
            getattr(arm, field).CopyFrom(_estimate(m.estimates[name], p.confidence))
        if (c := measured.comparisons.get(m.arm)) is not None:
            arm.versus_control.CopyFrom(experiments_pb2.ArmComparison(
                difference=_estimate(c.difference, p.confidence), always_valid_p=c.p_equal, non_inferiority_p=c.p_inferior, verdict=c.verdict))
    return msg


class ExperimentAdmin:
    """The four RPCs over one ExperimentControl (ModelAdminServicer delegates to it)."""

    def __init__(self, control: ExperimentControl) -> None:
        self.control = control

    def create(self, request: model_admin_pb2.CreateExperimentRequest) -> model_admin_pb2.CreateExperimentResponse:
        started = self.control.start(definition_of(request))
        return model_admin_pb2.CreateExperimentResponse(experiment=experiment_message(started))

    def get(self, request: model_admin_pb2.GetExperimentRequest) -> model_admin_pb2.GetExperimentResponse:
        if not request.experiment_id:
            raise InvalidArgument("missing experiment_id")
        experiment = self.control.get(request.experiment_id)
        return model_admin_pb2.GetExperimentResponse(experiment=experiment_message(experiment, self.control.measure(experiment)))

    def list(self, request: model_admin_pb2.ListExperimentsRequest) -> model_admin_pb2.ListExperimentsResponse:
        limit = request.limit or 50
        if not 1 <= limit <= 1000:
            raise InvalidArgument(f"limit {limit} outside 1..1000 (0 = 50)")
        return model_admin_pb2.ListExperimentsResponse(experiments=[experiment_message(e) for e in self.control.log.experiments.recent(limit)])

    def end(self, request: model_admin_pb2.EndExperimentRequest, decided_by: str) -> model_admin_pb2.EndExperimentResponse:
        if not request.experiment_id:
            raise InvalidArgument("missing experiment_id")
        ended = self.control.end(request.experiment_id, request.promote_arm, decided_by=decided_by)
        return model_admin_pb2.EndExperimentResponse(experiment=experiment_message(ended, self.control.measure(ended, look=False)))
