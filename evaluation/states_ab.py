"""`make bench-states-ab`: stored shopper states on vs off (RECSYS_SHOPPER_STATES), alternated, on the
shop-like workload of `make bench-load` (issue 26): Rank at 1 and 16 clients, then ingest at 16 clients x
50 events, one deployment per arm and round (on, off, on, off, ...), so the two arms share the machine's
drift. With states off every Rank computes the shopper's vector inline in its one Triton request.
Writes bench/results/load-TAG.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from devtools.suite import deploy
from evaluation.load_bench import RESULTS, ingest_while_states, level, shop_traffic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--shoppers", type=int, default=3000)
    parser.add_argument("--dataset", default="auto", choices=["auto", "synthetic"])
    parser.add_argument("--tag", default="issue26-states-ab")
    args = parser.parse_args()
    from shopdata import synthetic, uci_retail

    shop = (uci_retail.shop_slice(n_users=args.shoppers) if args.dataset == "auto" and uci_retail.DEFAULT_PATH.exists()
            else synthetic.generate(n_users=args.shoppers))
    traffic = shop_traffic(shop, 0.3)
    items = sorted(shop.items)
    rows: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        for arm in ("on", "off"):
            print(f"shopper states {arm}: deploying ...", flush=True)
            with tempfile.TemporaryDirectory(prefix="states-ab-") as tmp:
                suite = deploy(Path(tmp), shop, {"RECSYS_MAX_CANDIDATES": "500", "RECSYS_SCORING_PROCESSES": str(2 * (os.cpu_count() or 1)),
                                                 "RECSYS_SHOPPER_STATES": "1" if arm == "on" else "0"}, bootstrap_steps=10, ingest_fraction=1.0)
                try:
                    row: dict[str, Any] = {"arm": arm}
                    for clients in (int(c) for c in args.clients.split(",")):
                        r = level(suite, traffic.users, items, clients, args.seconds, traffic=traffic)
                        row[str(clients)] = {k: r[k] for k in ("per_s", "p50_ms", "p99_ms", "cpu_per_s", "shopper_states", "events")}
                    row["ingest"] = ingest_while_states(suite, traffic.users, items, 16)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                finally:
                    suite.stop()
    write(rows, args.tag, shop.name, len(traffic.users))


def write(rows: list[dict[str, Any]], tag: str, dataset: str, shoppers: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"load-{tag}.json").write_text(json.dumps({"dataset": dataset, "shoppers": shoppers, "rows": rows}, indent=1))
    levels = [k for k in rows[0] if k.isdigit()] if rows else []
    lines = [f"# Stored shopper states on vs off, alternated (`make bench-states-ab`), {os.cpu_count()} CPUs: {dataset}, {shoppers} shoppers, "
             "the shop-like workload (a click before 30% of Ranks)", "",
             "| arm | clients | Rank/s | p50 ms | p99 ms | shopper vector: stored / inline | CPU s/s: feedback, scoring, tritonserver | ingest events/s (16 x 50) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        for c in levels:
            r, st, cpu = row[c], row[c]["shopper_states"], row[c]["cpu_per_s"]
            lines.append(f"| {row['arm']} | {c} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} | {st.get('stored', 0)} / {st.get('inline', 0)} | "
                         f"{cpu.get('feedback')}, {cpu.get('scoring')}, {cpu.get('tritonserver')} | {row['ingest']['events_per_s']} |")
    (RESULTS / f"load-{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
