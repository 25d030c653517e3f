"""`make bench-rank`: end-to-end Rank latency for 100 candidates, gRPC → event log / Feast → Triton,
for each ranker in one run (same machine, same data, same candidates), so the numbers compare as
ratios. Each ranker gets its own real deployment (tritonserver, scoring and feedback services);
version 1 is bootstrapped from the same past events.

- first call: the first Rank after the deployment started (TorchScript's first runs, connections);
- new items: a later Rank whose 100 items were never requested (fusion: served from the catalogue table
  the worker embedded at publish, else encoded once);
- warm: p50 / p99 over repeated calls for several shoppers with fresh candidate lists drawn from
  items already seen.

Online Retail demo slice when ../shared/data exists, else the synthetic shop. Writes
bench/results/rank-latency.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devtools.demo import load_shop, percentile
from devtools.suite import Suite
from evaluation.run import RESULTS, machine


def measure(ranker: str, shop, calls: int, candidates: int, root: Path) -> dict:
    from workers.publishing import bootstrap

    suite = Suite(data_dir=root / ranker, model_repository=root / ranker / "triton_models", extra_env={"RECSYS_RANKER": ranker})
    with suite:
        suite.prepare()
        suite.start_services(("feedback",))
        client = suite.client("feedback")
        client.upsert_items(shop.items)
        past, _ = shop.split(0.7)
        client.record_events(past)
        client.close()
        t = time.perf_counter()
        bootstrap(suite.settings(), max_steps=10, batch_size=8)
        bootstrap_s = time.perf_counter() - t
        suite.start_triton()
        suite.start_services(("scoring",))
        client = suite.client("feedback", "scoring")
        rng = random.Random(0)
        users = sorted({e.user_id for e in past})[:10]
        catalogue = sorted(shop.items)
        pool = rng.sample(catalogue, min(len(catalogue), 3 * candidates))
        t = time.perf_counter()
        first = client.rank(users[0], pool[:candidates])
        first_call = time.perf_counter() - t
        assert not first.degraded, "Triton did not answer"
        for u in users[1:4]:  # warm the processes (TorchScript's first runs, connections) on the same items
            client.rank(u, pool[:candidates])
        t = time.perf_counter()
        client.rank(users[0], pool[candidates : 2 * candidates])  # items never requested before
        cold = time.perf_counter() - t
        for u in users:  # every pool item seen once
            client.rank(u, rng.sample(pool, candidates))
        latencies = []
        for n in range(calls):
            items = rng.sample(pool, candidates)
            t = time.perf_counter()
            client.rank(users[n % len(users)], items)
            latencies.append(time.perf_counter() - t)
        client.close()
    return {"ranker": ranker, "candidates": candidates, "first_call_ms": round(1000 * first_call, 1), "cold_ms": round(1000 * cold, 1), "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * percentile(latencies, 99), 1), "calls": calls, "bootstrap_s": round(bootstrap_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="auto", choices=["auto", "synthetic", "online-retail"])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--rankers", default="fusion,cross-encoder")
    args = parser.parse_args()
    shop = load_shop(args.dataset)
    if len(shop.items) < args.candidates:
        sys.exit(f"{shop.name} has {len(shop.items)} items: fewer than {args.candidates} candidates")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rank-latency-") as tmp:
        for ranker in args.rankers.split(","):
            print(f"== {ranker}", flush=True)
            rows.append(measure(ranker, shop, args.calls, args.candidates, Path(tmp)))
            print(f"  {rows[-1]}", flush=True)
    report = {"machine": machine(), "dataset": shop.name, "items": len(shop.items), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rank-latency.json").write_text(json.dumps(report, indent=2))
    lines = [f"# Rank latency, end to end ({shop.name}, {args.candidates} candidates, {args.calls} warm calls)", "",
             "| ranker | first call ms | 100 never-requested items ms | warm p50 ms | warm p99 ms |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['ranker']} | {r['first_call_ms']:.0f} | {r['cold_ms']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} |" for r in rows]
    if len(rows) == 2:
        lines += ["", f"warm p50 ratio {rows[1]['ranker']} / {rows[0]['ranker']}: {rows[1]['p50_ms'] / rows[0]['p50_ms']:.1f}x"]
    (RESULTS / "rank-latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
