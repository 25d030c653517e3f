"""`make bench-online`: online experiments through the simulator, end to end on real processes.

A deployment of the synthetic shop (devtools.suite.deploy: feedback with its attributor, scoring,
Feast, tritonserver, a Celery worker; version 1 trained on the shop's history) meets simulated
shoppers with hidden, drifting tastes (shopdata/simulator.py) through real gRPC: each step one shopper
asks Recommend, acts on the answer, and the events go back through RecordEvents (a quarter without
their request id, left to the impression window). Two canaries, each on 20% of shoppers, decided
automatically by CTR@10 at 95% with the always-valid test:

1. degraded: version 1 with its final layer negated (devtools/degrade.py): it should be rolled back;
2. fine-tuned: the worker's real fine-tune of version 1 on the simulated behaviour of scenario 1
   (RECSYS_CANARY_SHARE makes the gated version start as a canary): promoted if not worse.

Prints and saves per-arm CTR, conversion, revenue per impression, debiased CTR and NDCG with
intervals, the decision and the simulated events until it, and the hidden-truth relevance of what each
arm served: bench/results/online-experiments.{json,md} and a plot per scenario (online-<name>.png).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from core.experiments.control import ExperimentControl
from core.model_repository import ModelRepository
from core.settings import PROJECT_ROOT
from core.store import EventLog
from devtools.degrade import publish_degraded
from devtools.experiment_report import markdown, plot, timeline
from devtools.online_sim import Simulation, simulate
from devtools.suite import Suite, deploy
from evaluation.run import machine
from shopdata.simulator import SimulatedShoppers
from shopdata.synthetic import generate
from shoprank.v1 import experiments_pb2, model_admin_pb2

RESULTS = PROJECT_ROOT / "bench" / "results"
ENV = {"RECSYS_ATTRIBUTION_GRACE_S": "0.5", "RECSYS_EXPERIMENT_CHECK_S": "2", "RECSYS_CANARY_SHARE": "0.2",
       "RECSYS_CANARY_MIN_IMPRESSIONS": "500", "RECSYS_CANARY_MAX_IMPRESSIONS": "20000", "RECSYS_FINE_TUNE_BATCH": "16",
       "RECSYS_MAX_CANDIDATES": "100"}


def run_scenario(suite: Suite, control: ExperimentControl, shoppers: SimulatedShoppers, experiment_id: str, steps: int,
                 start_ts: float, out: Path) -> dict[str, Any]:
    client = suite.client()
    started = time.perf_counter()

    def progress(step: int, sim: Simulation) -> None:
        if step % 200 == 0:
            print(f"  {experiment_id}: {step} steps, {sim.events} events, {sim.final_state}", flush=True)

    sim = simulate(client, shoppers, experiment_id, steps, start_ts, look_every=20, progress=progress, seed=len(experiment_id))
    seconds = time.perf_counter() - started
    client.close()
    time.sleep(2.0)  # the last events' attribution
    experiment = control.get(experiment_id)
    measured = control.measure(experiment, look=False)
    points = timeline(control, experiment)
    plot(points, out / f"online-{experiment_id}.png", f"{experiment_id}: {experiment.state} after {sim.decided_after_events} simulated events")
    (out / f"online-{experiment_id}.md").write_text(markdown(measured))
    arms = {}
    for m in measured.metrics:
        arms[m.arm] = {"version": m.version, "lists": m.requests, "impressions": m.impressions, "clicks": m.clicks, "purchases": m.purchases,
                       "revenue": round(m.revenue, 2),
                       "hidden_relevance": round(statistics.fmean(sim.relevance.get(m.arm, [0.0])), 4),
                       **{name: {"value": round(e.value, 5), "interval": [round(b, 5) for b in e.interval(experiment.policy.confidence)]}
                          for name, e in m.estimates.items()}}
    comparison = next(iter(measured.comparisons.values()))
    return {"experiment": experiment_id, "state": experiment.state, "decision": experiment.decision,
            "decided_after_events": sim.decided_after_events, "decided_after_steps": sim.steps if experiment.state != "running" else None,
            "events_sent": sim.events, "steps": sim.steps, "wall_seconds": round(seconds, 1), "arms": arms,
            "difference": round(comparison.difference.value, 5), "always_valid_p": comparison.p_equal, "verdict": comparison.verdict}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--steps", type=int, default=3000, help="most simulated visits per scenario")
    parser.add_argument("--bootstrap-steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shop = generate(n_users=args.users, n_days=60, seed=21)
    results: dict[str, Any] = {"machine": machine(), "users": args.users, "policy": "canary 20%, CTR@10, 95%, margin 10%, >=500 impressions per arm",
                               "scenarios": []}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"deploying the synthetic shop ({len(shop.items)} items, {args.users} shoppers)...", flush=True)
        suite = deploy(Path(tmp), shop, ENV, bootstrap_steps=args.bootstrap_steps)
        try:
            settings = suite.settings()
            repo = ModelRepository(settings.model_repository, "fusion_click")
            log = EventLog.open(settings.eventlog)
            control = ExperimentControl(log, repo, lambda _: None, lambda: None)  # type: ignore[arg-type,return-value]  # reads only
            clock = shop.events[-1].timestamp + 3600
            # 1. a degraded canary
            degraded = publish_degraded(repo, 1)
            client = suite.client()
            client.admin.CreateExperiment(model_admin_pb2.CreateExperimentRequest(
                experiment_id="canary-degraded", canary=True,
                arms=[experiments_pb2.ExperimentArm(name="control", version="1", share=0.8),
                      experiments_pb2.ExperimentArm(name="candidate", version=str(degraded), share=0.2)],
                policy=experiments_pb2.ExperimentPolicy(min_impressions=500)), timeout=180)
            shoppers = SimulatedShoppers(shop, args.steps * 2, seed=1)
            print("scenario 1: degraded canary", flush=True)
            results["scenarios"].append(run_scenario(suite, control, shoppers, "canary-degraded", args.steps, clock, args.out))
            clock += args.steps * 60.0 + 3600
            # 2. a real fine-tune on what the shoppers did, started as a canary by the worker
            print("scenario 2: the worker fine-tunes on the simulated behaviour; its gated version starts as a canary", flush=True)
            job = client.trigger(job_id="bench-online-ft", max_steps=40)
            while (state := client.job(job.job_id).state) in (model_admin_pb2.JOB_STATE_PENDING, model_admin_pb2.JOB_STATE_RUNNING):
                time.sleep(2.0)
            final = client.job(job.job_id)
            experiment_id = f"canary-v{final.new_version}"
            if state != model_admin_pb2.JOB_STATE_SUCCEEDED or log.experiments.get(experiment_id) is None:
                results["scenarios"].append({"experiment": experiment_id, "state": "not started", "decision": f"fine-tune {final.message}"})
            else:
                shoppers.rng.seed(2)
                results["scenarios"].append(run_scenario(suite, control, shoppers, experiment_id, args.steps, clock, args.out))
            client.close()
        finally:
            suite.stop()
    (args.out / "online-experiments.json").write_text(json.dumps(results, indent=2))
    (args.out / "online-experiments.md").write_text(summary(results))
    print(summary(results))


def summary(results: dict[str, Any]) -> str:
    lines = ["# Online experiments through the simulator (`make bench-online`)", "",
             f"{results['users']} simulated shoppers of the synthetic shop with hidden drifting tastes; {results['policy']}. "
             f"Machine: {results['machine']}.", "",
             "| experiment | arm | version | lists | impressions | CTR@10 [95%] | conversion [95%] | revenue/impr. | debiased CTR | NDCG@10 | hidden relevance |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in results["scenarios"]:
        for arm, a in s.get("arms", {}).items():
            def cell(name: str, a: dict = a) -> str:
                return f"{a[name]['value']:.4f} [{a[name]['interval'][0]:.4f}, {a[name]['interval'][1]:.4f}]"
            lines.append(f"| {s['experiment']} | {arm} | {a['version']} | {a['lists']} | {a['impressions']} | {cell('ctr')} | {cell('conversion')} | "
                         f"{a['revenue_per_impression']['value']:.4f} | {a['debiased_ctr']['value']:.4f} | {a['ndcg']['value']:.4f} | {a['hidden_relevance']:.3f} |")
    lines += ["", "| experiment | decision | simulated events until it | visits until it | events sent | wall s |", "|---|---|---|---|---|---|"]
    for s in results["scenarios"]:
        lines.append(f"| {s['experiment']} | {s['state']}: {s['decision']} | {s.get('decided_after_events')} | {s.get('decided_after_steps')} | "
                     f"{s.get('events_sent')} | {s.get('wall_seconds')} |")
    lines += ["", "Plots: " + ", ".join(f"online-{s['experiment']}.png" for s in results["scenarios"] if "arms" in s) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
