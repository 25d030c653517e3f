"""`make bench-traffic`: does the serving version keep showing shoppers what they like as the shop gets busier?

The popularity feedback loop: what is shown gets clicked, the clicks raise those items' popularity
signals (counts over 30 and 7 days), and a busier shop has larger counts than the windows the version
learned on. An early `make bench-online` at one simulated visit a minute saw version 1 lose a third of its
hidden relevance with no drift. This harness measures it directly; the signal stays a count because
measured on today's ranker the loop does no harm (see docs/quality.md, issue 27: popularity read as a
share of the shop's traffic was tried, and lost here and on the validation months).

A deployment of the synthetic shop (feedback, scoring, Feast, tritonserver, a Celery worker; version 1
bootstrapped on the shop's history, no experiment, no fine-tune) meets simulated shoppers whose tastes do
not drift (shopdata/simulator.py), through real gRPC: each visit asks Recommend (k=10), the shopper acts on
the answer, and the events go back through RecordEvents, so what is shown feeds popularity. First
`--visits` visits at the shop history's own pace (quiet), then `--busy-visits` at one visit every
`--busy-seconds` of shop time (busy: about 56x the traffic; the default 12,000 busy visits fill the 7-day
popularity window with busy traffic and the 30-day one about 15 times over what it held). Reports the hidden relevance (the share of the
shown items in the shopper's favourite categories, the simulator's truth) in each phase and in the last
third of each, and their ratio, as bench/results/traffic-TAG.{json,md,png}. Run it on the code before a
change and after (`--tag`) to compare.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from devtools.online_sim import history_pace, simulate, simulated_shop
from devtools.suite import deploy
from evaluation.results import results_dir
from evaluation.run import machine
from shopdata.simulator import SimulatedShoppers

# the shop-wide refresh (popular list, clock, traffic) every second, not every 30: the simulation runs its shop clock
# thousands of times faster than a real one, and a 30 s refresh would hold a whole phase at one snapshot
ENV = {"RECSYS_ATTRIBUTION_GRACE_S": "0.5", "RECSYS_MAX_CANDIDATES": "100", "RECSYS_POPULARITY_REFRESH_S": "1"}
NEVER = 10.0  # drift_from / drift_to as a multiple of the planned visits: the tastes never drift


def phase_summary(relevance: list[float], step_seconds: float, seconds: float, events: int) -> dict[str, Any]:
    third = relevance[-max(1, len(relevance) // 3):]
    return {"visits": len(relevance), "shop_seconds_per_visit": round(step_seconds, 1), "events_sent": events,
            "hidden_relevance": round(statistics.fmean(relevance), 4) if relevance else 0.0,
            "hidden_relevance_last_third": round(statistics.fmean(third), 4) if relevance else 0.0, "wall_seconds": round(seconds, 1)}


def plot(quiet: list[float], busy: list[float], path: Path, title: str, window: int = 150) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = quiet + busy
    width = max(1, min(window, len(values) // 8))
    xs = list(range(width, len(values) + 1))
    ys = [statistics.fmean(values[i - width : i]) for i in xs]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.plot(xs, ys, label=f"hidden relevance (rolling mean of {width} visits)")
    ax.axvline(len(quiet), color="grey", ls=":", label="traffic grows (busy phase starts)")
    ax.set_xlabel("visit")
    ax.set_ylabel("share of shown items in favourites")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--visits", type=int, default=1500, help="visits in the quiet phase")
    parser.add_argument("--busy-visits", type=int, default=12000, help="visits in the busy phase")
    parser.add_argument("--busy-seconds", type=float, default=60.0, help="shop seconds per visit in the busy phase")
    parser.add_argument("--bootstrap-steps", type=int, default=30)
    parser.add_argument("--tag", default="main")
    parser.add_argument("--out", type=Path, default=results_dir())
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shop = simulated_shop(args.users, args.visits, args.busy_visits * args.busy_seconds)  # both phases end before now
    quiet_seconds = history_pace(shop)
    shoppers = SimulatedShoppers(shop, args.visits + args.busy_visits, seed=1, drift_from=NEVER, drift_to=NEVER)
    report: dict[str, Any] = {"machine": machine(), "tag": args.tag, "users": args.users, "items": len(shop.items)}
    with tempfile.TemporaryDirectory(prefix="traffic-") as tmp:
        print(f"deploying the synthetic shop ({len(shop.items)} items, {args.users} shoppers)...", flush=True)
        suite = deploy(Path(tmp), shop, ENV, bootstrap_steps=args.bootstrap_steps)
        try:
            client = suite.client()
            clock = shop.events[-1].timestamp + 3600
            phases: dict[str, list[float]] = {}
            for name, visits, step_seconds in (("quiet", args.visits, quiet_seconds), ("busy", args.busy_visits, args.busy_seconds)):
                print(f"{name}: {visits} visits, one every {step_seconds:.0f} s of shop time", flush=True)
                started = time.perf_counter()

                def progress(step: int, sim: Any, name: str = name) -> None:
                    if step % 1000 == 0:
                        print(f"  {name}: {step} visits, {sim.events} events, hidden relevance so far "
                              f"{statistics.fmean(sim.relevance.get('', [0.0])):.3f}", flush=True)

                sim = simulate(client, shoppers, f"traffic-{name}", visits, clock, step_seconds=step_seconds, look_every=0, seed=len(name))
                relevance = [r for _, _, r, _ in sim.visits]
                phases[name] = relevance
                report[name] = phase_summary(relevance, step_seconds, time.perf_counter() - started, sim.events)
                clock += visits * step_seconds + 60
            client.close()
        finally:
            suite.stop()
    quiet, busy = report["quiet"], report["busy"]
    report["busy_over_quiet"] = round(busy["hidden_relevance"] / quiet["hidden_relevance"], 3) if quiet["hidden_relevance"] else None
    report["busy_last_third_over_quiet"] = (round(busy["hidden_relevance_last_third"] / quiet["hidden_relevance"], 3)
                                            if quiet["hidden_relevance"] else None)
    name = f"traffic-{args.tag}"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2))
    rows = [f"| {p} | {report[p]['visits']} | {report[p]['shop_seconds_per_visit']:.0f} | {report[p]['events_sent']} | "
            f"{report[p]['hidden_relevance']:.3f} | {report[p]['hidden_relevance_last_third']:.3f} |" for p in ("quiet", "busy")]
    (args.out / f"{name}.md").write_text(
        f"# Hidden relevance as traffic grows ({args.tag})\n\n"
        f"Version 1 of the synthetic shop ({report['items']} items, {args.users} shoppers, tastes fixed), Recommend k=10 through real "
        "gRPC, every reaction recorded (`make bench-traffic`).\n\n"
        "| phase | visits | shop seconds per visit | events sent | hidden relevance | last third |\n| --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows) + f"\n\nBusy over quiet: {report['busy_over_quiet']} (last third of busy: {report['busy_last_third_over_quiet']}).\n\n"
        f"![hidden relevance]({name}.png)\n")
    plot(phases["quiet"], phases["busy"], args.out / f"{name}.png",
         f"{args.tag}: quiet {quiet['hidden_relevance']:.3f}, busy {busy['hidden_relevance']:.3f} (last third {busy['hidden_relevance_last_third']:.3f})")
    print(json.dumps({k: report[k] for k in ("quiet", "busy", "busy_over_quiet", "busy_last_third_over_quiet")}, indent=1))
    print(f"wrote {args.out / name}.{{json,md,png}}")


if __name__ == "__main__":
    main()
