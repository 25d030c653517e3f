"""`make bench-load`: Rank throughput and latency under concurrent shoppers, with CPU per process.

Deploys the suite (the Online Retail demo slice when ../shared/data is present, else the synthetic
shop) with RECSYS_SCORING_PROCESSES scoring processes (default 2 per CPU), then for each client count
sends Rank requests (a random shopper, 100 random candidates from the catalogue) over TLS, each client
on its own connection as separate storefront processes would be, for `--seconds` after a 3 s unmeasured
warm-up; then Recommend (k=10 of 200 retrieved) at 1 and 16 clients, Rank with 10/100/500 candidates,
and with `--soak S` a long run at 16 clients sampling memory (plotted). For each level it prints
Rank/s, p50, p99, the CPU seconds per wall second and resident memory of every process (the services
with their child processes, tritonserver with its python-backend stubs, the worker, this load
generator). The numbers issue 11 measured on main before any of its work are printed beside them.

Two workloads (`--workload`, default both): `hot`, the one above (a few shoppers, no events during the run,
so every cache stays hot after the warm-up), and `shop`, what an open shop looks like (issue 26): the whole
Online Retail catalogue, `--shoppers` customers with their purchase histories, first every shopper's
stored state rebuilt for the serving version (timed: what a new version costs), then each call's shopper drawn
by how often they visited (a few return often, most rarely), and before each Rank, with probability
`--event-probability`, a click of that shopper recorded through RecordEvents, so their state has changed;
then ingest while those states are recomputed, then that ingest again with the feedback service restarted on `--feedback-processes` processes
(RECSYS_FEEDBACK_PROCESSES, one per CPU; warmed by a short unmeasured ingest first; then back to one process,
on which the soak runs, as every Rank level did). The soak runs on the shop-like
workload when it is measured (on the hot one with `--workload hot`).
Writes bench/results/load-TAG.{json,md} (and load-TAG-soak.png or load-TAG-shop-soak.png).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from devtools.load import RankReport, ShopRankReport, ingest, rank_load, refreshes_caught_up, shop_rank_load
from devtools.suite import Suite, deploy
from evaluation.results import results_dir

logger = logging.getLogger(__name__)
RESULTS = results_dir()
BEFORE = {1: (26.1, 36, 67), 4: (23.7, 163, 341), 16: (26.2, 583, 815)}  # issue 11's table: Rank/s, p50, p99 (ms)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total / TICKS


def process_groups(suite: Suite) -> dict[str, list[int]]:
    """pids per process of the suite; tritonserver with every process of its group (its stubs)."""
    groups = {name: [p.pid, *_children(p.pid)] for name, p in suite.processes.items()}
    if suite.triton is not None:
        pgid = suite.triton.process.pid
        groups["tritonserver"] = [int(d) for d in os.listdir("/proc") if d.isdigit() and _pgid(int(d)) == pgid]
    groups["load generator"] = [os.getpid()]
    return groups


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (a service's extra serving processes)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
            except (FileNotFoundError, IndexError, ValueError):
                continue
    return out


def _pgid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return round(total / 1024, 1)


@dataclass(frozen=True)
class ShopTraffic:
    """The shop-like workload's shoppers, how often each comes back, and the chance of an event before a Rank."""

    users: list[str]
    weights: list[float]
    event_probability: float


