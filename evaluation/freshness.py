"""`make bench-freshness`: how fresh the system is, on real processes.

(a) event acknowledged → visible in the features Rank reads (the profile service reads the same
    Feast online store), and the acknowledgement latency itself;
(b) event acknowledged → the shopper's next ranking reflects it (the clicked item's probability moves
    with its repeat signal and the shopper vector), and how that vector was obtained: computed inline
    while the state writer catches up, then stored; and event → state stored;
(c) fine-tune trigger → Rank answering from the new version (split into queueing, training, and
    publish + Triton load, from the job's own timestamps).
Writes bench/results/freshness.json and .md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from core.domain import Event
from devtools.suite import deploy
from evaluation.results import results_dir
from shopdata.synthetic import generate
from shoprank.v1 import profile_pb2
from shoprank_client.enums import job_state_of

DEPLOYMENT_ENV = {"RECSYS_MAX_CANDIDATES": "50", "RECSYS_FINE_TUNE_BATCH": "8", "RECSYS_FINE_TUNE_STEPS": "3"}


def next_ranking(client, events: int) -> dict:
    """Clicks on an item the shopper never touched, each followed at once by a Rank of it among others:
    the answer reflects the click when that item's probability moved (its repeat signals and the
    shopper's vector changed). Then Rank is polled until it reads the stored state."""
    candidates = ["SKU0001", "SKU1001", "SKU2001", "SKU3001", "SKU4001", "SKU0002", "SKU1002", "SKU2002"]
    reflected_ms: list[float] = []
    stored_ms: list[float] = []
    states: dict[str, int] = {}
    reflected = 0
    for n in range(events):
        user = f"fresh-rank-{n}"
        client.record_events([Event(f"fresh-rank-seed-{n}", user, "SKU3002", "purchase", time.time() - 60)])
        while client.rank(user, candidates).shopper_state != "stored":  # a settled shopper before the click
            time.sleep(0.01)
        before = {i.item_id: i.probability for i in client.rank(user, candidates).items}
        clicked = candidates[n % len(candidates)]
        t0 = time.perf_counter()
        client.record_events([Event(f"fresh-rank-{n}", user, clicked, "click", time.time())])
        answer = client.rank(user, candidates)
        t1 = time.perf_counter()
        after = {i.item_id: i.probability for i in answer.items}
        states[answer.shopper_state] = states.get(answer.shopper_state, 0) + 1
        if abs(after[clicked] - before[clicked]) > 1e-7:
            reflected += 1
            reflected_ms.append(1000 * (t1 - t0))
        while client.rank(user, candidates).shopper_state != "stored":
            time.sleep(0.005)
        stored_ms.append(1000 * (time.perf_counter() - t0))

    def summary(values: list[float]) -> dict:
        ordered = sorted(values) or [float("nan")]
        return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], "max": ordered[-1]}

    return {"events": events, "reflected": reflected, "first_rank_states": states, "reflected_ms": summary(reflected_ms),
            "stored_ms": summary(stored_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=30, help="single-event batches timed for (a)")
    parser.add_argument("--steps", type=int, default=20, help="fine-tune steps for (b)")
    args = parser.parse_args()
    shop = generate(n_users=16, n_days=30, seed=11)
    with tempfile.TemporaryDirectory() as tmp:
        suite = deploy(Path(tmp), shop, DEPLOYMENT_ENV)  # the deployment the integration tests start
        client = suite.client()
        assert client.profile is not None
        try:
            acks, visible = [], []
            for n in range(args.events):
                event = Event(f"fresh-{n}", "fresh-user", f"SKU{n % 8}00{n % 3}", "purchase", time.time() - 1)
                t0 = time.perf_counter()
                client.record_events([event])
                t1 = time.perf_counter()
                while True:
                    profile = client.profile.GetProfile(profile_pb2.GetProfileRequest(user_id="fresh-user"), timeout=10)
                    if profile.event_count == n + 1:
                        break
                t2 = time.perf_counter()
                acks.append(1000 * (t1 - t0))
                visible.append(1000 * (t2 - t0))
            ranking = next_ranking(client, args.events)
            _, fresh = shop.split(0.6)
            client.record_events(fresh)
            t0 = time.perf_counter()
            job = client.trigger(job_id="freshness", max_steps=args.steps)
            while job_state_of(job.state) not in ("SUCCEEDED", "REJECTED", "FAILED"):
                time.sleep(0.2)
                job = client.job("freshness")
            while job_state_of(job.state) == "SUCCEEDED" and client.rank("U0001", ["SKU0001", "SKU1001"]).model_version != job.new_version:
                time.sleep(0.2)  # a version the gate rejected never serves: then the time is to the gate's decision
            trigger_to_serving = time.perf_counter() - t0
        finally:
            client.close()
            suite.stop()
    report = {
        "ack_ms": {"p50": statistics.median(acks), "max": max(acks)},
        "ack_to_visible_ms": {"p50": statistics.median(visible), "max": max(visible)},
        "events": args.events,
        "event_to_next_ranking": ranking,
        "fine_tune": {"state": job_state_of(job.state), "steps": args.steps, "trigger_to_rank_on_new_version_s": round(trigger_to_serving, 1),
                      "job_message": job.message},
    }
    from core.settings import Settings

    ranker = Settings().ranker
    report["ranker"] = ranker
    what = f"the {ranker} ranker's fine-tune ({args.steps} steps asked): new data + replay, gate, publish, load"
    out = results_dir()
    (out / "freshness.json").write_text(json.dumps(report, indent=2))
    md = (f"# Freshness (2-core CPU, embedded default)\n\n"
          f"| measure | value |\n| --- | --- |\n"
          f"| RecordEvents acknowledgement (1 event, durable append + Feast push) | p50 {report['ack_ms']['p50']:.1f} ms, max {report['ack_ms']['max']:.1f} ms |\n"
          f"| event sent → visible in the online features Rank reads | p50 {report['ack_to_visible_ms']['p50']:.1f} ms, max {report['ack_to_visible_ms']['max']:.1f} ms |\n"
          f"| event sent → the next Rank reflects it ({ranking['events']} clicks; that Rank's shopper vector: {ranking['first_rank_states']}) | "
          f"p50 {ranking['reflected_ms']['p50']:.1f} ms, p99 {ranking['reflected_ms']['p99']:.1f} ms; reflected {ranking['reflected']}/{ranking['events']} |\n"
          f"| event sent → the shopper's state stored for the serving version (Rank answers `stored`) | "
          f"p50 {ranking['stored_ms']['p50']:.1f} ms, p99 {ranking['stored_ms']['p99']:.1f} ms |\n"
          f"| fine-tune trigger → Rank answers from the new version ({what}) | {trigger_to_serving:.1f} s ({job_state_of(job.state)}) |\n\n"
          f"Rerun: `make bench-freshness`.\n")
    (out / "freshness.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
