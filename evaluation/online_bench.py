"""`make bench-online`: online experiments through the simulator, end to end on real processes.

A deployment of the synthetic shop (devtools.suite.deploy: feedback with its attributor, scoring,
Feast, tritonserver, a Celery worker; version 1 trained on the shop's history) meets simulated
shoppers with hidden, drifting tastes (shopdata/simulator.py) through real gRPC: each visit one shopper
asks Recommend, acts on the answer, and the events go back through RecordEvents (a quarter without
their request id, left to the impression window). The shoppers' tastes drift during the first two
scenarios. Three canaries, each on 20% of shoppers, decided automatically by CTR@10 at 95% with the
always-valid test:

1. A/A: an exact copy of version 1 (devtools/degrade.py): it must not be rolled back;
2. degraded: version 1 with its final layer negated: it should be rolled back;
3. fine-tuned: the worker's real fine-tune of version 1 on the simulated behaviour so far, drift
   included (RECSYS_CANARY_SHARE makes the gated version start as a canary): promoted if not worse.

Prints and saves per-arm CTR, conversion, revenue per impression, debiased CTR and NDCG with
intervals, the decision and the simulated events until it, the hidden-truth relevance of what each
arm served and the client's Recommend latency: bench/results/online-experiments.{json,md}, a report and
plot per canary (online-<name>.{md,png}) and the hidden relevance over the run (online-relevance.png).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from core.experiments.control import ExperimentControl
from core.model_repository import ModelRepository
from core.store import EventLog
from devtools.degrade import publish_copy, publish_degraded
from devtools.experiment_report import markdown, plot, timeline
from devtools.online_sim import Simulation, history_pace, simulate, simulated_shop
from devtools.suite import Suite, deploy
from evaluation.results import results_dir
from evaluation.run import machine
from shopdata.simulator import SimulatedShoppers
from shoprank.v1 import experiments_pb2, model_admin_pb2

RESULTS = results_dir()
ENV = {"RECSYS_ATTRIBUTION_GRACE_S": "0.5", "RECSYS_EXPERIMENT_CHECK_S": "2", "RECSYS_CANARY_SHARE": "0.2",
       "RECSYS_CANARY_MIN_IMPRESSIONS": "500", "RECSYS_CANARY_MAX_IMPRESSIONS": "20000", "RECSYS_FINE_TUNE_BATCH": "16",
       "RECSYS_MAX_CANDIDATES": "100"}


def run_scenario(suite: Suite, control: ExperimentControl, shoppers: SimulatedShoppers, experiment_id: str, steps: int,
                 start_ts: float, out: Path, visits: list, step_seconds: float) -> dict[str, Any]:
    client = suite.client()
    started = time.perf_counter()

    def progress(step: int, sim: Simulation) -> None:
        if step % 200 == 0:
            print(f"  {experiment_id}: {step} steps, {sim.events} events, {sim.final_state}", flush=True)

    sim = simulate(client, shoppers, experiment_id, steps, start_ts, step_seconds=step_seconds, look_every=20, progress=progress,
                   seed=len(experiment_id))
    visits.extend((step, f"{experiment_id}:{arm}", relevance, drifted) for step, arm, relevance, drifted in sim.visits)
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
            "difference": round(comparison.difference.value, 5), "always_valid_p": comparison.p_equal, "verdict": comparison.verdict,
            "recommend_ms_p50": round(statistics.median(sim.latency_ms), 1), "recommend_ms_p99": round(sorted(sim.latency_ms)[int(0.99 * (len(sim.latency_ms) - 1))], 1),
            "drifted_share_at_end": round(shoppers.drifted(), 3)}


def start_canary(suite: Suite, client: Any, experiment_id: str, candidate: int, serving: int, restarts: list[str]) -> None:
    """CreateExperiment; if a process of the suite died meanwhile (the UNAVAILABLE that follows names it),
    restart it as `make up`'s supervisor would, record that in the report, and ask once more."""
    request = model_admin_pb2.CreateExperimentRequest(
        experiment_id=experiment_id, canary=True,
        arms=[experiments_pb2.ExperimentArm(name="control", version=str(serving), share=0.8),
              experiments_pb2.ExperimentArm(name="candidate", version=str(candidate), share=0.2)],
        policy=experiments_pb2.ExperimentPolicy(min_impressions=500))
    try:
        client.admin.CreateExperiment(request, timeout=180)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        dead = suite.died()
        for _ in range(30):  # a process that stopped answering may take a few seconds to exit
            if dead:
                break
            time.sleep(0.5)
            dead = suite.died()
        for name, what in dead.items():
            print(f"  {name} {what}\n  restarting it (as make up's supervisor would)", flush=True)
        if dead:
            restarts.extend(f"{experiment_id}: {name}" for name in dead)
            suite.restart_dead()
        else:  # nothing died, yet Triton refused (seen twice in CI): say what it logged, and ask once more
            print(f"  CreateExperiment: {error.details()}; no process died; asking again\n"
                  f"  tritonserver's log ends:\n{suite.tail('tritonserver')}", flush=True)
            restarts.append(f"{experiment_id}: asked again after UNAVAILABLE")
        client.admin.CreateExperiment(request, timeout=180)