def shop_traffic(shop: Any, event_probability: float) -> ShopTraffic:
    """Every shopper of `shop`, weighted by the number of days they bought on (a few return often)."""
    days: dict[str, set[int]] = {}
    for e in shop.events:
        days.setdefault(e.user_id, set()).add(int(e.timestamp // 86400))
    users = sorted(days)
    return ShopTraffic(users, [float(len(days[u])) for u in users], event_probability)


def level(suite: Suite, users: list[str], items: list[str], clients: int, seconds: float, recommend_k: int = 0,
          candidates: int = 100, warmup_s: float = 3.0, sample: Callable[[float], None] | None = None,
          traffic: ShopTraffic | None = None) -> dict[str, Any]:
    """One load level: `warmup_s` of the same load unmeasured (each serving process fills its caches),
    then `seconds` measured; `sample(elapsed)` is called about every second while it runs. With
    `traffic`, the shop-like workload (skewed shoppers, events before Ranks) instead of `users`."""
    if warmup_s > 0:
        _run(suite, users, items, clients, warmup_s, recommend_k, candidates, traffic=traffic)
    groups = process_groups(suite)
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    started = time.monotonic()
    report = _run(suite, users, items, clients, seconds, recommend_k, candidates, sample, traffic)
    wall = time.monotonic() - started
    cpu = {name: round((cpu_seconds(pids) - before[name]) / wall, 2) for name, pids in groups.items()}
    out = {"clients": clients, "candidates": candidates, "calls": report.calls, "per_s": round(len(report.latencies_ms) / wall, 1),
           "p50_ms": round(percentile(report.latencies_ms, 0.5), 1), "p99_ms": round(percentile(report.latencies_ms, 0.99), 1),
           # the far tail: one call in a thousand, and the slowest (a process-wide pause shows here first)
           "p999_ms": round(percentile(report.latencies_ms, 0.999), 1), "max_ms": round(max(report.latencies_ms, default=float("nan")), 1),
           "failed": report.failed_calls, "degraded": report.degraded, "cpu_per_s": cpu, "seconds": round(wall, 1),
           "rss_mb": {name: rss_mb(pids) for name, pids in groups.items()}, "shopper_states": dict(report.shopper_states),
           # where the tail comes from: the calls by their answer's shopper_state and by whether an event preceded them
           "by_kind": {kind: {"calls": len(ms), "p50_ms": round(percentile(ms, 0.5), 1), "p99_ms": round(percentile(ms, 0.99), 1)}
                       for kind, ms in sorted(report.latencies_by_kind.items())}}
    if isinstance(report, ShopRankReport):
        out["events"] = {"recorded": report.events_recorded, "failed": report.event_failed,
                         "p50_ms": round(percentile(report.event_latencies_ms, 0.5), 1),
                         "p99_ms": round(percentile(report.event_latencies_ms, 0.99), 1)}
    return out


def _run(suite: Suite, users: list[str], items: list[str], clients: int, seconds: float, recommend_k: int, candidates: int,
         sample: Callable[[float], None] | None = None, traffic: ShopTraffic | None = None) -> RankReport:
    stop = threading.Event()
    box: dict[str, RankReport] = {}
    if traffic is None:
        def generate() -> RankReport:
            return rank_load(suite.address("scoring"), suite.credentials("storefront"), users, items, stop, clients=clients,
                             candidates=candidates, recommend_k=recommend_k)
    else:
        def generate() -> RankReport:
            return shop_rank_load(suite.address("scoring"), suite.address("feedback"), suite.credentials("storefront"), traffic.users,
                                  traffic.weights, items, stop, clients=clients, candidates=candidates,
                                  event_probability=traffic.event_probability, recommend_k=recommend_k)
    load = threading.Thread(target=lambda: box.update(report=generate()))
    started = time.monotonic()
    load.start()
    while time.monotonic() - started < seconds:
        time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - started))))
        if sample is not None:
            sample(time.monotonic() - started)
    stop.set()
    load.join()
    return box["report"]


