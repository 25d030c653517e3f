"""Estimates per randomisation unit (the shopper: arms are assigned per shopper, so their lists are not
independent), differences between arms, and an always-valid sequential test.

Ratio metrics (clicks per impression, purchases per list) are means of per-shopper sums; their
variance comes from the delta method over shoppers, and is never taken below the same estimate over
served lists (`clustered`): with few shoppers in an arm, a plug-in variance over a handful of units
can come out near zero by chance, and a sequential test fed that would decide on noise. Looks count
only once each arm has MIN_UNITS shoppers. The test is the mixture sequential probability
ratio test (Johari, Pekelis, Walsh 2017, "Always valid inference"): with a normal mixing distribution of
scale tau over the true difference, the likelihood ratio Lambda_n is a martingale under "no
difference", so p_n = min over looks of 1/Lambda_n is a p-value that holds whenever the operator (or
the canary check) looks and stops: peeking does not inflate false decisions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class Estimate:
    value: float
    variance: float  # of the estimate
    units: int

    def interval(self, confidence: float) -> tuple[float, float]:
        half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(max(self.variance, 0.0))
        return self.value - half, self.value + half


def ratio(numerators: np.ndarray, denominators: np.ndarray) -> Estimate:
    """sum(numerators) / sum(denominators) over units, with its delta-method variance."""
    y = np.asarray(numerators, dtype=np.float64)
    x = np.asarray(denominators, dtype=np.float64)
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return Estimate(0.0, 0.0, n)
    r = y.sum() / x.sum()
    if n < 2:
        return Estimate(float(r), float("inf"), n)
    mx = x.mean()
    cov = np.cov(np.vstack([y, x]), ddof=1)
    variance = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * mx * mx)
    return Estimate(float(r), float(max(variance, 0.0)), n)


def clustered(unit_y: np.ndarray, unit_x: np.ndarray, list_y: np.ndarray, list_x: np.ndarray) -> Estimate:
    """The ratio over units (shoppers), its variance at least the one over lists."""
    by_unit, by_list = ratio(unit_y, unit_x), ratio(list_y, list_x)
    return Estimate(by_unit.value, max(by_unit.variance, by_list.variance), by_unit.units)


def difference(arm: Estimate, control: Estimate) -> Estimate:
    """arm - control; independent samples (disjoint shoppers)."""
    return Estimate(arm.value - control.value, arm.variance + control.variance, min(arm.units, control.units))


MIN_UNITS = 10  # shoppers each arm needs before a look counts


def msprt_p(diff: Estimate, null: float, tau: float) -> float:
    """1 / Lambda_n of the mixture SPRT of "the true difference is `null`" (normal mixture of scale
    `tau`); the always-valid p-value is the running minimum of this over looks."""
    v = diff.variance
    if not math.isfinite(v) or v <= 0 or tau <= 0 or diff.units < MIN_UNITS:
        return 1.0  # no spread measured (e.g. nothing attributed yet): no evidence either way
    t2 = tau * tau
    log_lambda = 0.5 * math.log(v / (v + t2)) + t2 * (diff.value - null) ** 2 / (2 * v * (v + t2))
    return float(min(1.0, math.exp(-min(log_lambda, 700.0))))


@dataclass(frozen=True)
class Verdict:
    p_equal: float  # running always-valid p of "no difference"
    p_inferior: float  # running always-valid p of "worse by the margin"
    verdict: str  # worse / better / not worse / undecided


def verdict(diff: Estimate, control_value: float, margin: float, confidence: float,
            previous: tuple[float, float] = (1.0, 1.0)) -> Verdict:
    """The sequential test of one arm against the control on one metric. `previous` holds the running
    minima of the two p-values from earlier looks (1, 1 at the first)."""
    alpha = 1 - confidence
    scale = abs(control_value) if control_value else abs(diff.value)
    tau = max(margin, 0.05) * scale  # the effect sizes worth detecting: about the margin
    p_equal = min(previous[0], msprt_p(diff, 0.0, tau))
    delta = margin * scale
    # "worse by the margin or more" is rejected only by evidence above -delta
    p_inferior = min(previous[1], msprt_p(diff, -delta, tau)) if diff.value > -delta else previous[1]
    if p_equal < alpha and diff.value < 0:
        word = "worse"
    elif p_equal < alpha and diff.value > 0:
        word = "better"
    elif p_inferior < alpha:
        word = "not worse"
    else:
        word = "undecided"
    return Verdict(p_equal, p_inferior, word)
