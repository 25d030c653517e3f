"""Online metrics of an experiment's arms from its served lists and their attributed events.

Per shopper (the unit arms are assigned by): served lists, impressions in the top k, clicks in the top
k, lists followed by a purchase, revenue, clicks weighted by the inverse examination probability of
their position, and the NDCG@k of each served list against what the shopper then did (gain 1 click,
2 add-to-cart, 3 purchase). Shadow arms' lists were never shown: only their NDCG against what the
shopper did with the shown list of the same request is measured.

Examination probabilities per position are estimated from the pooled shown arms' click-through by
position relative to position 1 (made non-increasing), the usual first-order position-bias model: an
estimate, not a randomised intervention, and reported as such.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from core.experiments.attribution import Attribution, ServedList
from core.experiments.definition import Experiment
from core.experiments.stats import Estimate, clustered, difference, verdict

GAIN = {"click": 1, "add_to_cart": 2, "purchase": 3}
MIN_EXAMINATION = 0.05


@dataclass
class ArmMetrics:
    arm: str
    version: str
    shadow: bool
    shoppers: int = 0
    requests: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    purchases: int = 0
    revenue: float = 0.0
    estimates: dict[str, Estimate] = field(default_factory=dict)  # ctr, conversion, revenue_per_impression, debiased_ctr, ndcg


@dataclass(frozen=True)
class Comparison:
    difference: Estimate
    p_equal: float
    p_inferior: float
    verdict: str


def examination(served: Sequence[ServedList], attributions: Sequence[Attribution], k: int) -> np.ndarray:
    """P(examined | position) for positions 1..k (index 0 = position 1), from pooled click-through."""
    shown = np.zeros(k)
    clicks = np.zeros(k)
    for s in served:
        if not s.shadow:
            shown[: min(k, len(s.item_ids))] += 1
    for a in attributions:
        if a.event_type == "click" and 1 <= a.position <= k:
            clicks[a.position - 1] += 1
    return examination_curve(shown, clicks)


def examination_curve(shown: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """P(examined | position) from lists shown and clicks per position (index 0 = position 1)."""
    ctr = (clicks + 0.5) / (shown + 1.0)  # smoothed
    prop = np.minimum.accumulate(ctr / ctr[0]) if ctr[0] > 0 else np.ones(len(shown))
    return np.clip(prop, MIN_EXAMINATION, 1.0)


def ndcg(gains: Sequence[float], k: int) -> float:
    """NDCG@k of gains listed by position (0 where nothing happened)."""
    dcg = sum((2**g - 1) / math.log2(p + 2) for p, g in enumerate(gains[:k]))
    ideal = sorted((g for g in gains if g > 0), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(p + 2) for p, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def arm_metrics(experiment: Experiment, served: Sequence[ServedList], attributions: Sequence[Attribution]) -> list[ArmMetrics]:
    """Every arm's counts and estimates (shown arms from their own lists; shadows against the shown list)."""
    k = experiment.policy.k
    prop = examination(served, attributions, k)
    events_of: dict[str, list[Attribution]] = defaultdict(list)
    for a in attributions:
        events_of[a.request_id].append(a)
    out = []
    for arm in experiment.arms:
        lists = [s for s in served if s.arm == arm.name and s.shadow == arm.shadow]
        m = ArmMetrics(arm.name, arm.version, arm.shadow)
        per_user: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(7))  # lists, impressions, clicks, converted, revenue, debiased, ndcg
        per_list = np.zeros((len(lists), 7))
        for n, s in enumerate(lists):
            row = per_list[n]
            row[0] += 1
            row[1] += min(k, len(s.item_ids))
            gains = [0.0] * len(s.item_ids)
            purchased = False
            for a in events_of.get(s.request_id, ()):
                position = s.position(a.item_id)
                if not position:
                    continue
                gains[position - 1] = max(gains[position - 1], GAIN.get(a.event_type, 0))
                if arm.shadow:
                    continue
                if a.event_type == "click":
                    m.clicks += 1
                    if position <= k:
                        row[2] += 1
                        row[5] += 1 / prop[position - 1]
                elif a.event_type == "add_to_cart":
                    m.add_to_carts += 1
                elif a.event_type == "purchase":
                    m.purchases += 1
                    m.revenue += a.value
                    row[4] += a.value
                    purchased = True
            row[3] += purchased
            row[6] += ndcg(gains, k)
            per_user[s.user_key] += row
        m.shoppers, m.requests = len(per_user), len(lists)
        m.impressions = int(per_list[:, 1].sum())
        units = np.array(list(per_user.values())) if per_user else np.zeros((0, 7))
        m.estimates = {name: clustered(units[:, y], units[:, x], per_list[:, y], per_list[:, x]) for name, y, x in (
            ("ctr", 2, 1), ("conversion", 3, 0), ("revenue_per_impression", 4, 1), ("debiased_ctr", 5, 1), ("ndcg", 6, 0))}
        out.append(m)
    return out


def compare(experiment: Experiment, metrics: Sequence[ArmMetrics], previous: dict[str, tuple[float, float]]) -> dict[str, Comparison]:
    """Each non-control arm against the control on the policy's metric, with the sequential test
    continued from `previous` (arm -> running minima of its two p-values)."""
    by_name = {m.arm: m for m in metrics}
    control = by_name[experiment.control_arm].estimates[experiment.policy.metric]
    out = {}
    for m in metrics:
        if m.arm == experiment.control_arm:
            continue
        diff = difference(m.estimates[experiment.policy.metric], control)
        v = verdict(diff, control.value, experiment.policy.margin, experiment.policy.confidence, previous.get(m.arm, (1.0, 1.0)))
        out[m.arm] = Comparison(diff, v.p_equal, v.p_inferior, v.verdict)
    return out