def soak(suite: Suite, users: list[str], items: list[str], clients: int, seconds: float, every_s: float = 10.0,
         traffic: ShopTraffic | None = None) -> dict[str, Any]:
    """Rank at `clients` for `seconds` (the shop-like traffic when given), sampling every process's
    resident memory every `every_s`."""
    samples: list[dict[str, Any]] = []
    groups = process_groups(suite)

    def sample(elapsed: float) -> None:
        if not samples or elapsed - samples[-1]["t"] >= every_s:
            samples.append({"t": round(elapsed, 1), **{name: rss_mb(pids) for name, pids in groups.items()}})

    sample(0.0)
    result = level(suite, users, items, clients, seconds, warmup_s=0, sample=sample, traffic=traffic)
    result["memory"] = samples
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--candidates", default="10,100,500", help="candidate counts measured at 1 and 16 clients")
    parser.add_argument("--soak", type=float, default=0.0,
                        help="then Rank at 16 clients for this many seconds, sampling memory (the shop-like workload when it runs)")
    parser.add_argument("--processes", type=int, default=2 * (os.cpu_count() or 1), help="RECSYS_SCORING_PROCESSES")
    parser.add_argument("--feedback-processes", type=int, default=os.cpu_count() or 1,
                        help="RECSYS_FEEDBACK_PROCESSES of the shop-like workload's second ingest (one per CPU)")
    parser.add_argument("--ablations", action="store_true",
                        help="instead: Rank at 1 and 16 clients with each lever of issue 11 turned off, one deployment each")
    parser.add_argument("--tag", default="main")
    parser.add_argument("--dataset", default="auto", choices=["auto", "online-retail", "synthetic"])
    parser.add_argument("--workload", default="both", choices=["hot", "shop", "both"], help="see above")
    parser.add_argument("--shoppers", type=int, default=3000, help="shop workload: customers with purchase histories")
    parser.add_argument("--event-probability", type=float, default=0.3, help="shop workload: chance of an event before each Rank")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    from devtools.demo import load_shop

    shop = load_shop(args.dataset)
    users = sorted({e.user_id for e in shop.split(0.6)[0]})
    items = sorted(shop.items)
    levels = [int(c) for c in args.clients.split(",")]
    top = max(levels)
    if args.ablations:
        return ablations(shop, users, items, args.processes, args.seconds, top)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "dataset": shop.name, "items": len(items),
                               "scoring_processes": args.processes, "rank": [], "recommend": [], "candidates": []}
    if args.workload in ("shop", "both"):
        results["shop"] = shop_workload(args.dataset, args.shoppers, args.event_probability, args.processes, levels, args.seconds, args.soak,
                                        args.feedback_processes)
    if args.workload == "shop":
        return write(results, args.tag)
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        suite = deploy(Path(tmp), shop, {"RECSYS_MAX_CANDIDATES": "500", "RECSYS_SCORING_PROCESSES": str(args.processes)},
                       bootstrap_steps=10)
        try:
            for clients in levels:
                print(f"Rank, {clients} clients, {args.seconds:.0f} s ...", flush=True)
                results["rank"].append(level(suite, users, items, clients, args.seconds))
            for clients in (1, top):
                print(f"Recommend k=10 of 200 retrieved, {clients} clients, {args.seconds:.0f} s ...", flush=True)
                results["recommend"].append(level(suite, users, items, clients, args.seconds, recommend_k=10))
            for n in [int(c) for c in args.candidates.split(",") if c]:
                for clients in (1, top):
                    print(f"Rank with {n} candidates, {clients} clients, {args.seconds / 2:.0f} s ...", flush=True)
                    results["candidates"].append(level(suite, users, items, clients, args.seconds / 2, candidates=min(n, len(items))))
            if args.soak and args.workload == "hot":
                print(f"Soak: Rank, {top} clients, {args.soak:.0f} s, memory sampled every 10 s ...", flush=True)
                results["soak"] = soak(suite, users, items, top, args.soak)
        finally:
            suite.stop()
    write(results, args.tag)