def plot_relevance(visits: list[tuple[int, str, float, float]], path: Path, window: int = 150) -> None:
    """Rolling mean of the hidden relevance of each arm's answers over the simulation, and the drift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    for arm in dict.fromkeys(a for _, a, _, _ in visits):
        points = [(step, r) for step, a, r, _ in visits if a == arm]
        width = max(1, min(window, len(points) // 4))
        xs = [points[i][0] for i in range(width - 1, len(points))]
        ys = [statistics.fmean(r for _, r in points[i - width + 1 : i + 1]) for i in range(width - 1, len(points))]
        ax.plot(xs, ys, label=arm)
    ax.plot([v[0] for v in visits], [v[3] for v in visits], color="grey", ls=":", label="shoppers whose tastes drifted")
    ax.set_xlabel("visit (simulation clock)")
    ax.set_ylabel("share of shown items in current favourites")
    ax.set_title("hidden relevance of what each arm served (rolling mean)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--steps", type=int, default=3000, help="most simulated visits per scenario")
    parser.add_argument("--bootstrap-steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shop = simulated_shop(args.users, 3 * args.steps)  # the history and every simulated visit end before now
    results: dict[str, Any] = {"machine": machine(), "users": args.users, "policy": "canary 20%, CTR@10, 95%, margin 10%, >=500 impressions per arm",
                               "scenarios": [], "restarts": []}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"deploying the synthetic shop ({len(shop.items)} items, {args.users} shoppers)...", flush=True)
        suite = deploy(Path(tmp), shop, ENV, bootstrap_steps=args.bootstrap_steps)
        try:
            settings = suite.settings()
            repo = ModelRepository(settings.model_repository, "fusion_click")
            log = EventLog.open(settings.eventlog)
            control = ExperimentControl.reader(log, repo)
            clock = shop.events[-1].timestamp + 3600
            # the shop's clock moves as fast per visit as in its history: denser simulated traffic would
            # swamp the popularity windows the model was trained with (bench-online's first runs at one
            # visit a minute did, and version 1 lost half its hidden relevance without any drift)
            step_seconds = history_pace(shop)
            results["shop_seconds_per_visit"] = round(step_seconds)
            visits: list[tuple[int, str, float, float]] = []
            # the shoppers' tastes drift between 15% and 45% of all planned visits (during scenarios 1 and 2)
            shoppers = SimulatedShoppers(shop, 3 * args.steps, seed=1, drift_from=0.15, drift_to=0.45)
            client = suite.client()
            for experiment_id, candidate, what in (("canary-aa", publish_copy(repo, 1), "A/A: an exact copy of version 1"),
                                                   ("canary-degraded", publish_degraded(repo, 1), "version 1 with its final layer negated")):
                print(f"scenario {experiment_id}: {what}", flush=True)
                start_canary(suite, client, experiment_id, candidate, repo.serving_version() or 1, results["restarts"])
                results["scenarios"].append({"candidate": what, **run_scenario(suite, control, shoppers, experiment_id, args.steps, clock, args.out, visits,
                                                                                 step_seconds)})
                if (ended := log.experiments.get(experiment_id)) is not None and ended.state == "running":
                    client.admin.EndExperiment(model_admin_pb2.EndExperimentRequest(experiment_id=experiment_id), timeout=180)
                clock += args.steps * step_seconds + 3600
            # a real fine-tune on what the shoppers did, started as a canary by the worker
            print("scenario 3: the worker fine-tunes on the simulated behaviour; its gated version starts as a canary", flush=True)
            job = client.trigger(job_id="bench-online-ft", max_steps=40)
            final = client.wait_job(job.job_id, poll_s=2.0)
            state = final.state
            experiment_id = f"canary-v{final.new_version}"
            what = "the worker's fine-tune of version 1 on the simulated behaviour (drift included)"
            if state != model_admin_pb2.JOB_STATE_SUCCEEDED or log.experiments.get(experiment_id) is None:
                results["scenarios"].append({"experiment": experiment_id, "candidate": what, "state": "not started", "decision": f"fine-tune {final.message}"})
            else:
                results["scenarios"].append({"candidate": what, **run_scenario(suite, control, shoppers, experiment_id, args.steps, clock, args.out,
                                                                               visits, step_seconds)})
            plot_relevance(visits, args.out / "online-relevance.png")
            client.close()
        finally:
            suite.stop()
    (args.out / "online-experiments.json").write_text(json.dumps(results, indent=2))
    (args.out / "online-experiments.md").write_text(summary(results))
    print(summary(results))


def summary(results: dict[str, Any]) -> str:
    lines = ["# Online experiments through the simulator (`make bench-online`)", "",
             f"{results['users']} simulated shoppers of the synthetic shop with hidden drifting tastes, one visit every "
             f"{results.get('shop_seconds_per_visit', 60)} s of shop time (the history's pace); {results['policy']}. "
             f"Machine: {results['machine']}.", "",
             "| experiment | arm | version | lists | impressions | CTR@10 [95%] | conversion [95%] | revenue/impr. | debiased CTR | NDCG@10 | hidden relevance |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in results["scenarios"]:
        for arm, a in s.get("arms", {}).items():
            def cell(name: str, a: dict = a) -> str:
                return f"{a[name]['value']:.4f} [{a[name]['interval'][0]:.4f}, {a[name]['interval'][1]:.4f}]"
            lines.append(f"| {s['experiment']} | {arm} | {a['version']} | {a['lists']} | {a['impressions']} | {cell('ctr')} | {cell('conversion')} | "
                         f"{a['revenue_per_impression']['value']:.4f} | {a['debiased_ctr']['value']:.4f} | {a['ndcg']['value']:.4f} | {a['hidden_relevance']:.3f} |")
    lines += ["", "| experiment | candidate | decision | simulated events until it | visits until it | events sent | shoppers drifted | Recommend p50 / p99 ms | wall s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in results["scenarios"]:
        lines.append(f"| {s['experiment']} | {s.get('candidate', '')} | {s['state']}: {s['decision']} | {s.get('decided_after_events')} | "
                     f"{s.get('decided_after_steps')} | {s.get('events_sent')} | {s.get('drifted_share_at_end')} | "
                     f"{s.get('recommend_ms_p50')} / {s.get('recommend_ms_p99')} | {s.get('wall_seconds')} |")
    if results.get("restarts"):
        lines += ["", "Processes that died and were restarted during the run: " + ", ".join(results["restarts"]) + "."]
    lines += ["", "Plots: " + ", ".join(f"online-{s['experiment']}.png" for s in results["scenarios"] if "arms" in s) +
              ", online-relevance.png (hidden relevance per arm over the run)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
