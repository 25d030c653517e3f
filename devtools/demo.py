"""The main job: the whole loop on real processes, start to finish, with a short report.

catalogue + past events → version 1 (the configured ranker, by default the fusion model: MiniLM text
towers + repeat/recency/popularity signals, trained on past baskets) → tritonserver, services and a
Celery worker → rankings from version 1 → new behaviour fed back → fine-tune job → rankings from
version 2 → report → every process stopped.

    python -m devtools.demo [--dataset auto|synthetic|online-retail] [--out var/demo]
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from core.settings import PROJECT_ROOT
from devtools.suite import Suite
from shoprank_client.enums import job_state_of

logger = logging.getLogger("demo")


def load_shop(kind: str):
    from shopdata import synthetic, uci_retail

    if kind == "online-retail" or (kind == "auto" and uci_retail.DEFAULT_PATH.exists()):
        return uci_retail.demo_slice()
    if kind == "auto":
        print(f"  ({uci_retail.DEFAULT_PATH} not found: using the synthetic shop)")
    return synthetic.generate()


def step(text: str) -> float:
    print(f"\n== {text}", flush=True)
    return time.perf_counter()


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def run(args: argparse.Namespace) -> dict:
    from tqdm import tqdm

    started = time.perf_counter()
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    suite = Suite(data_dir=out, model_repository=out / "triton_models")
    suite.apply_env()
    report: dict = {"timings_s": {}}
    with suite:
        from core.settings import load

        t = step("data")
        shop = load_shop(args.dataset)
        past, fresh = shop.split(0.7)
        print(f"  {shop.name}: {len(shop.items)} items, {len(shop.events)} events ({len(past)} past, {len(fresh)} new)")
        report.update(dataset=shop.name, items=len(shop.items), events=len(shop.events))

        t = step("starting the feedback and profile services")
        suite.prepare()
        suite.start_services(("feedback", "profile"))
        report["timings_s"]["start_services"] = time.perf_counter() - t


        t = step("loading the catalogue and past events through the feedback service")
        client = suite.client("feedback")
        client.upsert_items(shop.items)
        batches = [past[i : i + 1000] for i in range(0, len(past), 1000)]
        for b in tqdm(batches, desc="  events", unit="batch", file=sys.stdout):
            client.record_events(b)
        report["timings_s"]["load_past_events"] = time.perf_counter() - t

        t = step(f"version 1 of the {load().ranker} ranker, trained on the past events")
        from workers.publishing import bootstrap

        settings = load()
        with tqdm(total=args.bootstrap_steps, desc="  training", unit="step", file=sys.stdout, mininterval=1.0) as bar:
            def progress(step_no: int, total: int, loss: float) -> None:
                bar.total = total
                bar.update(step_no - bar.n)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

            bootstrap(settings, max_steps=args.bootstrap_steps, progress=progress)
        report["timings_s"]["bootstrap_v1"] = time.perf_counter() - t

        t = step("starting tritonserver (explicit model control), the scoring service and a Celery worker")
        suite.start_triton()
        suite.apply_env()
        suite.start_services(("scoring",))
        suite.start_worker()
        report["timings_s"]["start_triton_scoring"] = time.perf_counter() - t
        client.close()
        client = suite.client()

        rng = random.Random(0)
        users = sorted({e.user_id for e in fresh if e.event_type != "impression"} & {e.user_id for e in past})[:8]
        catalogue = sorted(shop.items)

        new_items = {u: list(dict.fromkeys(e.item_id for e in reversed(fresh) if e.user_id == u and e.event_type != "impression"))[:5] for u in users}

        def candidates(user: str) -> list[str]:
            return list(dict.fromkeys(new_items[user] + rng.sample(catalogue, 30)))[:20]

        def new_items_in_top5(responses: dict) -> float:
            """Share of each shopper's next clicked/bought items (in the held-back stream) ranked in the top 5 of 20."""
            found = sum(len(set(new_items[u]) & {i.item_id for i in r.items[:5]}) for u, r in responses.items())
            return found / max(1, sum(min(5, len(new_items[u])) for u in responses))

        t = step("rankings from version 1")
        before = {}
        for u in users:
            resp = client.rank(u, candidates(u))
            before[u] = resp
            if len(before) > 5:
                continue
            top = ", ".join(shop.items[i.item_id].title for i in resp.items[:3])
            print(f"  {u}: version {resp.model_version}, top 3: {top}")
        report["new_items_in_top5"] = {"version_1": new_items_in_top5(before)}
        latencies = []
        for n in range(args.latency_calls):
            u = users[n % len(users)]
            c = candidates(u)
            t1 = time.perf_counter()
            client.rank(u, c)
            latencies.append(time.perf_counter() - t1)
        report["rank_latency_20_candidates_ms"] = {"p50": 1000 * statistics.median(latencies), "p99": 1000 * percentile(latencies, 99), "calls": len(latencies)}
        print(f"  Rank, 20 candidates: p50 {report['rank_latency_20_candidates_ms']['p50']:.0f} ms, p99 {report['rank_latency_20_candidates_ms']['p99']:.0f} ms over {len(latencies)} calls")

        t = step("feeding back new behaviour (impressions, clicks, purchases)")
        accepted, dups, rejected = client.record_events(fresh)
        print(f"  accepted {accepted}, duplicates {dups}, rejected {rejected}")
        report["timings_s"]["feed_back"] = time.perf_counter() - t

        t = step("fine-tune job through the model-admin RPC and the Celery worker")
        job = client.trigger(job_id=f"demo-{int(time.time())}", max_steps=args.fine_tune_steps)
        with tqdm(total=100, desc=f"  {job.job_id}", unit="%", file=sys.stdout, mininterval=1.0,
                  bar_format="{desc} {percentage:3.0f}%|{bar:30}| {elapsed} {postfix}") as bar:
            while job_state_of(job.state) not in ("SUCCEEDED", "REJECTED", "FAILED"):
                time.sleep(0.5)
                job = client.job(job.job_id)
                bar.update(int(100 * job.progress) - bar.n)
                bar.set_postfix_str(job.message[:48], refresh=False)
        print(f"  {job_state_of(job.state)}: {job.message}")
        if job_state_of(job.state) == "FAILED":
            raise SystemExit(f"fine-tune failed; worker log:\n{suite.tail('worker')}")
        report["fine_tune_state"] = job_state_of(job.state)  # REJECTED: the gate kept the serving version
        report["trigger_to_serving_s"] = time.perf_counter() - t

        step("rankings from the new version")
        after = {}
        for u in users:
            resp = client.rank(u, [i.item_id for i in before[u].items])
            after[u] = resp
            if len(after) > 5:
                continue
            top = ", ".join(shop.items[i.item_id].title for i in resp.items[:3])
            print(f"  {u}: version {resp.model_version}, top 3: {top}")
        report["served_version_after"] = resp.model_version
        report["new_items_in_top5"]["version_" + resp.model_version] = new_items_in_top5(after)
        print("  share of the shoppers' newly clicked/bought items in the top 5 of 20 (in-sample: the new version"
              " was trained on them): " + ", ".join(f"{k} {v:.2f}" for k, v in report["new_items_in_top5"].items()))

        from shoprank.v1 import model_admin_pb2, profile_pb2

        versions = client.admin.ListVersions(model_admin_pb2.ListVersionsRequest(), timeout=30).versions
        step("model versions (lineage)")
        for v in versions:
            print(f"  v{v.version}: parent {v.parent_version or '-'}, {v.example_count} examples, loss {v.final_loss:.4f}, job {v.job_id}, serving {v.serving}")
        report["versions"] = [{"version": v.version, "parent": v.parent_version, "examples": v.example_count, "serving": v.serving} for v in versions]
        experiment_demo(client, versions, users, report)
        assert client.profile is not None
        profile = client.profile.GetProfile(profile_pb2.GetProfileRequest(user_id=users[0]), timeout=30)
        print(f"\n  profile of {users[0]}: {profile.event_count} events, {profile.purchase_count} purchases, "
              f"recent: {', '.join(r.title for r in profile.recent_items[:3])}")
        client.close()
    report["timings_s"]["total"] = time.perf_counter() - started
    (out / "report.json").write_text(json.dumps(report, indent=2))
    step("report")
    print(f"  dataset {report['dataset']}: {report['items']} items, {report['events']} events")
    print(f"  Rank latency (20 candidates): p50 {report['rank_latency_20_candidates_ms']['p50']:.0f} ms, p99 {report['rank_latency_20_candidates_ms']['p99']:.0f} ms")
    print(f"  fine-tune trigger → version {report['served_version_after']} serving: {report['trigger_to_serving_s']:.1f} s")
    for k, v in report["timings_s"].items():
        print(f"  {k:24s} {v:7.1f} s")
    print(f"  all processes stopped; logs and report under {out}")
    return report


