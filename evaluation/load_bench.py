"""`make bench-load`: Rank throughput and latency under concurrent shoppers, with CPU per process.

Deploys the suite (the Online Retail demo slice when ../shared/data is present, else the synthetic
shop), then for each client count sends Rank requests (a random shopper, 100 random candidates from the
catalogue) over TLS for `--seconds`, and Recommend (k=10) at 1 and 16 clients. For each level it prints
Rank/s, p50, p99 and the CPU seconds per wall second of every process (the services, tritonserver with its
python-backend stubs, the worker, this load generator). The numbers issue 11 measured on main before any
of its work are printed beside them. Writes bench/results/load-TAG.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from core.settings import PROJECT_ROOT
from devtools.load import rank_load
from devtools.suite import Suite, deploy

logger = logging.getLogger(__name__)
RESULTS = PROJECT_ROOT / "bench" / "results"
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
    groups = {name: [p.pid] for name, p in suite.processes.items()}
    if suite.triton is not None:
        pgid = suite.triton.process.pid
        groups["tritonserver"] = [int(d) for d in os.listdir("/proc") if d.isdigit() and _pgid(int(d)) == pgid]
    groups["load generator"] = [os.getpid()]
    return groups


def _pgid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def level(suite: Suite, users: list[str], items: list[str], clients: int, seconds: float, recommend_k: int = 0) -> dict[str, Any]:
    stop = threading.Event()
    box: dict[str, Any] = {}
    groups = process_groups(suite)
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    started = time.monotonic()
    load = threading.Thread(target=lambda: box.update(report=rank_load(
        suite.address("scoring"), suite.credentials("storefront"), users, items, stop, clients=clients, candidates=100,
        recommend_k=recommend_k)))
    load.start()
    time.sleep(seconds)
    stop.set()
    load.join()
    wall = time.monotonic() - started
    report = box["report"]
    cpu = {name: round((cpu_seconds(pids) - before[name]) / wall, 2) for name, pids in groups.items()}
    return {"clients": clients, "calls": report.calls, "per_s": round(len(report.latencies_ms) / wall, 1),
            "p50_ms": round(percentile(report.latencies_ms, 0.5), 1), "p99_ms": round(percentile(report.latencies_ms, 0.99), 1),
            "failed": report.failed_calls, "degraded": report.degraded, "cpu_per_s": cpu, "seconds": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--tag", default="main")
    parser.add_argument("--dataset", default="auto", choices=["auto", "online-retail", "synthetic"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    from devtools.demo import load_shop

    shop = load_shop(args.dataset)
    users = sorted({e.user_id for e in shop.split(0.6)[0]})
    items = sorted(shop.items)
    levels = [int(c) for c in args.clients.split(",")]
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "dataset": shop.name, "items": len(items), "rank": [], "recommend": []}
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        suite = deploy(Path(tmp), shop, {"RECSYS_MAX_CANDIDATES": "500"}, bootstrap_steps=10)
        try:
            for clients in levels:
                print(f"Rank, {clients} clients, {args.seconds:.0f} s ...", flush=True)
                results["rank"].append(level(suite, users, items, clients, args.seconds))
            for clients in (1, max(levels)):
                print(f"Recommend k=10, {clients} clients, {args.seconds:.0f} s ...", flush=True)
                results["recommend"].append(level(suite, users, items, clients, args.seconds, recommend_k=10))
        finally:
            suite.stop()
    write(results, args.tag)


def write(results: dict[str, Any], tag: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"load-{tag}.json").write_text(json.dumps(results, indent=1))
    names = list(results["rank"][0]["cpu_per_s"]) if results["rank"] else []
    lines = [f"# Rank under concurrent load (`make bench-load`, tag {tag}), {results['machine']['cpus']} CPUs, "
             f"{results['dataset']} ({results['items']} items), 100 candidates, TLS", "",
             "| RPC | clients | per s | p50 ms | p99 ms | failed | degraded | before: Rank/s, p50, p99 | CPU s per s: " + ", ".join(names) + " |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rpc in ("rank", "recommend"):
        for r in results[rpc]:
            before = BEFORE.get(r["clients"]) if rpc == "rank" else None
            lines.append(f"| {rpc} | {r['clients']} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['failed']} | {r['degraded']} | "
                         f"{', '.join(map(str, before)) if before else ''} | {', '.join(str(r['cpu_per_s'][n]) for n in names)} |")
    (RESULTS / f"load-{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