def shop_workload(dataset: str, shoppers: int, event_probability: float, processes: int, levels: list[int],
                  seconds: float, soak_s: float = 0.0, feedback_processes: int = 1) -> dict[str, Any]:
    """The shop-like workload on a deployment of its own: every shopper's purchases ingested, the time to
    rebuild every shopper's state, then Rank at each client count, Recommend at 1 and the most clients,
    ingest, and (with `soak_s`) a soak at the most clients with memory sampled."""
    from shopdata import synthetic, uci_retail

    if dataset != "synthetic" and uci_retail.DEFAULT_PATH.exists():
        shop = uci_retail.shop_slice(n_users=shoppers)
    else:
        shop = synthetic.generate(n_users=shoppers)
    traffic = shop_traffic(shop, event_probability)
    items = sorted(shop.items)
    print(f"shop-like: deploying {len(traffic.users)} shoppers, {len(items)} items, {len(shop.events)} purchases "
          "(ingest, version 1, catalogue embedding: minutes) ...", flush=True)
    out: dict[str, Any] = {"dataset": shop.name, "shoppers": len(traffic.users), "items": len(items), "events_ingested": len(shop.events),
                           "event_probability": event_probability, "scoring_processes": processes,
                           "rank": [], "recommend": []}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="load-shop-") as tmp:
        suite = deploy(Path(tmp), shop, {"RECSYS_MAX_CANDIDATES": "500", "RECSYS_SCORING_PROCESSES": str(processes)},
                       bootstrap_steps=10, ingest_fraction=1.0)
        out["deploy_s"] = round(time.monotonic() - started, 1)
        try:
            # First every shopper's state for the serving version (measured): the levels then see a shop whose
            # states are in place, as a running shop's are, instead of racing the writer's first passes (one run
            # had 83% of its 1-client Ranks computing the state inline, another 11%).
            print("shopper-state backfill: every shopper's state rebuilt for the serving version ...", flush=True)
            out["state_backfill"] = state_backfill(suite, traffic.users)
            for clients in levels:
                print(f"shop-like Rank, {clients} clients, {seconds:.0f} s ...", flush=True)
                out["rank"].append(level(suite, traffic.users, items, clients, seconds, traffic=traffic))
            for clients in sorted({1, max(levels)}):
                print(f"shop-like Recommend k=10, {clients} clients, {seconds:.0f} s ...", flush=True)
                out["recommend"].append(level(suite, traffic.users, items, clients, seconds, recommend_k=10, traffic=traffic))
            print(f"ingest while shopper states are recomputed: {max(levels)} clients x 50 events ...", flush=True)
            out["ingest"] = ingest_while_states(suite, traffic.users, items, max(levels))
            if feedback_processes > 1:
                print(f"the same ingest with {feedback_processes} feedback processes (RECSYS_FEEDBACK_PROCESSES) ...", flush=True)
                out["ingest_processes"] = {"processes": feedback_processes,
                                           **ingest_on_processes(suite, traffic.users, items, max(levels), feedback_processes)}
            if soak_s:
                print(f"Soak (shop-like): Rank, {max(levels)} clients, {soak_s:.0f} s, memory sampled every 10 s ...", flush=True)
                out["soak"] = soak(suite, traffic.users, items, max(levels), soak_s, traffic=traffic)
        finally:
            suite.stop()
    return out


def ingest_while_states(suite: Suite, users: Sequence[str], items: Sequence[str], clients: int, batches: int = 10) -> dict[str, Any]:
    """RecordEvents at `clients` x 50 events over the shop's shoppers: every batch changes ~50 shoppers, whose
    rows the feedback service's refresher and then states its writer recompute while the ingest goes on.
    Besides the acknowledged rate: how many answers came before their features were refreshed (the
    refresher was behind), and how long after the last answer its backlog was clear (a probe event's
    features refreshed within its own call, core.feature_refresher)."""
    address, credentials = suite.address("feedback"), suite.credentials("storefront")
    report = ingest(address, credentials, users, items, clients=clients, batches=batches, batch_size=50,
                    prefix=f"shop-ingest-{time.time_ns():x}")
    caught_up = refreshes_caught_up(address, credentials, users[0], items[0])
    return {"clients": clients, "batch": 50, "acked": len(report.acked), "failed_calls": report.failed_calls,
            "seconds": round(report.seconds, 2), "events_per_s": round(report.events_per_s, 1),
            "p99_ms": round(percentile(report.latencies_ms, 0.99), 1), "pending_answers": report.pending_calls, "calls": report.calls,
            "refreshed_s_after_last_answer": round(caught_up, 2)}


def ingest_on_processes(suite: Suite, users: Sequence[str], items: Sequence[str], clients: int, processes: int) -> dict[str, Any]:
    """ingest_while_states with the feedback service restarted on `processes` processes (after its catch-up
    at start and an unmeasured warm-up ingest, as the one-process service was warm), then restarted as it was."""
    before = suite.extra_env.get("RECSYS_FEEDBACK_PROCESSES")
    try:
        suite.extra_env["RECSYS_FEEDBACK_PROCESSES"] = str(processes)
        suite.stop_process("feedback")
        suite.start_services(("feedback",))
        refreshes_caught_up(suite.address("feedback"), suite.credentials("storefront"), users[0], items[0])
        ingest_while_states(suite, users, items, clients, batches=3)
        return ingest_while_states(suite, users, items, clients)
    finally:
        if before is None:
            suite.extra_env.pop("RECSYS_FEEDBACK_PROCESSES", None)
        else:
            suite.extra_env["RECSYS_FEEDBACK_PROCESSES"] = before
        suite.stop_process("feedback")
        suite.start_services(("feedback",))


