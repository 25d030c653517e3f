"""`make bench-item-to-item`: p50 / p99 of the storefront RPCs of issue 14 through real gRPC, for a
5,000-item catalogue on this machine (and of GetProfile, Rank with explanations and ListSegments).

A deployment (devtools.suite.deploy: feedback, scoring, Feast, version 1 trained by the worker's code,
tritonserver) gets a 5,000-item catalogue (evaluation.catalogue_scale.catalogue: four categories,
near-duplicate titles) and 30 days of shoppers' baskets (several items at one timestamp, so the
version's co-purchase table is not empty). Then, one client, one call at a time, warm: Recommend plain
and with rules, SimilarItems, FrequentlyBoughtTogether and Trending, each anonymous and for a shopper
(ranked by the model). Writes bench/results/item-to-item.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from core.domain import Event
from evaluation.catalogue_scale import catalogue
from evaluation.results import results_dir
from evaluation.run import machine
from shopdata import Shop

RESULTS = results_dir()
DAY = 86400.0


def basket_shop(n_items: int, n_users: int = 300, days: int = 30, seed: int = 0) -> Shop:
    """Shoppers who each favour one category and buy baskets of 1-5 items from it, some repeatedly."""
    rng = random.Random(seed)
    items = catalogue(n_items, seed)
    by_category: dict[str, list[str]] = {}
    for item_id, text in items.items():
        by_category.setdefault(text.category, []).append(item_id)
    now = time.time() - 3600
    events: list[Event] = []
    for u in range(n_users):
        user = f"B{u:04d}"
        liked = rng.sample(by_category[rng.choice(sorted(by_category))], 40)
        for b in range(rng.randint(2, 8)):
            ts = now - rng.uniform(0, days) * DAY
            for k, item_id in enumerate(dict.fromkeys(rng.choices(liked, k=rng.randint(1, 5)))):
                events.append(Event(f"{user}-{b}-{k}-c", user, item_id, "click", ts - 60))
                events.append(Event(f"{user}-{b}-{k}-p", user, item_id, "purchase", ts))
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    return Shop("baskets", items, events)


def latency(call: Callable[[], Any], n: int) -> dict[str, float]:
    """p50/p99 of `n` calls after 5 warm-up calls, with what the answers held (a fast empty or degraded
    answer is not a fast answer)."""
    for _ in range(5):
        call()
    times, sizes, degraded = [], [], 0
    for _ in range(n):
        t = time.perf_counter()
        reply = call()
        times.append((time.perf_counter() - t) * 1000)
        sizes.append(len(getattr(reply, "items", getattr(reply, "segments", getattr(reply, "recent_items", [])))))
        degraded += bool(getattr(reply, "degraded", False))
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
            "calls": n, "mean_items": round(statistics.mean(sizes), 2), "degraded": degraded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=200, help="calls per RPC")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from devtools.suite import deploy
    from shoprank.v1 import common_pb2, model_admin_pb2, profile_pb2, scoring_pb2
    from workers.segments import refresh as refresh_segments

    shop = basket_shop(args.items)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        suite = deploy(Path(tmp), shop, {"RECSYS_MAX_CANDIDATES": "200"})
        try:
            deploy_s = time.perf_counter() - started
            client = suite.client()
            # the whole event stream: deploy records the first 60%
            client.record_events(shop.split(0.6)[1])
            stub, profiles = client.scoring, client.profile
            assert stub is not None and profiles is not None
            refresh_segments(suite.settings())  # what the worker's beat task does
            users = sorted({e.user_id for e in shop.events})
            baskets: dict[tuple[str, float], list[str]] = {}
            for e in shop.events:
                if e.event_type == "purchase":
                    baskets.setdefault((e.user_id, e.timestamp), []).append(e.item_id)
            bought = sorted({i for items in baskets.values() if len(items) > 1 for i in items})  # items with partners
            for user in users:  # every shopper's text embedded once (Triton's shopper cache), as in a warm shop
                stub.Recommend(scoring_pb2.RecommendRequest(user_id=user, k=10), timeout=30)
            rng = random.Random(1)
            rules = common_pb2.RecommendRules(exclude_purchased=True, distinct_titles=True, max_per_category=4)

            def pick(seq: list[str]) -> str:
                return rng.choice(seq)

            calls: dict[str, Callable[[], Any]] = {
                "Recommend": lambda: stub.Recommend(scoring_pb2.RecommendRequest(user_id=pick(users), k=10), timeout=30),
                "Recommend + rules": lambda: stub.Recommend(scoring_pb2.RecommendRequest(user_id=pick(users), k=10, rules=rules), timeout=30),
                "SimilarItems": lambda: stub.SimilarItems(scoring_pb2.SimilarItemsRequest(item_id=pick(bought), k=10), timeout=30),
                "SimilarItems for a shopper": lambda: stub.SimilarItems(scoring_pb2.SimilarItemsRequest(
                    item_id=pick(bought), k=10, user_id=pick(users)), timeout=30),
                "FrequentlyBoughtTogether": lambda: stub.FrequentlyBoughtTogether(scoring_pb2.FrequentlyBoughtTogetherRequest(
                    item_ids=[pick(bought)], k=10), timeout=30),
                "FrequentlyBoughtTogether for a shopper": lambda: stub.FrequentlyBoughtTogether(scoring_pb2.FrequentlyBoughtTogetherRequest(
                    item_ids=[pick(bought)], k=10, user_id=pick(users)), timeout=30),
                "Trending": lambda: stub.Trending(scoring_pb2.TrendingRequest(k=10), timeout=30),
                "Trending in a category": lambda: stub.Trending(scoring_pb2.TrendingRequest(
                    k=10, rules=common_pb2.RecommendRules(include_categories=["kitchen"])), timeout=30),
                "Trending for a shopper": lambda: stub.Trending(scoring_pb2.TrendingRequest(k=10, user_id=pick(users)), timeout=30),
                "Recommend with explanations": lambda: stub.Recommend(scoring_pb2.RecommendRequest(user_id=pick(users), k=10, explain=True),
                                                                      timeout=30),
                "GetProfile (living portrait)": lambda: profiles.GetProfile(profile_pb2.GetProfileRequest(user_id=pick(users)), timeout=30),
                "ListSegments (admin)": lambda: client.admin.ListSegments(model_admin_pb2.ListSegmentsRequest(), timeout=30),
            }
            results = {}
            for name, call in calls.items():
                results[name] = latency(call, args.calls)
                r = results[name]
                print(f"{name:40s} p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  items {r['mean_items']:5.1f}  degraded {r['degraded']}", flush=True)
            client.close()
        finally:
            suite.stop()
    report = {"machine": machine(), "items": args.items, "events": len(shop.events),
              "deploy_seconds": round(deploy_s, 1), "rpcs": results, "goal_p50_ms": 20.0}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "item-to-item.json").write_text(json.dumps(report, indent=1))
    lines = [f"# Storefront RPCs through gRPC, {args.items:,}-item catalogue (`make bench-item-to-item`)", "",
             f"One client, one call at a time, warm, {args.calls} calls each; feedback, scoring, Feast (SQLite) and "
             f"tritonserver on this machine ({report['machine'].get('cpus')} CPUs). Goal: p50 ≤ 20 ms for the item-to-item RPCs.", "",
             "| RPC | p50 ms | p99 ms | items per answer (k=10; profile: recent items; segments) | degraded answers |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['mean_items']:.1f} | {r['degraded']} |" for name, r in results.items()]
    lines += [""]
    (args.out / "item-to-item.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
