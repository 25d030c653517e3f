"""`make bench-online-drift` (also the last part of `make bench-online`): lifelong vs frozen in closed loop
through a sudden change of taste.

Two deployments of the synthetic shop, identical at the start (feedback, scoring, Feast, tritonserver, a
Celery worker; version 1 bootstrapped on the shop's history), each meet simulated shoppers
(shopdata/simulator.py) through real gRPC: each visit asks Recommend (k=10), the shopper acts on the
answer and the events go back through RecordEvents, so each arm's version sees only the behaviour its own
rankings drew. After `--before` visits every shopper's second favourite category moves to one they never
liked (a taste change at one moment, as at a season's turn). The arms differ in one thing:

- frozen: version 1 serves throughout;
- lifelong: every `--fine-tune-every` visits the worker fine-tunes the serving version on what arrived
  since (TriggerFineTune, the operator's or schedule's path; the worker's own list building, replay,
  gate and publish), and a promoted version serves the next visits. The simulation's clock pauses while
  a fine-tune runs: at the history's pace a visit is about an hour of shop time, a fine-tune well under
  a minute.

Reported per arm (hidden relevance: the share of shown items in the shopper's current favourite
categories, the simulator's truth): before the change (mean of the last `--window` visits), the rolling
mean after it as a share of that, the visits until it is back at 90%, the share at 1,000 visits after the
change, and every fine-tune's decision and seconds; bench/results/online-drift-TAG.{json,md,png}.
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
from devtools.suite import Suite, deploy
from evaluation.results import results_dir
from evaluation.run import machine
from shopdata import Shop
from shopdata.simulator import SimulatedShoppers
from shoprank_client.enums import job_state_of

# the shop-wide refresh every second (the simulated clock runs thousands of times faster than a real one)
ENV = {"RECSYS_ATTRIBUTION_GRACE_S": "0.5", "RECSYS_MAX_CANDIDATES": "100", "RECSYS_POPULARITY_REFRESH_S": "1"}
ARMS = ("frozen", "lifelong")
RECOVERED = 0.9  # the bar: lifelong back at 90% of its relevance before the change...
HORIZON = 1000  # ...within this many visits after it
FROZEN_BAR = 0.7  # while frozen stays below 70%


def fine_tune(suite: Suite, job_id: str, max_steps: int, learning_rate: float) -> dict[str, Any]:
    """One fine-tune of the serving version through the admin API, waited for; its outcome."""
    client = suite.client()
    started = time.perf_counter()
    try:
        client.trigger(job_id=job_id, max_steps=max_steps, learning_rate=learning_rate)
        job = client.wait_job(job_id)
    finally:
        client.close()
    return {"job_id": job_id, "state": job_state_of(job.state), "new_version": job.new_version, "message": job.message[:300],
            "seconds": round(time.perf_counter() - started, 1)}


def run_arm(arm: str, shop: Shop, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    total = args.before + args.after
    at = args.before / total  # every shopper's taste changes at the same visit
    shoppers = SimulatedShoppers(shop, total, seed=args.seed, drift_from=at, drift_to=at)
    pace = history_pace(shop)
    print(f"{arm}: deploying the synthetic shop ({len(shop.items)} items, {args.users} shoppers)...", flush=True)
    suite = deploy(root / arm, shop, ENV | dict(kv.split("=", 1) for kv in args.env), bootstrap_steps=args.bootstrap_steps)
    relevance: list[float] = []
    tunes: list[dict[str, Any]] = []
    latency: list[float] = []
    clock = shop.events[-1].timestamp + 3600
    started = time.perf_counter()
    try:
        client = suite.client()
        chunk = 0
        while len(relevance) < total:
            visits = min(args.fine_tune_every, total - len(relevance))
            sim = simulate(client, shoppers, f"drift-{arm}-{chunk}", visits, clock, step_seconds=pace, look_every=0, seed=1000 * (args.seed - 1) + chunk)
            relevance += [r for _, _, r, _ in sim.visits]
            latency += sim.latency_ms
            clock += visits * pace
            chunk += 1
            print(f"  {arm}: {len(relevance)} visits, hidden relevance of the last {visits} {statistics.fmean(relevance[-visits:]):.3f}"
                  f"{' (tastes changed)' if len(relevance) > args.before else ''}", flush=True)
            if arm == "lifelong" and len(relevance) < total:
                tune = fine_tune(suite, f"drift-loop-{chunk}", args.max_steps, args.learning_rate)
                tune["after_visit"] = len(relevance)
                tunes.append(tune)
                print(f"  {arm}: fine-tune after visit {len(relevance)}: {tune['state']} v{tune['new_version'] or '-'} "
                      f"({tune['seconds']} s) {tune['message'][:120]}", flush=True)
        client.close()
    finally:
        suite.stop()
    return {"relevance": relevance, "fine_tunes": tunes, "wall_seconds": round(time.perf_counter() - started, 1),
            "recommend_ms_p50": round(statistics.median(latency), 1) if latency else None,
            **recovery(relevance, args.before, args.window)}


def recovery(relevance: list[float], before: int, window: int) -> dict[str, Any]:
    """Relevance before the change (mean of its last `window` visits) and, after it, the trailing mean of
    `window` visits as a share of that: when it is back at RECOVERED, where it is HORIZON visits on, its low."""
    pre = statistics.fmean(relevance[max(0, before - window):before]) if before else 0.0
    after = relevance[before:]
    width = max(1, min(window, len(after)))
    trailing = [statistics.fmean(after[i - width + 1 : i + 1]) for i in range(width - 1, len(after))]
    shares = [t / pre if pre else 0.0 for t in trailing]
    back = next((width + k for k, s in enumerate(shares) if s >= RECOVERED), None)
    at = min(HORIZON, len(after)) - width  # the window that ends at HORIZON visits (or at the end)
    return {"before": round(pre, 4), "after_mean": round(statistics.fmean(after), 4) if after else None,
            "share_at_horizon": round(shares[at], 3) if shares and at >= 0 else None, "horizon": min(HORIZON, len(after)),
            "low_share": round(min(shares), 3) if shares else None, "high_share": round(max(shares), 3) if shares else None,
            "visits_to_recover": back, "window": width}


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before, window = report["before"], report["window"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for arm, result in report["arms"].items():
        values = result["relevance"]
        width = max(1, min(window, len(values) // 6))
        xs = list(range(width, len(values) + 1))
        ys = [statistics.fmean(values[i - width : i]) for i in xs]
        line = top.plot(xs, ys, label=f"{arm} (rolling mean of {width} visits)")[0]
        if result["before"]:
            bottom.plot(xs, [y / result["before"] for y in ys], color=line.get_color(), label=arm)
        for tune in result["fine_tunes"]:
            top.axvline(tune["after_visit"], color=line.get_color(), alpha=0.15 if tune["state"] == "SUCCEEDED" else 0.5,
                        ls="-" if tune["state"] == "SUCCEEDED" else "--")
    for ax in (top, bottom):
        ax.axvline(before, color="grey", ls=":", label="tastes change")
    bottom.axhline(RECOVERED, color="green", ls="--", lw=0.8, label=f"{RECOVERED:.0%} (lifelong's bar)")
    bottom.axhline(FROZEN_BAR, color="red", ls="--", lw=0.8, label=f"{FROZEN_BAR:.0%} (frozen stays below)")
    top.set_ylabel("hidden relevance")
    top.set_title("closed loop through a taste change: each arm learns only from what it showed (faint lines: fine-tunes)", fontsize=10)
    bottom.set_ylabel("share of relevance before the change")
    bottom.set_xlabel("visit")
    top.legend(fontsize=8)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict[str, Any], name: str) -> str:
    rows = []
    for arm, r in report["arms"].items():
        tunes = r["fine_tunes"]
        promoted = sum(t["state"] == "SUCCEEDED" and bool(t["new_version"]) for t in tunes)
        rows.append(f"| {arm} | {r['before']:.3f} | {r['after_mean']:.3f} | {r['share_at_horizon']} | {r['low_share']} | {r['high_share']} | "
                    f"{r['visits_to_recover'] if r['visits_to_recover'] is not None else 'not within the run'} | "
                    f"{promoted} of {len(tunes)} | {sum(t['seconds'] for t in tunes):.0f} | {r['recommend_ms_p50']} |")
    return (f"# Lifelong vs frozen in closed loop through a taste change (`make bench-online-drift`)\n\n"
            f"The synthetic shop ({report['items']} items, {report['users']} simulated shoppers), one deployment per arm, "
            f"{report['before']} visits, then every shopper's second favourite category changes, then {report['after']} visits; "
            f"lifelong fine-tunes every {report['fine_tune_every']} visits on what its own rankings drew. Shares are the trailing "
            f"mean of {report['window']} visits over the arm's relevance before the change. Machine: {report['machine']}.\n\n"
            f"| arm | relevance before | mean after | share at {report['arms'][next(iter(report['arms']))]['horizon']} visits after | "
            "lowest share after | highest | visits to 90% | fine-tunes promoted | fine-tune s | Recommend p50 ms |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) +
            f"\n\nGoal (issue 27): lifelong back at {RECOVERED:.0%} within {HORIZON} visits while frozen stays below {FROZEN_BAR:.0%}.\n\n"
            f"Fine-tunes (lifelong): " + "; ".join(f"after visit {t['after_visit']}: {t['state']} v{t['new_version'] or '-'} ({t['seconds']} s)"
                                                  for t in report["arms"].get("lifelong", {}).get("fine_tunes", [])) +
            f"\n\n![closed loop]({name}.png)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--before", type=int, default=1000, help="visits before the taste change")
    parser.add_argument("--after", type=int, default=2000, help="visits after it")
    parser.add_argument("--fine-tune-every", type=int, default=250, help="lifelong: visits between fine-tunes")
    parser.add_argument("--max-steps", type=int, default=40, help="each fine-tune's max_steps")
    parser.add_argument("--learning-rate", type=float, default=0.0, help="each fine-tune's rate (0: the ranker's default)")
    parser.add_argument("--window", type=int, default=200, help="visits in each trailing mean")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--env", action="append", default=[], metavar="RECSYS_X=value", help="a setting for both deployments (repeatable)")
    parser.add_argument("--bootstrap-steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1, help="the simulated shoppers' draws (tastes, visits, reactions)")
    parser.add_argument("--tag", default="main")
    parser.add_argument("--out", type=Path, default=results_dir())
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shop = simulated_shop(args.users, args.before + args.after)  # the history and every visit end before now
    report: dict[str, Any] = {"machine": machine(), "tag": args.tag, "users": args.users, "items": len(shop.items),
                              "before": args.before, "after": args.after, "fine_tune_every": args.fine_tune_every,
                              "learning_rate": args.learning_rate, "max_steps": args.max_steps, "env": args.env, "seed": args.seed,
                              "window": args.window, "arms": {}}
    with tempfile.TemporaryDirectory(prefix="drift-loop-") as tmp:
        for arm in args.arms.split(","):
            report["arms"][arm] = run_arm(arm, shop, args, Path(tmp))
    name = f"online-drift-{args.tag}"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1))
    (args.out / f"{name}.md").write_text(markdown(report, name))
    plot(report, args.out / f"{name}.png")
    print(markdown(report, name))
    print(f"wrote {args.out / name}.{{json,md,png}}")


if __name__ == "__main__":
    main()