def state_backfill(suite: Suite, users: Sequence[str]) -> dict[str, Any]:
    """What a newly serving version costs: every shopper's state rebuilt (ranking.shopper_states.backfill,
    the writer's own code, in this process against the suite's Feast and Triton), its time, the CPU it
    took (this process and tritonserver) per shopper, and the stored state's size per shopper."""
    from core.features import FeatureClient
    from core.privacy import Pseudonyms
    from core.triton_client import triton_client
    from rankers import get_ranker
    from ranking.shopper_states import ShopperStateWriter, backfill

    settings = suite.settings()
    ranker = get_ranker(settings.ranker)
    features = FeatureClient(settings)
    writer = ShopperStateWriter(ranker, features, triton_client(settings, ranker.model_name))
    pseudonyms = Pseudonyms.of(settings)
    keys = [pseudonyms(u) for u in users]
    interests = {k: row.interests for k in keys if (row := features.get_user(k)) is not None}
    versions = writer.serving_versions()
    triton = process_groups(suite).get("tritonserver", [])
    cpu_before, triton_before = time.process_time(), cpu_seconds(triton)
    seconds = backfill(writer, interests, versions, progress=lambda done, total: print(f"  {done}/{total} shoppers", flush=True))
    cpu = (time.process_time() - cpu_before) + (cpu_seconds(triton) - triton_before)
    stored = features.get_shopper_state(keys[0], ranker.version_key(versions[0])) if keys else None
    width = 0 if stored is None else len(stored.vector)
    return {"shoppers": len(interests), "versions": versions, "seconds": round(seconds, 2),
            "shoppers_per_s": round(len(interests) / max(seconds, 1e-9), 1),
            "cpu_ms_per_shopper": round(cpu * 1000 / max(len(interests), 1), 3),
            "state_bytes_per_shopper_per_version": width * 4, "chunk": writer.chunk}


ABLATIONS = {  # name -> what differs from the defaults of this benchmark (RECSYS_* variables)
    "all levers on": {},
    "one scoring process": {"RECSYS_SCORING_PROCESSES": "1", "RECSYS_SCORING_THREADS": "8"},
    "no feature cache in scoring": {"RECSYS_FEATURE_CACHE_S": "0"},
    "no stored shopper states (every Rank computes the vector inline)": {"RECSYS_SHOPPER_STATES": "0"},
    "torch threads = cores in Triton": {"RECSYS_TORCH_THREADS": str(os.cpu_count() or 1)},
}


