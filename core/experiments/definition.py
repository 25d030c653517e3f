"""What an experiment is: arms (a version and a share of shoppers each, or a shadow), a control, a
policy; and which arm a shopper is in.

Assignment is a pure function of the experiment id and the shopper's key (SHA-256 to a point in
[0, 1), arms laid end to end by share), so every request and every scoring replica puts a shopper in
the same arm without sharing state, and a new experiment reshuffles shoppers independently of the last.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from core.ids import check_name, is_version, shown

METRICS = ("ctr", "conversion", "revenue_per_impression", "ndcg")
RUNNING, PROMOTED, KEPT_CONTROL, ROLLED_BACK = "running", "promoted", "kept_control", "rolled_back"
STATES = (RUNNING, PROMOTED, KEPT_CONTROL, ROLLED_BACK)


class ExperimentError(ValueError):
    """An experiment definition that cannot run (the message says why)."""


@dataclass(frozen=True)
class Arm:
    name: str
    version: str
    share: float = 0.0
    shadow: bool = False


@dataclass(frozen=True)
class Policy:
    metric: str = "ctr"
    confidence: float = 0.95
    margin: float = 0.1  # relative to the control's value
    min_impressions: int = 500
    max_impressions: int = 20000
    k: int = 10


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    arms: tuple[Arm, ...]
    control_arm: str
    canary: bool = False
    policy: Policy = field(default_factory=Policy)
    created: float = 0.0
    state: str = RUNNING
    ended: float = 0.0
    decision: str = ""
    winner_arm: str = ""

    @property
    def shown_arms(self) -> tuple[Arm, ...]:
        return tuple(a for a in self.arms if not a.shadow)

    @property
    def shadow_arms(self) -> tuple[Arm, ...]:
        return tuple(a for a in self.arms if a.shadow)

    @property
    def control(self) -> Arm:
        return self.arm(self.control_arm)

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise ExperimentError(f"experiment {self.experiment_id} has no arm {name!r}")

    def versions(self) -> list[int]:
        """Every arm's version, the control's first (what Triton must serve while it runs)."""
        return list(dict.fromkeys([int(self.control.version)] + [int(a.version) for a in self.arms]))

    def assign(self, user_key: str) -> Arm:
        """The shown arm of this shopper: sticky (a hash of experiment id and shopper), by share."""
        point = bucket(self.experiment_id, user_key)
        edge = 0.0
        arms = self.shown_arms
        for arm in arms:
            edge += arm.share
            if point < edge:
                return arm
        return arms[-1]  # rounding at the top end

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Experiment":
        data = json.loads(text)
        data["arms"] = tuple(Arm(**a) for a in data["arms"])
        data["policy"] = Policy(**data.get("policy", {}))
        return cls(**data)


def bucket(experiment_id: str, user_key: str) -> float:
    """A point in [0, 1) for this shopper in this experiment."""
    digest = hashlib.sha256(f"{experiment_id}\x00{user_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def validated(experiment: Experiment, published: list[int], serving: int | None) -> Experiment:
    """The experiment with its defaults checked, or ExperimentError naming what is wrong."""
    if reason := check_name(experiment.experiment_id, "experiment_id"):
        raise ExperimentError(reason)
    names = [a.name for a in experiment.arms]
    if len(experiment.shown_arms) < 1 or len(experiment.arms) < 2:
        raise ExperimentError("an experiment needs at least two arms, at least one of them shown")
    for n in names:
        if reason := check_name(n, "arm name"):
            raise ExperimentError(reason)
    if len(set(names)) != len(names):
        raise ExperimentError(f"arm names must be unique: {', '.join(names)}")
    for a in experiment.arms:
        if not is_version(a.version) or int(a.version) not in published:
            raise ExperimentError(f"arm {a.name}: no published version {shown(a.version)}; versions: {', '.join(map(str, published))}")
        if a.shadow and a.share != 0:
            raise ExperimentError(f"arm {a.name} is a shadow: its share must be 0")
        if not a.shadow and not 0 < a.share <= 1:
            raise ExperimentError(f"arm {a.name}: share {a.share} outside (0, 1]")
    total = sum(a.share for a in experiment.shown_arms)
    if abs(total - 1.0) > 1e-6:
        raise ExperimentError(f"the shown arms' shares sum to {total:g}, not 1")
    control = experiment.control_arm or next((a.name for a in experiment.shown_arms if serving is not None and int(a.version) == serving), "")
    if control not in names:
        raise ExperimentError(f"control arm {experiment.control_arm or '(the serving version ' + str(serving) + ')'} is not among the arms {names}")
    if experiment.arm(control).shadow:
        raise ExperimentError("the control arm cannot be a shadow")
    if serving is not None and int(experiment.arm(control).version) != serving:
        raise ExperimentError(f"the control arm must serve the current version {serving}, not {experiment.arm(control).version}")
    p = experiment.policy
    if p.metric not in METRICS:
        raise ExperimentError(f"metric {p.metric!r}; choose one of {', '.join(METRICS)}")
    if not 0.5 <= p.confidence <= 0.999:
        raise ExperimentError(f"confidence {p.confidence} outside 0.5..0.999")
    if not 0 <= p.margin < 1:
        raise ExperimentError(f"margin {p.margin} outside 0..1")
    if not 1 <= p.k <= 100:
        raise ExperimentError(f"k {p.k} outside 1..100")
    if not 1 <= p.min_impressions <= p.max_impressions:
        raise ExperimentError(f"min_impressions {p.min_impressions} must be at least 1 and at most max_impressions {p.max_impressions}")
    if experiment.canary and len(experiment.shown_arms) != 2:
        raise ExperimentError("a canary compares exactly two shown arms: the control and the candidate")
    return replace(experiment, control_arm=control)