def experiment_demo(client: Any, versions: Any, users: list[str], report: dict) -> None:
    """A short online experiment: the serving version against the one before it, half the shoppers
    each (sticky by shopper), one click on each answer's first item sent back with its request id,
    attributed to arm, version and position, then ended keeping the control."""
    from core.domain import Event
    from shoprank.v1 import experiments_pb2, model_admin_pb2

    serving = [v.version for v in versions if v.serving]
    others = [v.version for v in versions if not v.serving]
    if not serving or not others:
        return
    step(f"an online experiment: version {serving[0]} (control) against version {others[0]}, half the shoppers each")
    arms = [experiments_pb2.ExperimentArm(name="control", version=serving[0], share=0.5),
            experiments_pb2.ExperimentArm(name="previous", version=others[0], share=0.5)]
    experiment_id = f"demo-{int(time.time())}"
    client.admin.CreateExperiment(model_admin_pb2.CreateExperimentRequest(experiment_id=experiment_id, arms=arms), timeout=180)
    clicks = []
    for u in users[:8]:
        answer = client.recommend(u, k=5)
        print(f"  {u}: arm {answer.arm}, version {answer.model_version}, request {answer.request_id[:8]}…")
        clicks.append(Event(f"{experiment_id}-{u}", u, answer.items[0].item_id, "click", time.time() - 1, answer.request_id))
    client.record_events(clicks)
    time.sleep(4.0)  # the attributor looks at events once they are RECSYS_ATTRIBUTION_GRACE_S old
    got = client.admin.GetExperiment(model_admin_pb2.GetExperimentRequest(experiment_id=experiment_id), timeout=60).experiment
    for m in got.metrics:
        print(f"  arm {m.arm} (v{m.version}): {m.requests} lists, {m.impressions} impressions, {m.clicks} clicks attributed, "
              f"CTR@10 {m.ctr_at_k.value:.3f}")
    client.admin.EndExperiment(model_admin_pb2.EndExperimentRequest(experiment_id=experiment_id), timeout=180)
    report["experiment"] = {m.arm: {"version": m.version, "lists": m.requests, "clicks": m.clicks} for m in got.metrics}
    print("  ended, control kept (GetExperiment / EndExperiment / make experiment-report EXPERIMENT=... for more)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="auto", choices=["auto", "synthetic", "online-retail"])
    parser.add_argument("--out", default=str(PROJECT_ROOT / "var" / "demo"))
    parser.add_argument("--bootstrap-steps", type=int, default=30)
    parser.add_argument("--fine-tune-steps", type=int, default=30)
    parser.add_argument("--latency-calls", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run(args)


if __name__ == "__main__":
    main()