def ablations(shop: Any, users: list[str], items: list[str], processes: int, seconds: float, top: int) -> None:
    """Each lever off in turn (a deployment each), Rank at 1 and `top` clients."""
    rows = []
    for name, env in ABLATIONS.items():
        print(f"{name}: deploying ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="load-ablation-") as tmp:
            suite = deploy(Path(tmp), shop, {"RECSYS_MAX_CANDIDATES": "500", "RECSYS_SCORING_PROCESSES": str(processes), **env},
                           bootstrap_steps=10)
            try:
                for clients in (1, top):
                    rows.append({"ablation": name, "env": env, **level(suite, users, items, clients, seconds)})
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                suite.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load-ablations.json").write_text(json.dumps(rows, indent=1))
    lines = [f"# Each lever of issue 11 off in turn (`python -m evaluation.load_bench --ablations`), {os.cpu_count()} CPUs, "
             f"{shop.name}, Rank of 100 candidates, {seconds:.0f} s per level", "",
             "| configuration | clients | Rank/s | p50 ms | p99 ms | CPU s per s: scoring, tritonserver, load generator |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cpu = r["cpu_per_s"]
        lines.append(f"| {r['ablation']} | {r['clients']} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{cpu.get('scoring')}, {cpu.get('tritonserver')}, {cpu.get('load generator')} |")
    (RESULTS / "load-ablations.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def write(results: dict[str, Any], tag: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"load-{tag}.json").write_text(json.dumps(results, indent=1))
    names = list(results["rank"][0]["cpu_per_s"]) if results["rank"] else []
    lines = shop_lines(results["shop"], tag) if results.get("shop") else []
    if not results["rank"]:
        (RESULTS / f"load-{tag}.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    lines += [f"# Rank under concurrent load (`make bench-load`, tag {tag}), {results['machine']['cpus']} CPUs, "
             f"{results['dataset']} ({results['items']} items), 100 candidates, TLS", "",
             "| RPC | clients | per s | p50 ms | p99 ms | failed | degraded | before: Rank/s, p50, p99 | CPU s per s: " + ", ".join(names) + " |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rpc in ("rank", "recommend"):
        for r in results[rpc]:
            before = BEFORE.get(r["clients"]) if rpc == "rank" else None
            lines.append(f"| {rpc} | {r['clients']} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['failed']} | {r['degraded']} | "
                         f"{', '.join(map(str, before)) if before else ''} | {', '.join(str(r['cpu_per_s'][n]) for n in names)} |")
    lines += ["", "Resident memory after each level (MB): " + ", ".join(names), "",
              "| RPC | clients | candidates | " + " | ".join(names) + " |", "| --- | --- | --- |" + " --- |" * len(names)]
    for rpc in ("rank", "recommend", "candidates"):
        for r in results.get(rpc, []):
            lines.append(f"| {rpc} | {r['clients']} | {r.get('candidates', 100)} | " + " | ".join(str(r["rss_mb"].get(n, "")) for n in names) + " |")
    if results.get("candidates"):
        lines += ["", "Cost with the number of candidates (Rank):", "",
                  "| candidates | clients | Rank/s | p50 ms | p99 ms | candidates/s | CPU ms per call (all processes) |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in results["candidates"]:
            cpu_ms = 1000 * sum(r["cpu_per_s"].values()) / max(r["per_s"], 1e-9)
            lines.append(f"| {r['candidates']} | {r['clients']} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
                         f"{round(r['per_s'] * r['candidates'])} | {cpu_ms:.1f} |")
    if results.get("soak"):
        lines += soak_lines(results["soak"], names, f"load-{tag}-soak.png")
    (RESULTS / f"load-{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def soak_lines(s: dict[str, Any], names: list[str], png: str) -> list[str]:
    """The soak's summary, memory table and plot (written next to the results)."""
    first, last = s["memory"][1] if len(s["memory"]) > 1 else s["memory"][0], s["memory"][-1]
    lines = ["", f"Soak: Rank at {s['clients']} clients for {s['seconds']:.0f} s: {s['per_s']} Rank/s, p50 {s['p50_ms']} ms, "
             f"p99 {s['p99_ms']} ms, p99.9 {s.get('p999_ms', '-')} ms, max {s.get('max_ms', '-')} ms, {s['failed']} failed. Resident memory (MB) at {first['t']:.0f} s -> {last['t']:.0f} s:", "",
             "| process | first sample | last sample | change |", "| --- | --- | --- | --- |"]
    for n in names:
        lines.append(f"| {n} | {first[n]} | {last[n]} | {last[n] - first[n]:+.1f} |")
    plot_soak(s, RESULTS / png)
    return lines + ["", f"![memory during the soak]({png})"]


def shop_lines(shop: dict[str, Any], tag: str = "main") -> list[str]:
    """The shop-like workload's table (the README's headline figures)."""
    names = list(shop["rank"][0]["cpu_per_s"]) if shop["rank"] else []
    lines = [f"# Shop-like workload (`make bench-load`), {os.cpu_count()} CPUs: {shop['dataset']}, {shop['items']} items, "
             f"{shop['shoppers']} shoppers with histories ({shop['events_ingested']} purchases), shoppers drawn by how often they "
             f"visited, an event recorded before {shop['event_probability']:.0%} of the calls; 100 candidates per Rank, TLS; "
             f"{shop.get('scoring_processes', '?')} scoring processes, 1 feedback process", "",
             "| RPC | clients | per s | p50 ms | p99 ms | p99.9 ms | max ms | failed | degraded | events recorded (p99 ms) | shopper vector: stored / "
             "inline / cold start | CPU s per s: " + ", ".join(names) + " |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rpc in ("rank", "recommend"):
        for r in shop[rpc]:
            ev, st = r.get("events", {}), r.get("shopper_states", {})
            lines.append(f"| {rpc} | {r['clients']} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r.get('p999_ms', '-')} | {r.get('max_ms', '-')} | "
                         f"{r['failed']} | {r['degraded']} | {ev.get('recorded', 0)} ({ev.get('p99_ms', '-')}) | {st.get('stored', 0)} / {st.get('inline', 0)} / {st.get('cold_start', 0)} | "
                         f"{', '.join(str(r['cpu_per_s'][n]) for n in names)} |")
    kinds = ("no_event", "after_event", "stored", "inline", "cold_start")
    broken_down = [(rpc, r) for rpc in ("rank", "recommend") for r in shop[rpc] if r.get("by_kind")]
    if broken_down:
        lines += ["", "Where the latency comes from: the same calls by whether a click of the shopper's was recorded just before, "
                  "and by how the answer's shopper vector was obtained (calls, p50 / p99 ms):", "",
                  "| RPC | clients | " + " | ".join(kinds) + " |", "| --- | --- | " + " | ".join("---" for _ in kinds) + " |"]
        for rpc, r in broken_down:
            cells = [f"{k['calls']}: {k['p50_ms']} / {k['p99_ms']}" if (k := r["by_kind"].get(kind)) else "-" for kind in kinds]
            lines.append(f"| {rpc} | {r['clients']} | " + " | ".join(cells) + " |")
    if b := shop.get("state_backfill"):
        lines += ["", f"Shopper states for a newly serving version (`ranking.shopper_states.backfill`, {b['chunk']} shoppers per Triton "
                  f"request): {b['shoppers']} shoppers in {b['seconds']} s ({b['shoppers_per_s']}/s), {b['cpu_ms_per_shopper']} ms of CPU "
                  f"per shopper (writer and tritonserver); {b['state_bytes_per_shopper_per_version']} bytes of vector per shopper and version."]
    if i := shop.get("ingest"):
        lines += ["", f"Ingest while the shoppers' rows and states are recomputed: {i['clients']} clients x {i['batch']} events, "
                  f"{i['events_per_s']:,.0f} events/s acknowledged ({i['acked']} events, {i['failed_calls']} failed calls){ingest_detail(i)}."]
    if i := shop.get("ingest_processes"):
        lines += ["", f"The same ingest with the feedback service on {i['processes']} processes (RECSYS_FEEDBACK_PROCESSES, one port), "
                  f"after a short unmeasured ingest: {i['events_per_s']:,.0f} events/s acknowledged ({i['acked']} events, "
                  f"{i['failed_calls']} failed calls){ingest_detail(i)}."]
    if shop.get("soak"):
        lines += soak_lines(shop["soak"], names, f"load-{tag}-shop-soak.png")
    return lines + [""]


def ingest_detail(i: dict[str, Any]) -> str:
    """The refresher's side of an ingest: answers sent before their features were refreshed, and when it caught up."""
    if "pending_answers" not in i:  # results from before the refresher ran off the call
        return ""
    return (f"; p99 {i['p99_ms']} ms per call; {i['pending_answers']} of {i['calls']} answers said features_pending (the "
            f"refresher was behind), and every shopper's row was refreshed {i['refreshed_s_after_last_answer']} s after the last answer")


def plot_soak(soak_result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = soak_result["memory"]
    names = [k for k in samples[0] if k != "t"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for n in names:
        ax.plot([x["t"] / 60 for x in samples], [x[n] for x in samples], label=n)
    ax.set_xlabel("minutes of Rank at %d clients" % soak_result["clients"])
    ax.set_ylabel("resident memory (MB)")
    ax.set_title(f"Memory during the soak: {soak_result['per_s']} Rank/s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
