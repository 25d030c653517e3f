"""An experiment as an operator reads it: a Markdown report (arms, counts, metrics with intervals,
the sequential test, the decision) and a PNG (each arm's cumulative CTR@k and conversion with their
intervals, and the always-valid p-value against the decision threshold, over the experiment's served
lists), both computed from the event log the way GetExperiment computes them.

    python -m devtools.experiment_report EXPERIMENT_ID [--out DIR]     (make experiment-report EXPERIMENT=...)
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from core.experiments.control import ExperimentControl, Measured
from core.experiments.definition import Experiment
from core.experiments.metrics import arm_metrics, compare

METRIC_NAMES = {"ctr": "CTR@k", "conversion": "conversion", "revenue_per_impression": "revenue / impression",
                "debiased_ctr": "position-debiased CTR", "ndcg": "NDCG@k"}


@dataclass(frozen=True)
class Point:
    served_lists: int
    measured: Measured


def timeline(control: ExperimentControl, experiment: Experiment, points: int = 25) -> list[Point]:
    """The experiment measured on growing prefixes of its served lists (the sequential test carried
    from point to point, as repeated looks would)."""
    served = control.log.served.of_experiment(experiment.experiment_id)
    attributed = control.log.attributions.of_experiment(experiment.experiment_id)
    if not served:
        return []
    out: list[Point] = []
    previous: dict[str, tuple[float, float]] = {}
    for n in range(1, points + 1):
        cut = max(1, len(served) * n // points)
        until = served[cut - 1].served_at
        lists = served[:cut]
        ids = {s.request_id for s in lists}
        events = [a for a in attributed if a.request_id in ids and a.received_at <= until + 60]  # what had arrived for them by then (a minute of grace)
        metrics = arm_metrics(experiment, lists, events)
        comparisons = compare(experiment, metrics, previous)
        previous = {a: (c.p_equal, c.p_inferior) for a, c in comparisons.items()}
        out.append(Point(cut, Measured(experiment, metrics, comparisons)))
    return out


def markdown(measured: Measured) -> str:
    e = measured.experiment
    p = e.policy
    lines = [f"# Experiment {e.experiment_id}", "",
             f"State **{e.state}**{' (canary)' if e.canary else ''}; control arm `{e.control_arm}`; decides on {METRIC_NAMES[p.metric]} "
             f"at {p.confidence:.0%} (margin {p.margin:.0%}, at least {p.min_impressions} impressions per arm, k = {p.k}).", ""]
    if e.decision:
        lines += [f"Decision: {e.decision}", ""]
    lines += ["| arm | version | shown | shoppers | lists | impressions | clicks | carts | purchases | revenue |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for m in measured.metrics:
        lines.append(f"| {m.arm} | {m.version} | {'shadow' if m.shadow else 'yes'} | {m.shoppers} | {m.requests} | {m.impressions} | "
                     f"{m.clicks} | {m.add_to_carts} | {m.purchases} | {m.revenue:.2f} |")
    lines += ["", f"Estimates per shopper with {p.confidence:.0%} intervals (delta method over shoppers):", "",
              "| arm | " + " | ".join(METRIC_NAMES.values()) + " |", "|---|" + "---|" * len(METRIC_NAMES)]
    for m in measured.metrics:
        cells = []
        for name in METRIC_NAMES:
            est = m.estimates[name]
            low, high = est.interval(p.confidence)
            cells.append(f"{est.value:.4f} [{low:.4f}, {high:.4f}]")
        lines.append(f"| {m.arm} | " + " | ".join(cells) + " |")
    if measured.comparisons:
        lines += ["", f"Against the control on {METRIC_NAMES[p.metric]} (always-valid p-values: valid at every look):", "",
                  "| arm | difference | interval | p (no difference) | p (worse by the margin) | verdict |", "|---|---|---|---|---|---|"]
        for arm, c in measured.comparisons.items():
            low, high = c.difference.interval(p.confidence)
            lines.append(f"| {arm} | {c.difference.value:+.4f} | [{low:+.4f}, {high:+.4f}] | {c.p_equal:.4g} | {c.p_inferior:.4g} | {c.verdict} |")
    return "\n".join(lines) + "\n"


def plot(points: list[Point], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not points:
        return
    experiment = points[-1].measured.experiment
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    x = [pt.served_lists for pt in points]
    for arm in experiment.shown_arms:
        for ax, name in ((axes[0], "ctr"), (axes[1], "conversion")):
            est = [next(m for m in pt.measured.metrics if m.arm == arm.name).estimates[name] for pt in points]
            bounds = [e.interval(experiment.policy.confidence) for e in est]
            ax.plot(x, [e.value for e in est], label=f"{arm.name} (v{arm.version})")
            ax.fill_between(x, [b[0] for b in bounds], [b[1] for b in bounds], alpha=0.2)
            ax.set_title(METRIC_NAMES[name])
    for arm in experiment.arms:
        if arm.name == experiment.control_arm or arm.shadow:
            continue
        axes[2].plot(x, [max(pt.measured.comparisons[arm.name].p_equal, 1e-12) for pt in points], label=f"{arm.name}: p (no difference)")
        axes[2].plot(x, [max(pt.measured.comparisons[arm.name].p_inferior, 1e-12) for pt in points], "--",
                     label=f"{arm.name}: p (worse by margin)")
    axes[2].axhline(1 - experiment.policy.confidence, color="grey", lw=0.8, label="decision threshold")
    axes[2].set_yscale("log")
    axes[2].set_title("always-valid p-values")
    for ax in axes:
        ax.set_xlabel("served lists")
        ax.legend(fontsize=8)
    fig.suptitle(title or f"experiment {experiment.experiment_id}: {experiment.state}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    from core.model_repository import ModelRepository
    from core.settings import load
    from core.store import EventLog
    from rankers import get_ranker

    parser = argparse.ArgumentParser(description="Markdown + PNG report of one online experiment, from the event log.")
    parser.add_argument("experiment_id")
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    settings = load()
    control = ExperimentControl.reader(EventLog.open(settings.eventlog), ModelRepository(settings.model_repository, get_ranker(settings.ranker).model_name))
    experiment = control.get(args.experiment_id)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"experiment-{experiment.experiment_id}.md").write_text(markdown(control.measure(experiment, look=False)))
    plot(timeline(control, experiment), args.out / f"experiment-{experiment.experiment_id}.png")
    print(f"wrote {args.out / f'experiment-{experiment.experiment_id}.md'} and .png")


if __name__ == "__main__":
    main()
